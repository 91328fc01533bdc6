"""The index file: named numpy arrays behind a JSON header, loadable by memory map. No pickle.

Layout, version 1 (all integers little-endian)::

    offset 0    8 bytes   magic b"HGINDEX\\n"
    offset 8    uint32    format version (1)
    offset 12   uint32    header length H
    offset 16   H bytes   header, UTF-8 JSON:
                          {"kind": "hamming" | "exact",
                           "meta": {...kind-specific...},
                           "arrays": [{"name", "dtype", "shape", "offset"}, ...]}
    ...                   each array's bytes in C order at its offset (a multiple of 64)
    last 32 bytes         SHA-256 of every byte before them

Dtypes are numpy strings with explicit byte order ("<u4", "<i8", "|S32"), so a file reads the
same on any machine. Files are written aside, flushed and renamed (``durable``), so a crash
never leaves a half-written index under the real name.
"""

import hashlib
import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from hashguard import durable
from hashguard.errors import Invalid

MAGIC: Final = b"HGINDEX\n"
VERSION: Final = 1
_FIXED: Final = struct.Struct("<8sII")
_ALIGN: Final = 64
_DIGEST: Final = 32
_DTYPES: Final = frozenset({"<u4", "<u8", "<i8", "|u1"} | {f"|S{n}" for n in range(1, 65)})


class IndexFileError(Invalid):
    """An index file that cannot be read: the message names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def write(path: Path, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and ``meta`` to ``path`` atomically."""
    with durable.writing(Path(path), mode=0o600) as file:
        write_into(file, kind, meta, arrays)


def write_into(
    file: BinaryIO, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> bytes:
    """Write the index file of ``arrays`` and ``meta`` into the open ``file`` at its start;
    its SHA-256 (the file's last 32 bytes)."""
    contents = [np.ascontiguousarray(a, a.dtype.newbyteorder("<")) for a in arrays.values()]
    entries = [
        {"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "offset": 0}
        for name, array in zip(arrays, contents, strict=True)
    ]
    # Offsets depend on the header's length and the header holds them: grow until they fit.
    data_start = _align(_FIXED.size)
    while True:
        offset = data_start
        for entry, array in zip(entries, contents, strict=True):
            entry["offset"] = offset
            offset = _align(offset + array.nbytes)
        header = json.dumps({"kind": kind, "meta": meta, "arrays": entries}).encode()
        offsets = [int(str(entry["offset"])) for entry in entries]
        if _FIXED.size + len(header) <= data_start:
            break
        data_start = _align(_FIXED.size + len(header) + 64)
    digest = hashlib.sha256()
    position = 0

    def put(data: bytes | memoryview) -> None:
        nonlocal position
        file.write(data)
        digest.update(data)
        position += len(data)

    put(_FIXED.pack(MAGIC, VERSION, len(header)) + header)
    for offset, array in zip(offsets, contents, strict=True):
        put(bytes(offset - position))
        put(array.reshape(-1).view(np.uint8).data)
    put(bytes(_align(position) - position))
    file.write(digest.digest())
    return digest.digest()


def read(
    path: Path, kind: str, verify: bool = True, memory_map: bool = True
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The meta and read-only arrays of the index file at ``path``.

    With ``memory_map`` the arrays are views of the mapped file (pages loaded up front);
    otherwise they are read into memory. ``verify`` checks the SHA-256. Raises IndexFileError.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size < _FIXED.size + _DIGEST:
                raise IndexFileError(path, "too short to be a hashguard index file")
            if memory_map:
                flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
                buffer: Any = mmap.mmap(file.fileno(), size, flags=flags, prot=mmap.PROT_READ)
            else:
                buffer = bytearray(size)
                file.readinto(buffer)
    except OSError as error:  # kept as the cause: an I/O fault, not a bad file
        raise IndexFileError(path, error.strerror or str(error)) from error
    return parse(path, buffer, kind, verify)


def parse(
    path: Path, buffer: Any, kind: str, verify: bool = True
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The meta and read-only arrays of the index file held in ``buffer`` (bytes, a bytearray,
    a memory map or a memoryview of one; the arrays are views of it), ``path`` naming it in
    errors. ``verify`` checks the SHA-256 over these very bytes. Raises IndexFileError."""
    view = memoryview(buffer)
    size = len(view)
    if size < _FIXED.size + _DIGEST:
        raise IndexFileError(path, "too short to be a hashguard index file")
    magic, version, header_length = _FIXED.unpack_from(view)
    if magic != MAGIC:
        raise IndexFileError(path, "not a hashguard index file (bad magic bytes)")
    if version != VERSION:
        raise IndexFileError(path, f"format version {version}; this hashguard reads {VERSION}")
    end = size - _DIGEST
    if _FIXED.size + header_length > end:
        raise IndexFileError(path, "truncated header")
    if verify and hashlib.sha256(view[:end]).digest() != bytes(view[end:]):
        raise IndexFileError(path, "checksum mismatch: the file is corrupt or was modified")
    data_start = _FIXED.size + header_length
    try:
        header = json.loads(bytes(view[_FIXED.size : data_start]))
        found_kind, meta, listing = header["kind"], header["meta"], list(header["arrays"])
        if not isinstance(meta, dict):
            raise TypeError("meta is not an object")
        arrays = {}
        for entry in listing:
            name, dtype, shape, offset = (entry[k] for k in ("name", "dtype", "shape", "offset"))
            shape = tuple(shape)
            if dtype not in _DTYPES or not all(isinstance(n, int) and n >= 0 for n in shape):
                raise IndexFileError(path, f"array {name!r}: bad dtype {dtype} or shape {shape}")
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            if not isinstance(offset, int) or offset % _ALIGN or offset < data_start:
                raise IndexFileError(path, f"array {name!r}: bad offset {offset}")
            if offset + nbytes > end:
                raise IndexFileError(path, f"array {name!r} runs past the end (truncated file?)")
            array = np.frombuffer(view, np.dtype(dtype), int(np.prod(shape)), offset)
            array = array.reshape(shape)
            array.flags.writeable = False
            arrays[str(name)] = array
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        if isinstance(error, IndexFileError):
            raise
        raise IndexFileError(path, f"malformed header ({error})") from None
    if found_kind != kind:
        raise IndexFileError(path, f"holds a {found_kind!r} index, not {kind!r}")
    return meta, arrays


def _align(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN
