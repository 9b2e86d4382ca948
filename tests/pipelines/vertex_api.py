"""A stand-in for Vertex AI's pipelineJobs API and Google's OAuth token endpoint on 127.0.0.1,
judged by Google's own packages (google-cloud-aiplatform, google-auth; the clients venv).

  vertex_api.py STATE_DIR

writes STATE_DIR/key.json (a service-account key whose token_uri points here; the private key is
made now), then STATE_DIR/port. POST /token must carry a JWT-bearer assertion that google-auth
verifies against that key, for this token_uri, with the cloud-platform scope; the answer is an
access token. POST /v1/projects/P/locations/L/pipelineJobs must carry that token and a body that
aiplatform_v1.PipelineJob parses with unknown fields refused; it is saved to STATE_DIR/body.json.
A `pipelineJobId` query parameter names the job; the same id again is refused with 409
ALREADY_EXISTS, as the real API does. Serves until it has answered JOBS pipeline-job requests
(default 1): vertex_api.py STATE_DIR [JOBS].
"""
import json
import os
import re
import secrets
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt
from google.cloud import aiplatform_v1

state = sys.argv[1]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
private_pem = key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
public_pem = key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
token = secrets.token_urlsafe(24)
jobs_wanted = int(sys.argv[2]) if len(sys.argv) > 2 else 1
seen_ids = set()
JOBS = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/pipelineJobs(\?.*)?$")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            if self.path == "/token":
                form = urllib.parse.parse_qs(raw.decode())
                if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                    raise ValueError(f"grant_type {form.get('grant_type')}")
                claims = jwt.decode(form["assertion"][0], certs=public_pem, audience=self.server.token_uri)
                if claims.get("scope") != "https://www.googleapis.com/auth/cloud-platform":
                    raise ValueError(f"scope {claims.get('scope')}")
                if claims.get("iss") != "pipelines@test-project.iam.gserviceaccount.com":
                    raise ValueError(f"iss {claims.get('iss')}")
                self.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
                return
            m = JOBS.match(self.path)
            if not m:
                raise ValueError(f"unexpected path {self.path}")
            if self.headers.get("authorization") != f"Bearer {token}":
                self.answer(401, {"error": {"code": 401, "message": "bad or missing token", "status": "UNAUTHENTICATED"}})
                return
            job = aiplatform_v1.PipelineJob.from_json(raw, ignore_unknown_fields=False)
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            job_id = query.get("pipelineJobId", [None])[0]
            if job_id is not None and job_id in seen_ids:
                self.server.answered += 1
                self.answer(409, {"error": {"code": 409, "message": f"PipelineJob {job_id} already exists", "status": "ALREADY_EXISTS"}})
                return
            if job_id is not None:
                seen_ids.add(job_id)
            if not job.runtime_config.gcs_output_directory:
                raise ValueError("runtimeConfig.gcsOutputDirectory is empty")
            with open(os.path.join(state, "body.json"), "w") as f:
                f.write(raw.decode())
            name = f"projects/{m.group(1)}/locations/{m.group(2)}/pipelineJobs/{job_id or secrets.randbelow(10**12)}"
            self.answer(200, {"name": name, "displayName": job.display_name, "state": "PIPELINE_STATE_QUEUED"})
            self.server.answered += 1
        except Exception as e:
            self.answer(400, {"error": {"code": 400, "message": str(e), "status": "INVALID_ARGUMENT"}})


server = HTTPServer(("127.0.0.1", 0), Handler)
server.answered = 0
server.token_uri = f"http://127.0.0.1:{server.server_address[1]}/token"
with open(os.path.join(state, "key.json"), "w") as f:
    json.dump(
        {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": secrets.token_hex(20),
            "private_key": private_pem,
            "client_email": "pipelines@test-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": server.token_uri,
        },
        f,
    )
with open(os.path.join(state, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.replace(os.path.join(state, "port.tmp"), os.path.join(state, "port"))
while server.answered < jobs_wanted:
    server.handle_request()
