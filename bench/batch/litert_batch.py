"""The same batch job in Python with LiteRT: read JSONL instances, batch, invoke, write JSONL.

Usage: litert_batch.py MODEL INPUT.jsonl OUTPUT.jsonl [BATCH]  (run by bench/batch.py in its own
venv). Instances are real values, quantized with the input's scale and zero point like litehouse
does for a model config with "input_values": "real". Prints one JSON line with rows/s.
"""
import json
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

model, source, target = sys.argv[1], sys.argv[2], sys.argv[3]
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 64
interp = Interpreter(model_path=model, num_threads=1)
inp = interp.get_input_details()[0]
out = interp.get_output_details()[0]
shape = list(inp["shape"])


def run(rows, sink):
    x = np.asarray(rows, dtype=np.float32).reshape([len(rows)] + shape[1:])
    scale, zero = inp["quantization"]
    if scale:
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.round(x / scale + zero), info.min, info.max)
    interp.resize_tensor_input(inp["index"], [len(rows)] + shape[1:])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interp.invoke()
    y = interp.get_tensor(out["index"]).astype(np.float32)
    oscale, ozero = out["quantization"]
    if oscale:
        y = (y - ozero) * oscale
    for r, p in zip(rows, y.tolist()):
        sink.write(json.dumps({"instance": r, "prediction": p}) + "\n")


start = time.perf_counter()
n = 0
with open(source) as src, open(target, "w") as sink:
    rows = []
    for line in src:
        if line.strip():
            rows.append(json.loads(line))
        if len(rows) == batch:
            run(rows, sink)
            n += len(rows)
            rows = []
    if rows:
        run(rows, sink)
        n += len(rows)
secs = time.perf_counter() - start
print(json.dumps({"rows": n, "secs": secs, "rows_per_s": n / secs}))
