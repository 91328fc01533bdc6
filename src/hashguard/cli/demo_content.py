"""The demo service's content store: the demo's generated images, served on a loopback port by
the demo process itself, so the review desk can show each detected item (``/content/{ref}``).

Standard library only; it serves the images of one folder by name and answers 404 otherwise.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

_TYPES: Final = {".jpg": "image/jpeg", ".png": "image/png"}


class ContentStore:
    """Serves ``folder``'s images at ``{url}/content/{name}`` until ``close()``."""

    def __init__(self, folder: Path) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.removeprefix("/content/")
                found: Path | None = folder / name
                if not self.path.startswith("/content/") or "/" in name or name.startswith("."):
                    found = None  # only the folder's own files
                elif found is not None and (found.suffix not in _TYPES or not found.is_file()):
                    found = None
                body = found.read_bytes() if found is not None else b"no such item\n"
                self.send_response(200 if found is not None else 404)
                kind = _TYPES[found.suffix] if found is not None else "text/plain"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass  # the service's log is the one to read

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
