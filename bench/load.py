"""Load benchmark, side by side in one run: `litehouse serve` and the anchor (FastAPI +
TensorFlow/Keras MNIST MLP, bench/anchor) under the same wrk load on loopback.

Requests: MNIST PNG as multipart upload and as b64 JSON, linnerud JSON (litehouse); MNIST PNG
multipart (the anchor's only route). Concurrency 1, 8, 64. Also each server's cold start (process
start to first answered prediction) and RSS.

Usage: python3 bench/load.py LITEHOUSE_BIN ANCHOR_PYTHON [SECONDS]   (run by `make bench-load`)
"""
import base64
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

litehouse, anchor_python = sys.argv[1], sys.argv[2]
seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
work = pathlib.Path("target/bench")
work.mkdir(parents=True, exist_ok=True)
png = pathlib.Path("target/digits/digit-7.png").read_bytes()
boundary = "litehouse-bench-boundary"
multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"digit.png\"\r\n"
             f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
payloads = {
    # The anchor's architecture (MLP), int8: the like-for-like comparison.
    "mnist-mlp multipart": (multipart, f"multipart/form-data; boundary={boundary}",
                            "/v1/endpoints/mnist_mlp:predict"),
    "mnist-cnn multipart": (multipart, f"multipart/form-data; boundary={boundary}", "/v1/endpoints/mnist:predict"),
    "mnist-mlp b64 JSON": (json.dumps({"instances": [{"b64": base64.b64encode(png).decode()}]}).encode(),
                           "application/json", "/v1/endpoints/mnist_mlp:predict"),
    "linnerud JSON": (json.dumps({"instances": [[5, 162, 60]]}).encode(), "application/json",
                      "/v1/endpoints/linnerud:predict"),
    # No model, no body: the loopback round trip and HTTP handling alone, the floor under every
    # figure above (at c=1 it bounds req/s whatever the model costs).
    "GET /healthz (floor)": (None, "", "/healthz"),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(port, path, body, ctype):
    """One request over a raw socket; returns the status code, or None when nothing listens."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    except OSError:
        return None
    head = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock.sendall(head + body)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    try:
        return int(answer.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def start(cmd, port, path, body, ctype, env=None):
    """Starts a server; returns (process, ms to the first answered prediction)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        status = post(port, path, body, ctype)
        if status == 200:
            return proc, (time.perf_counter() - t0) * 1000
        if proc.poll() is not None:
            sys.exit(f"{cmd[0]} exited with {proc.returncode} before answering")
        if status is not None:
            sys.exit(f"{cmd} answered {status} to the first prediction")
        time.sleep(0.002)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port, path, body, ctype, conns, pid):
    body_file = work / "body.bin"
    body_file.write_bytes(body or b"")
    script = work / "post.lua"
    if body is None:  # a plain GET
        script.write_text("")
    else:
        script.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "{ctype}"\n'
            f'local f = io.open("{body_file.resolve()}", "rb")\nwrk.body = f:read("*all")\nf:close()\n')
    # One load thread: on a 2-core machine a second one only takes CPU from the server.
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
                          "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - cpu_before
    requests = int(re.search(r"(\d+) requests in", out).group(1))

    def latency(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": latency("50%"),
        "p99": latency("99%"),
        # Server CPU per request: steadier than req/s on a shared VM.
        "cpu_us": 1e6 * cpu / max(requests, 1),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


results = {}
rows = []

# litehouse
port = free_port()
body, ctype, path = payloads["linnerud JSON"]
proc, cold = start([litehouse, "serve", "--models", "bench/catalog", "--port", str(port)],
                   port, path, body, ctype)
results["litehouse"] = {"cold_ms": cold, "rss_first": rss_mb(proc.pid)}
for name, (body, ctype, path) in payloads.items():
    for c in (1, 8, 64):
        r = wrk(port, path, body, ctype, c, proc.pid)
        rows.append(("litehouse", name, c, r))
        print(f"litehouse {name:19} c={c:<3} {r['rps']:9.0f} req/s  p50 {r['p50']:7.2f} ms  "
              f"p99 {r['p99']:7.2f} ms  cpu {r['cpu_us']:7.0f} us/req  non-2xx {r['errors']} {r['socket_errors']}", flush=True)
results["litehouse"]["rss_after"] = rss_mb(proc.pid)
proc.terminate()
proc.wait()

# the anchor
model = pathlib.Path("target/anchor/mnist_mlp.keras")
if not model.exists():
    model.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([anchor_python, "bench/anchor/train.py", str(model)], check=True)
port = free_port()
body, ctype, _ = payloads["mnist-mlp multipart"]
env = dict(os.environ, MODEL=str(model.resolve()), TF_CPP_MIN_LOG_LEVEL="3")
proc, cold = start([anchor_python, "-m", "uvicorn", "app:app", "--app-dir", "bench/anchor",
                    "--port", str(port), "--log-level", "warning"], port, "/predict", body, ctype, env)
results["anchor"] = {"cold_ms": cold, "rss_first": rss_mb(proc.pid)}
for c in (1, 8, 64):
    r = wrk(port, "/predict", body, ctype, c, proc.pid)
    rows.append(("anchor", "mnist-mlp multipart", c, r))
    print(f"anchor    mnist-mlp multipart c={c:<3} {r['rps']:9.0f} req/s  p50 {r['p50']:7.2f} ms  "
          f"p99 {r['p99']:7.2f} ms  cpu {r['cpu_us']:7.0f} us/req  non-2xx {r['errors']} {r['socket_errors']}", flush=True)
results["anchor"]["rss_after"] = rss_mb(proc.pid)
proc.terminate()
proc.wait()

lines = ["| server | request | c | req/s | p50 ms | p99 ms | server CPU us/req | non-2xx |",
         "|---|---|---|---|---|---|---|---|"]
for server, name, c, r in rows:
    lines.append(f"| {server} | {name} | {c} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
                 f"| {r['cpu_us']:.0f} | {r['errors']} |")
anchor = {c: r for s, n, c, r in rows if s == "anchor"}
lines += ["", "| ratio (litehouse / anchor, mnist-mlp multipart) | c=1 | c=8 | c=64 |", "|---|---|---|---|"]
lh = {c: r for s, n, c, r in rows if s == "litehouse" and n == "mnist-mlp multipart"}
lines.append("| req/s | " + " | ".join(f"{lh[c]['rps'] / anchor[c]['rps']:.0f}x" for c in (1, 8, 64)) + " |")
lines.append("| p99 | " + " | ".join(f"{anchor[c]['p99'] / lh[c]['p99']:.0f}x lower" for c in (1, 8, 64)) + " |")
lines += ["", "| server | cold start to first prediction | RSS after first | RSS after load |", "|---|---|---|---|"]
for s, v in results.items():
    lines.append(f"| {s} | {v['cold_ms']:.0f} ms | {v['rss_first']:.1f} MB | {v['rss_after']:.1f} MB |")
report = "\n".join(lines)
(work / "load.md").write_text(report + "\n")
print()
print(report)
