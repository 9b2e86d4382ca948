"""Drives a running `litehouse serve` (the example catalog) with the clients users already have:
Triton's `tritonclient.http` (KServe V2, binary tensor extension and plain JSON), Google's
generated Vertex AI client (`google-cloud-aiplatform`, REST transport) and curl-style TF Serving
requests. Every check asserts a real outcome: the ten real MNIST digits classified right, the
same linnerud answer across protocols, typed errors with the server's message.

    python official_clients.py http://127.0.0.1:PORT path/to/mnist10.bin

Run by tests/official_clients.rs; exits non-zero on the first failed check.
"""

import base64
import json
import struct
import sys
import zlib

import numpy as np
import requests

BASE = sys.argv[1].rstrip("/")
DIGITS = np.frombuffer(open(sys.argv[2], "rb").read(), dtype=np.uint8).reshape(10, 28, 28)
LINNERUD = [[5.0, 162.0, 60.0], [12.0, 101.0, 101.0]]


def png(gray):
    """A grayscale 8-bit PNG, written by hand so the check needs no imaging library."""
    h, w = gray.shape
    rows = b"".join(b"\x00" + gray[y].tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_raises(kind, contains, fn):
    try:
        fn()
    except kind as e:
        expect(contains in str(e), f"{kind.__name__} should mention {contains!r}: {e}")
        return
    raise AssertionError(f"expected {kind.__name__} mentioning {contains!r}")


def vertex_linnerud():
    """The reference answer every other protocol must reproduce."""
    r = requests.post(f"{BASE}/v1/endpoints/linnerud:predict", json={"instances": LINNERUD})
    expect(r.status_code == 200, f"vertex linnerud: {r.status_code} {r.text}")
    return np.array(r.json()["predictions"], dtype=np.float64)


def check_triton(reference):
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=BASE.split("://", 1)[1])
    expect(client.is_server_live(), "server not live")
    expect(client.is_server_ready(), "server not ready")
    expect(client.is_model_ready("mnist"), "mnist not ready")
    meta = client.get_model_metadata("mnist")
    inp, out = meta["inputs"][0], meta["outputs"][0]
    expect(inp["shape"] == [-1, 28, 28, 1], f"mnist input shape {inp['shape']}")

    # Build the request from the metadata, as a generic client would.
    pixels = DIGITS.reshape(10, 28, 28, 1).astype(np.float32) / 255.0
    for binary in (True, False):
        x = triton.InferInput(inp["name"], list(pixels.shape), inp["datatype"])
        x.set_data_from_numpy(pixels.astype(triton_np(inp["datatype"])), binary_data=binary)
        want = triton.InferRequestedOutput(out["name"], binary_data=binary)
        result = client.infer("mnist", [x], outputs=[want], request_id="digits")
        scores = result.as_numpy(out["name"])
        expect(scores is not None, f"no output {out['name']} (binary={binary})")
        expect(
            result.get_response()["outputs"][0]["datatype"] == out["datatype"],
            "metadata and response disagree on the output datatype",
        )
        classes = scores.argmax(axis=1).tolist()
        expect(classes == list(range(10)), f"digits classified {classes} (binary={binary})")

    x = triton.InferInput("keras_tensor_11", [2, 3], "FP32")
    x.set_data_from_numpy(np.array(LINNERUD, dtype=np.float32))
    y = client.infer("linnerud", [x]).as_numpy("output_0")
    expect(np.allclose(y, reference, rtol=1e-6), f"V2 linnerud {y} vs Vertex {reference}")

    bad = triton.InferInput("keras_tensor_11", [1, 2], "FP32")
    bad.set_data_from_numpy(np.array([[1.0, 2.0]], dtype=np.float32))
    expect_raises(InferenceServerException, "expects shape", lambda: client.infer("linnerud", [bad]))
    expect_raises(InferenceServerException, "not found", lambda: client.get_model_metadata("nope"))


def triton_np(datatype):
    return {"FP32": np.float32, "FP64": np.float64, "INT8": np.int8, "UINT8": np.uint8}[datatype]


def check_vertex(reference):
    from google.api_core import exceptions
    from google.api_core.client_options import ClientOptions
    from google.api import httpbody_pb2
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format, struct_pb2

    client = aiplatform_v1.PredictionServiceClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=BASE),
        credentials=AnonymousCredentials(),
    )

    def endpoint(name):
        return f"projects/demo/locations/us-central1/endpoints/{name}"

    def predictions(response):
        return aiplatform_v1.PredictResponse.to_dict(response)["predictions"]

    def values(items):
        return [json_format.ParseDict(i, struct_pb2.Value()) for i in items]

    r = client.predict(endpoint=endpoint("linnerud"), instances=values(LINNERUD))
    got = np.array(predictions(r), dtype=np.float64)
    expect(np.allclose(got, reference, rtol=1e-6), f"aiplatform linnerud {got} vs {reference}")
    expect(r.deployed_model_id != "", "no deployedModelId")

    images = [{"b64": base64.b64encode(png(d)).decode()} for d in DIGITS]
    r = client.predict(endpoint=endpoint("mnist"), instances=values(images))
    classes = [int(p["class"]) for p in predictions(r)]
    expect(classes == list(range(10)), f"b64 digits classified {classes}")

    for digit in (3, 8):
        body = httpbody_pb2.HttpBody(content_type="image/png", data=png(DIGITS[digit]))
        r = client.raw_predict(endpoint=endpoint("mnist"), http_body=body)
        answer = json.loads(r.data)
        expect(answer["predictions"][0]["class"] == digit, f"rawPredict digit {digit}: {answer}")

    expect_raises(
        exceptions.BadRequest,
        "expects shape",
        lambda: client.predict(endpoint=endpoint("linnerud"), instances=values([[1, 2]])),
    )
    expect_raises(
        exceptions.NotFound,
        "not found",
        lambda: client.predict(endpoint=endpoint("nope"), instances=values([[1, 2, 3]])),
    )


def check_tf_serving(reference):
    # curl -d sends application/x-www-form-urlencoded; TF Serving's REST API ignores it.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    url = f"{BASE}/v1/models/linnerud"
    status = requests.get(url).json()["model_version_status"][0]
    expect(status["state"] == "AVAILABLE", f"status {status}")
    row = requests.post(f"{url}:predict", data=json.dumps({"instances": LINNERUD}), headers=form)
    expect(row.status_code == 200, f"row format: {row.status_code} {row.text}")
    expect(np.allclose(row.json()["predictions"], reference, rtol=1e-6), "row format answer")
    col = requests.post(f"{url}:predict", data=json.dumps({"inputs": LINNERUD}), headers=form)
    expect(col.status_code == 200, f"columnar format: {col.status_code} {col.text}")
    expect(np.allclose(col.json()["outputs"], reference, rtol=1e-6), "columnar format answer")
    bad = requests.post(f"{url}:predict", data='{"instances": [[1, 2]]}', headers=form)
    expect(bad.status_code == 400 and "expects shape" in bad.json()["error"], bad.text)


def main():
    reference = vertex_linnerud()
    for name, check in [
        ("tritonclient.http (KServe V2)", check_triton),
        ("google-cloud-aiplatform (Vertex REST)", check_vertex),
        ("curl-style TF Serving REST", check_tf_serving),
    ]:
        check(reference)
        print(f"ok: {name}")


if __name__ == "__main__":
    main()
