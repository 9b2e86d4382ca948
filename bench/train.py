"""Training benchmark: `litehouse train` on full MNIST (60k/10k) for the MLP and the small CNN,
next to Keras (TensorFlow CPU, bench/train/keras_mnist.py in the anchor venv) on the same files,
layers and optimizer, in one run. Wall time of the whole process (data load, training, for
litehouse also int8 export and scoring the written model), peak RSS (VmHWM) and test accuracy.

Usage: python3 bench/train.py LITEHOUSE KERAS_PYTHON  (make bench-train)
"""
import json
import os
import shutil
import subprocess
import sys
import time

from peak_rss import measure

litehouse, keras_python = sys.argv[1], sys.argv[2]
data = "target/training-data/mnist"
work = "target/bench-train"
os.makedirs(work, exist_ok=True)
# (arch, epochs litehouse trains, target test accuracy, the time target as a fraction
# of Keras' time)
cases = [("mlp", 5, 0.975, 0.1), ("cnn", 3, 0.985, 0.5)]


rows = []
for arch, epochs, target, fraction in cases:
    out = f"{work}/{arch}"
    shutil.rmtree(out, ignore_errors=True)
    secs, rss, stdout = measure([litehouse, "train", "--data", data, "--arch", arch,
                                 "--epochs", str(epochs), "--patience", str(epochs),
                                 "--out", out, "--quiet", "--json"])
    report = json.loads(stdout)
    ours = {"seconds": secs, "rss_mb": rss, "accuracy": report["test"]["accuracy"],
            "float_accuracy": report["float_test"]["accuracy"],
            "epoch_seconds": [e["seconds"] for e in report["history"]]}
    k_secs, k_rss, k_out = measure([keras_python, "bench/train/keras_mnist.py", data, arch,
                                    "10", str(target)])
    keras = json.loads(k_out.strip().splitlines()[-1])
    keras.update({"wall": k_secs, "rss_mb": k_rss})
    rows.append((arch, epochs, target, fraction, ours, keras))

print("| model | run | epochs | test accuracy | wall s | peak RSS MB |")
print("|---|---|---|---|---|---|")
for arch, epochs, target, fraction, ours, keras in rows:
    print(f"| {arch} | litehouse (int8 export) | {epochs} | {ours['accuracy']:.4f} "
          f"(float {ours['float_accuracy']:.4f}) | {ours['seconds']:.1f} | {ours['rss_mb']:.0f} |")
    reached = "" if keras["seconds_to_target"] is not None else " (target not reached)"
    print(f"| {arch} | Keras | {keras['epochs']} | {keras['test_accuracy']:.4f}{reached} | "
          f"{keras['wall']:.1f} | {keras['rss_mb']:.0f} |")
print()
for arch, epochs, target, fraction, ours, keras in rows:
    ratio = ours["seconds"] / keras["wall"]
    met = ours["accuracy"] >= target and ratio <= fraction and ours["rss_mb"] <= 250
    per_epoch = ", ".join(f"{s:.1f}" for s in ours["epoch_seconds"])
    print(f"{arch}: litehouse {ratio:.2f}x Keras' wall time (target {fraction}x), "
          f"accuracy {ours['accuracy']:.4f} (target {target}), RSS {ours['rss_mb']:.0f} MB "
          f"(target 250): {'met' if met else 'not met'}; litehouse epochs {per_epoch} s")
print(json.dumps({"rows": [{"arch": r[0], "litehouse": r[4], "keras": r[5]} for r in rows]}))
