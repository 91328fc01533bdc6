"""A real HTTP server on a loopback port for tests: what a service's webhook or content store,
the EU Centre or NCMEC would be. ``answer(path, headers, body)`` decides each response; every
request is kept (POSTs in ``requests``, GETs in ``fetched``)."""

import contextlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[str, dict[str, str], bytes], tuple[int, str, bytes]]


class Loopback:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.fetched: list[str] = []  # GET requests' paths
        self.arrived = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers)
                status, kind, content = server.answer(self.path, headers, body)
                with server.arrived:
                    server.requests.append((self.path, headers, body))
                    server.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                server.fetched.append(self.path)
                status, kind, content = server.answer(self.path, dict(self.headers), b"")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                # a client that stopped reading (a size or time limit) is its own affair
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Whether ``count`` POST requests have arrived (within ``timeout`` seconds)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
