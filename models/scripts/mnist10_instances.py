"""Prints the ten digits of mnist10.bin (raw 28x28 uint8) as Vertex-style JSON instances."""
import json
import sys

raw = open(sys.argv[1], "rb").read()
instances = [
    [[[raw[d * 784 + r * 28 + c]] for c in range(28)] for r in range(28)]
    for d in range(10)
]
json.dump({"instances": instances}, sys.stdout)
