"""Recognise a media format, and so the kind of any file, from its first bytes (never from a
file name)."""

from dataclasses import dataclass
from enum import StrEnum

from hashguard.media.errors import EmptyMedia, UnsupportedMedia

SNIFF_BYTES = 512


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    OTHER = "other"  # any other file: never decoded; only signals of its bytes apply to it


NOT_MEDIA = "not a supported image or video format"


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    kind: MediaKind


JPEG = Format("jpeg", MediaKind.IMAGE)
PNG = Format("png", MediaKind.IMAGE)
GIF = Format("gif", MediaKind.IMAGE)
WEBP = Format("webp", MediaKind.IMAGE)
BMP = Format("bmp", MediaKind.IMAGE)
TIFF = Format("tiff", MediaKind.IMAGE)
HEIF = Format("heif", MediaKind.IMAGE)
AVIF = Format("avif", MediaKind.IMAGE)
MP4 = Format("mp4", MediaKind.VIDEO)
MATROSKA = Format("matroska", MediaKind.VIDEO)
AVI = Format("avi", MediaKind.VIDEO)
MPEG_TS = Format("mpegts", MediaKind.VIDEO)
MPEG_PS = Format("mpeg", MediaKind.VIDEO)
FLV = Format("flv", MediaKind.VIDEO)
OGG = Format("ogg", MediaKind.VIDEO)

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_GENERIC_BRANDS = {b"mif1", b"msf1"}  # any image codec: the compatible brands tell which


def sniff(head: bytes) -> Format:
    """Return the format of media starting with ``head`` (its first ``SNIFF_BYTES`` bytes).

    Raises ``EmptyMedia`` for no bytes and ``UnsupportedMedia`` for anything unrecognised.
    """
    if not head:
        raise EmptyMedia("file is empty")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if head[:2] == b"BM" and len(head) >= 26:
        return BMP
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        return TIFF
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        # The ftyp box lists compatible brands after the major brand and a version.
        end = min(len(head), int.from_bytes(head[:4], "big"))
        compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
        if brand in _AVIF_BRANDS:
            return AVIF
        if (brand in _GENERIC_BRANDS or brand not in _HEIF_BRANDS) and compatible & _AVIF_BRANDS:
            return AVIF
        if brand in _HEIF_BRANDS:
            return HEIF
        return MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MATROSKA
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return MPEG_TS  # three 188-byte transport packets in a row
    if head.startswith(b"\x00\x00\x01\xba"):
        return MPEG_PS
    if head.startswith(b"FLV"):
        return FLV
    if head.startswith(b"OggS"):
        return OGG
    raise UnsupportedMedia(NOT_MEDIA)


def file_kind(head: bytes) -> MediaKind:
    """The kind of a file starting with ``head`` (its first ``SNIFF_BYTES`` bytes): image or
    video for media ``sniff`` recognises, ``OTHER`` for any other bytes.

    Raises ``EmptyMedia`` for no bytes.
    """
    try:
        return sniff(head).kind
    except UnsupportedMedia:
        return MediaKind.OTHER
