"""The official Kubeflow Pipelines packages judging what litehouse writes and sends.

  kfp_check.py spec SPEC.json
      parses the spec with kfp-pipeline-spec's protobuf (json_format.ParseDict, unknown fields
      refused) and loads it with the kfp SDK; prints what it found.
  kfp_check.py serve PORT_FILE BODY_FILE
      a stand-in for KFP's API server on 127.0.0.1: POST /apis/v2beta1/runs must carry a body
      that kfp_server_api's V2beta1Run accepts and whose pipeline_spec parses as above; the body
      is saved to BODY_FILE and the answer is a run as the server gives it. Serves one request.
"""
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2


def parse_spec(spec: dict) -> pipeline_spec_pb2.PipelineSpec:
    return json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def check_spec(path: str) -> None:
    import kfp.components

    with open(path) as f:
        spec = json.load(f)
    proto = parse_spec(spec)
    component = kfp.components.load_component_from_file(path)
    tasks = proto.root.dag.tasks
    gated = sorted(name for name, t in tasks.items() if t.trigger_policy.condition)
    print(
        f"ok: {proto.pipeline_info.name}: {len(tasks)} tasks, gated {gated}, "
        f"kfp loads it as {component.name!r} with inputs {sorted(component.component_spec.inputs or {})}"
    )


def serve(port_file: str, body_file: str) -> None:
    import kfp_server_api

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            try:
                if self.path != "/apis/v2beta1/runs":
                    raise ValueError(f"unexpected path {self.path}")
                body = json.loads(raw)
                run = kfp_server_api.models.V2beta1Run(**body)
                if not run.display_name:
                    raise ValueError("display_name is empty")
                parse_spec(run.pipeline_spec)
                with open(body_file, "w") as f:
                    json.dump(body, f)
                self.answer(200, {"run_id": str(uuid.uuid4()), "display_name": run.display_name, "state": "PENDING"})
            except Exception as e:  # the API's own error shape
                self.answer(400, {"error": str(e), "code": 3, "message": str(e)})
            self.server.done = True

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.done = False
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.replace(port_file + ".tmp", port_file)
    while not server.done:
        server.handle_request()


if __name__ == "__main__":
    if sys.argv[1:2] == ["spec"]:
        check_spec(sys.argv[2])
    elif sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
