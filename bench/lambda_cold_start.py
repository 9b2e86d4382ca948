"""Cold start of the predict Lambda binary under the Lambda Runtime API: process start to the
first answered invocation (a Function URL event for linnerud), and RSS, stripped binary size.

A minimal Runtime API (the same protocol AWS and cargo-lambda speak) runs in this process.
Usage: python3 bench/lambda_cold_start.py [BINARY] [RUNS]  (run by `make bench-serve`).
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

binary = sys.argv[1] if len(sys.argv) > 1 else "./target/release/predict"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
with open("functions/predict/events/function-url-predict-linnerud.json") as f:
    event = f.read().encode()

answered = threading.Event()
state = {"served": False, "answer": None}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if state["served"]:
            # One invocation per process: hold the poll until the process is stopped.
            time.sleep(30)
            return
        state["served"] = True
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:0:function:predict")
        self.send_header("Content-Length", str(len(event)))
        self.end_headers()
        self.wfile.write(event)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        state["answer"] = (self.path, self.rfile.read(n))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        answered.set()


samples = []
for _ in range(runs):
    # A fresh Runtime API per run, so a poll left over from the previous process is never
    # mistaken for the new one's.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="predict", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512", LITEHOUSE_MODELS="models/catalog",
               LITEHOUSE_LOG="error")
    answered.clear()
    state.update(served=False, answer=None)
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stderr=None if os.environ.get("DEBUG") else subprocess.DEVNULL)
    assert answered.wait(30), "no answer within 30 s"
    elapsed = (time.perf_counter() - start) * 1000
    path, body = state["answer"]
    assert path.endswith("/response"), (path, body[:200])
    assert json.loads(body)["statusCode"] == 200, body[:300]
    with open(f"/proc/{proc.pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    samples.append((elapsed, rss))
    proc.kill()
    proc.wait()
    server.shutdown()
    server.server_close()
ms = sorted(s[0] for s in samples)
print(f"lambda cold start (Runtime API) to first answered invocation: median {ms[len(ms) // 2]:.1f} ms, "
      f"max {ms[-1]:.1f} ms ({runs} runs)")
print(f"lambda RSS after the first invocation: {max(s[1] for s in samples) / 1024:.1f} MB (max)")
print(f"predict binary: {os.path.getsize(binary) / 1e6:.2f} MB (stripped)")
