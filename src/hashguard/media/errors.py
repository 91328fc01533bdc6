"""Why a piece of media was refused. Every error says what was wrong in words a user can act on."""

import re

from hashguard.errors import Invalid, TooLarge, Unsupported


class MediaError(Invalid):
    """Base class: the media could not be decoded or hashed."""


class EmptyMedia(MediaError):
    """The input has no bytes."""


class UnsupportedMedia(MediaError, Unsupported):
    """The bytes are not a format hashguard decodes."""


class CorruptMedia(MediaError):
    """The format was recognised but the data is truncated or damaged."""


class LimitExceeded(MediaError, TooLarge):
    """A declared or measured size is over a configured limit; refused before decoding pixels."""

    def __init__(self, what: str, value: float | None, limit: float, unit: str = "") -> None:
        self.what = what
        self.value = value
        self.limit = limit
        unit = f" {unit}" if unit else ""
        shown = "" if value is None else f" {_fmt(value)}{unit}"
        super().__init__(f"{what}{shown} exceeds the limit of {_fmt(limit)}{unit}")


def _fmt(number: float) -> str:
    if float(number).is_integer():
        return f"{int(number):,}"
    return f"{number:,.1f}"


def reason(exc: BaseException) -> str:
    """A one-line, lower-case description of a decoder's exception, for an error message."""
    strerror = getattr(exc, "strerror", None)  # FFmpeg errors: the message without errno or path
    text = " ".join(str(strerror or exc).split()) or type(exc).__name__
    if re.fullmatch(r"decoder error -?\d+", text):  # Pillow's words for a failing C decoder
        text = f"the compressed data is damaged ({text})"
    return text[0].lower() + text[1:]
