"""A loopback stand-in for a hashguard service's ``POST /v1/match/hashes`` that answers as a
service under strain would, as scripted: what ``hashguard scan --report-to`` is tested
against."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Scripted:
    """A loopback server of POST /v1/match/hashes: answers first from ``script`` (status,
    headers), then 200, matching every hash whose value starts with "f"; 413 for a batch over
    ``max_batch``; every body received is kept."""

    def __init__(
        self, script: list[tuple[int, dict[str, str]]], max_batch: int = 1000, page: str = ""
    ) -> None:
        """``page``: what every 200 answers instead (another program's)."""
        self.script, self.max_batch, self.page, self.bodies = list(script), max_batch, page, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                status, headers = outer.script.pop(0) if outer.script else (200, {})
                if status == 200 and len(body["hashes"]) > outer.max_batch:
                    status = 413
                answer = {"results": [{"matches": [{}] if h["value"].startswith("f") else []}
                                      for h in body["hashes"]]}  # fmt: skip
                data = json.dumps(answer if status == 200 else {"error": {"message": "no"}})
                if status == 200 and outer.page:
                    data = outer.page
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "Scripted":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
