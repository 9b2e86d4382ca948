"""Batch prediction throughput: `litehouse batch run` end to end on MNIST JSONL (the ten real
test digits repeated, pixels / 255) with the int8 CNN, next to the engine's own batched
throughput on the same model and a Python LiteRT script doing the same job, in one run; peak
RSS of each; and how litehouse's rows/s and RSS change from 100k to 1M rows.

Usage: python3 bench/batch.py LITEHOUSE ENGINE_EXAMPLE LITERT_PYTHON [ROWS...]  (make bench-batch)
"""
import json
import os
import shutil
import subprocess
import sys
import time

from peak_rss import measure

litehouse, engine, litert_python = sys.argv[1], sys.argv[2], sys.argv[3]
sizes = [int(s) for s in sys.argv[4:]] or [100_000, 1_000_000]
work = "target/bench-batch"
os.makedirs(work, exist_ok=True)
config = "models/catalog/mnist.json"
model = "models/runtime/testdata/exported/cnn_int8_io.tflite"

raw = open("models/runtime/testdata/fetched/mnist10.bin", "rb").read()
digits = [
    json.dumps([round(p / 255, 4) for p in raw[i * 784:(i + 1) * 784]], separators=(",", ":"))
    for i in range(10)
]


def jsonl(rows):
    path = f"{work}/mnist-{rows}.jsonl"
    if not os.path.exists(path):
        block = "\n".join(digits) + "\n"
        with open(path, "w") as f:
            for _ in range(rows // 10):
                f.write(block)
    return path


results = {}
first = jsonl(sizes[0])
_, _, out = measure([engine, model, first, "64", "2", "3"])
results["engine_rows_per_s"] = json.loads(out)["rows_per_s"]
for rows in sizes:
    path = jsonl(rows)
    output = f"{work}/out-{rows}"
    shutil.rmtree(output, ignore_errors=True)
    secs, rss, _ = measure([litehouse, "batch", "run", "--model", config, "--input", path,
                            "--format", "jsonl", "--output", output, "--batch-size", "64",
                            "--threads", "2", "--quiet", "--json"])
    results[f"litehouse_{rows}"] = {"rows_per_s": rows / secs, "secs": secs, "peak_rss_mb": rss}
    shutil.rmtree(output, ignore_errors=True)
secs, rss, out = measure([litert_python, "bench/batch/litert_batch.py", model, first,
                          f"{work}/litert-out.jsonl", "64"])
results["litert_python"] = {"rows_per_s": sizes[0] / secs, "secs": secs, "peak_rss_mb": rss,
                            "inner_rows_per_s": json.loads(out)["rows_per_s"]}

lh = results[f"litehouse_{sizes[0]}"]
print(f"engine (2 threads, batch 64, no I/O): {results['engine_rows_per_s']:,.0f} rows/s")
for rows in sizes:
    r = results[f"litehouse_{rows}"]
    print(f"litehouse batch, {rows:,} rows: {r['rows_per_s']:,.0f} rows/s, {r['secs']:.1f} s, "
          f"peak RSS {r['peak_rss_mb']:.1f} MB")
lt = results["litert_python"]
print(f"Python + LiteRT, {sizes[0]:,} rows: {lt['rows_per_s']:,.0f} rows/s, peak RSS {lt['peak_rss_mb']:.1f} MB")
print(f"litehouse / engine: {lh['rows_per_s'] / results['engine_rows_per_s']:.0%}; "
      f"litehouse / Python LiteRT: {lh['rows_per_s'] / lt['rows_per_s']:.1f}x")
print(json.dumps(results))
