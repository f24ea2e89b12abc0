"""A test-only A2A peer that accepts a JSON-RPC request only when its X-DID signature verifies
with Bindu's own verify_signature() (300 s replay window) and the bearer token is the expected
one; otherwise it answers 403 {"error": "Invalid DID signature"} like Bindu with Hydra auth.

usage: <bindu venv>/bin/python verifying_peer.py PORT PUBLIC_KEY_BASE58 EXPECTED_TOKEN
Started by scripts/test.sh; the gateway tests sign with the matching seed."""
import contextlib
import json
import os
import sys
import tempfile
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, PUBLIC_KEY, TOKEN = int(sys.argv[1]), sys.argv[2], sys.argv[3]
os.chdir(tempfile.mkdtemp(prefix="plangate-verifying-peer-"))  # bindu writes ./logs/
with contextlib.redirect_stdout(sys.stderr):
    from bindu.utils.did.signature import verify_signature


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self._send(200, {"ok": True})
        self._send(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        did = self.headers.get("X-DID")
        sig = self.headers.get("X-DID-Signature")
        ts = self.headers.get("X-DID-Timestamp")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"error": "bad token"})
        if not (did and sig and ts and ts.isdigit()):
            return self._send(403, {"error": "Invalid DID signature", "details": {"reason": "missing_signature_headers"}})
        with contextlib.redirect_stdout(sys.stderr):
            ok = verify_signature(body=body, signature=sig, did=did, timestamp=int(ts),
                                  public_key=PUBLIC_KEY, max_age_seconds=300)
        if not ok:
            return self._send(403, {"error": "Invalid DID signature", "details": {"reason": "invalid_signature"}})
        req = json.loads(body)
        if req.get("method") == "message/send":
            text = req["params"]["message"]["parts"][0]["text"]
            result = {"kind": "message", "role": "agent", "messageId": str(uuid.uuid4()),
                      "parts": [{"kind": "text", "text": f"verified: {text}"}]}
        else:
            result = {}
        self._send(200, {"jsonrpc": "2.0", "id": req.get("id"), "result": result})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
