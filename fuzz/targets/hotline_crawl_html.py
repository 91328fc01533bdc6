"""An HTML page the hotline's crawler fetched from a reported URL: the media it shows or links.
The first byte chooses the charset the page's server declared (none, a known one, an unknown
one); the rest is the page."""

from pathlib import Path

from hashguard.hotline.crawl import media_urls

_CHARSETS = ("", "utf-8", "iso-8859-1", "shift_jis", "utf-16", "x-nonsense")


def one(data: bytes, scratch: Path) -> None:
    charset = _CHARSETS[data[0] % len(_CHARSETS)] if data else ""
    media_urls(data[1:], "https://reported.example/dir/page.html", charset)
