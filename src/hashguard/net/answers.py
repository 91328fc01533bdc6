"""Another service's HTTP answer (an httpx.Response) read whatever it holds: its text in the
charset it names when that is a text encoding (UTF-8 otherwise: ``charset=base64`` names a
codec that makes no text, and httpx fails on it), its JSON with any parse failure a ValueError
(JSON nested deeper than the parser goes raises RecursionError)."""

import codecs
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by commands that load httpx only when they use the network
    import httpx


def decoded(data: bytes, charset: str | None) -> str:
    """``data`` as text in ``charset`` if it is a text encoding, else in UTF-8; bytes that do
    not decode are replaced."""
    try:
        text_encoding = charset is not None and codecs.lookup(charset)._is_text_encoding
    except (LookupError, ValueError):  # ValueError: a name with a NUL in it
        text_encoding = False
    try:
        return data.decode(charset if text_encoding and charset else "utf-8", errors="replace")
    except (LookupError, ValueError):  # a codec that fails even so (idna on some bytes)
        return data.decode("utf-8", errors="replace")


def text_of(answer: "httpx.Response") -> str:
    """The answer's body as text (see ``decoded``)."""
    return decoded(answer.content, answer.charset_encoding)


def json_of(answer: "httpx.Response") -> Any:
    """The answer's body as JSON. Raises ValueError when it is not JSON, however it fails."""
    try:
        return json.loads(answer.content)
    except RecursionError:
        raise ValueError("JSON nested deeper than the parser goes") from None
