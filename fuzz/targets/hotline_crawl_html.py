"""An HTML page the hotline's crawler fetched from a reported URL: the media it shows or links.
The input's first line is the charset the page's server declared (any text a header may carry:
none, a known one, an unknown one, one with control characters); the rest is the page."""

from pathlib import Path

from hashguard.hotline.crawl import media_urls


def one(data: bytes, scratch: Path) -> None:
    charset, _, page = data.partition(b"\n")
    media_urls(page, "https://reported.example/dir/page.html", charset[:60].decode("latin-1"))
