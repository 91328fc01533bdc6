"""Uploaded media, held in memory only (never written to disk: hashes, not media).

A route takes either the raw bytes as the body (any content type but form data) or a
multipart form. Starlette's own form parser spools large files to a temporary file, so forms
are parsed here, in memory, from a body the limit middleware has already bounded.
"""

from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from hashguard.api.errors import ApiError


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    body: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True, slots=True)
class Upload:
    files: dict[str, bytes]  # form field name -> file bytes ("" for a raw body)
    fields: dict[str, str]  # the form's text fields


async def read_upload(request: Request) -> Upload:
    """The request's media: a raw body, or the files and fields of a multipart form.
    Raises ApiError (400) for a malformed form."""
    body = await request.body()
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":
        return Upload({"": body} if body else {}, {})
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "the multipart form has no boundary in its Content-Type")
    parts = _parse(body, boundary)
    files = {p.name: bytes(p.body) for p in parts if p.filename is not None}
    try:
        fields = {p.name: p.body.decode() for p in parts if p.filename is None}
    except UnicodeDecodeError:
        raise ApiError(400, "a form field is not UTF-8 text") from None
    return Upload(files, fields)


def _parse(body: bytes, boundary: bytes) -> list[Part]:
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    name = value = b""

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        nonlocal name
        name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        nonlocal value
        value += data[start:end]

    def on_header_end() -> None:
        nonlocal name, value
        headers[name.lower()] = value
        name = value = b""

    def on_headers_finished() -> None:
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise ApiError(400, "a multipart part has no 'Content-Disposition: form-data; name='")
        filename = options.get(b"filename")
        parts.append(
            Part(
                options[b"name"].decode(errors="replace"),
                filename.decode(errors="replace") if filename is not None else None,
                headers.get(b"content-type", b"").decode(errors="replace"),
            )
        )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].body += data[start:end]

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except ApiError:
        raise
    except Exception as error:  # the parser's own errors: a malformed form
        raise ApiError(400, f"malformed multipart form: {error}") from None
    return parts
