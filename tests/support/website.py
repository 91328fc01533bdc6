"""A real website on a loopback port for the fetcher's and the crawler's tests: each path answers
a ``Page`` (status, content type, headers, body), sent whole with its length, chunked without
one, or trickled (a pause between chunks: a slow server); ``raw`` pages write their bytes as
they are, status line and headers included. ``pages`` is a mapping of paths, or a function of
the path (None: 404). Every GET's path is kept in ``fetched``; a POST is answered by ``posted``
(path, headers, body -> Page; none: 405). A site listens on 127.0.0.1, or
on another loopback ``address`` (Linux routes all of 127.0.0.0/8 to lo): websites of several
hosters, each on its own address."""

import contextlib
import ipaddress
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Page:
    body: bytes | Sequence[bytes] = b""  # a sequence: sent as these chunks
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    length: bool = True  # declare Content-Length; False: chunked transfer encoding
    pause: float = 0.0  # seconds between chunks
    raw: bool = False  # the chunks are the whole answer, status line and headers too


def redirect(location: str, status: int = 302) -> Page:
    return Page(status=status, content_type="text/plain", headers={"Location": location})


Pages = Mapping[str, Page] | Callable[[str], Page | None]
Posted = Callable[[str, dict[str, str], bytes], Page]


class Website:
    def __init__(
        self, pages: Pages, address: str = "127.0.0.1", posted: Posted | None = None
    ) -> None:
        self.pages = pages
        self.posted = posted
        self.fetched: list[str] = []
        self.stop = threading.Event()  # ends trickles at close
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.fetched.append(self.path)
                page = site.page(self.path)
                # The client may give up (a timeout, a size limit): as it should.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.answer(page)
                self.close_connection = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                page = (site.posted(self.path, dict(self.headers), body) if site.posted
                        else Page(b"no POST here", "text/plain", 405))  # fmt: skip
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.answer(page)
                self.close_connection = True

            def answer(self, page: Page) -> None:
                chunks = [page.body] if isinstance(page.body, bytes) else list(page.body)
                if page.raw:
                    self.send_chunks(chunks, page.pause, chunked=False)
                    return
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                for name, value in page.headers.items():
                    self.send_header(name, value)
                if page.length:
                    self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.send_chunks(chunks, page.pause, chunked=not page.length)

            def send_chunks(self, chunks: list[bytes], pause: float, chunked: bool) -> None:
                for chunk in chunks:
                    if pause and site.stop.wait(pause):
                        return
                    if chunked and chunk:
                        chunk = b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    self.wfile.write(chunk)
                    self.wfile.flush()
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.address = address
        self.port = int(self.server.server_address[1])
        self.url = f"http://{address}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def page(self, path: str) -> Page:
        found = self.pages(path) if callable(self.pages) else self.pages.get(path)
        return found or Page(b"not found", "text/plain", 404)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def website(
    pages: Pages, address: str = "127.0.0.1", posted: Posted | None = None
) -> Iterator[Website]:
    """A website serving ``pages`` on ``address`` until the block ends."""
    site = Website(pages, address, posted)
    try:
        yield site
    finally:
        site.close()


def resolving(names: Mapping[str, str]) -> Callable[[str, int, float], list[str]]:
    """A resolver (for ``UrlFetcher(resolve=...)``) answering each name with its address and an
    IP literal with itself; any other name has no address."""

    def resolve(host: str, port: int, timeout: float) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            return [names[host]] if host in names else []

    return resolve
