"""Cold start of `litehouse serve`: process start to the first answered prediction, and RSS.

Usage: python3 bench/serve_cold_start.py [BINARY] [RUNS]  (run by `make bench-serve`).
"""
import json
import socket
import subprocess
import sys
import time

binary = sys.argv[1] if len(sys.argv) > 1 else "./target/release/litehouse"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
port = 18090
body = json.dumps({"instances": [[5, 162, 60]]})
request = (
    f"POST /v1/endpoints/linnerud:predict HTTP/1.1\r\nHost: bench\r\n"
    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
).encode()
samples = []
for _ in range(runs):
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "serve", "--models", "models/catalog", "--port", str(port)],
                            stderr=subprocess.DEVNULL)
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.0005)
    sock.sendall(request)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    elapsed = (time.perf_counter() - start) * 1000
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    with open(f"/proc/{proc.pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    samples.append((elapsed, rss))
    proc.terminate()
    proc.wait()
ms = sorted(s[0] for s in samples)
print(f"cold start to first prediction: median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms ({runs} runs)")
print(f"RSS after the first prediction: {max(s[1] for s in samples) / 1024:.1f} MB (max)")
