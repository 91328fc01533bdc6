"""Offline IP databases for the hosting trace: an address's network, AS number and name,
country and anycast flag, from a file on this machine (the trace states each database's date).

Two formats, told apart by their content (``open_database``):

- **ip2asn** (iptoasn.com): tab-separated ``range_start range_end AS_number country_code
  AS_description`` lines, IPv4 or IPv6 or both, optionally gzipped. AS 0 is "Not routed" (no
  record). Lines starting with ``#`` are comments; ``# date: YYYY-MM-DD`` states the data's
  date, else the file's modification time is given, marked "(file modified)".
- **libloc** (IPFire's location database, what Debian's ``libloc-database`` ships at
  /usr/share/libloc-location/location.db): its binary format version 1, read here in Python. A
  big-endian header (creation time, string pool, AS, network, tree and country sections); a
  binary tree over the 128 address bits (IPv4 as ::ffff:a.b.c.d) whose nodes may carry a
  network (country, AS number, flags); the deepest network on an address's path is its own.
"""

import bisect
import gzip
import ipaddress
import itertools
import mmap
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from hashguard.errors import Invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class IpDatabaseError(Invalid):
    """An IP database file that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True, slots=True)
class IpRecord:
    """What a database knows of an address (any field may be unknown)."""

    network: str | None
    asn: int | None
    as_name: str | None
    country: str | None  # ISO 3166 alpha-2, upper case
    anycast: bool


class IpDatabase(Protocol):
    name: str  # "ip2asn", "libloc"
    date: str  # of its data: "2026-11-30", or "2026-11-30 (file modified)"

    def lookup(self, address: str) -> IpRecord | None:
        """The record of ``address``, or None when the database does not know it."""
        ...


def open_database(path: Path) -> IpDatabase:
    """The database in ``path``, libloc or ip2asn by its first bytes.

    Raises IpDatabaseError naming the file (and line) when it is neither or is malformed.
    """
    try:
        with open(path, "rb") as file:
            start = file.read(len(LIBLOC_MAGIC))
    except OSError as error:
        raise IpDatabaseError(f"{path}: cannot read: {error.strerror or error}") from None
    return LiblocDatabase(path) if start == LIBLOC_MAGIC else Ip2AsnDatabase([path])


class Ip2AsnDatabase:
    """One or more ip2asn TSV files (IPv4, IPv6 or combined) as sorted ranges, searched by
    bisection. Raises IpDatabaseError naming the file and line of a malformed or overlapping
    range."""

    name = "ip2asn"

    def __init__(self, paths: Sequence[Path]) -> None:
        ranges: list[tuple[int, int, int, str | None, str, str]] = []  # start, end, asn, ...
        dates: list[str] = []
        for path in paths:
            dates.append(self._read(Path(path), ranges))
        ranges.sort()
        for before, after in itertools.pairwise(ranges):
            if after[0] <= before[1]:
                raise IpDatabaseError(f"{after[5]}: the range overlaps the one at {before[5]}")
        self._starts = [r[0] for r in ranges]
        self._ranges = ranges
        self.date = min(dates) if dates else "unknown"

    def lookup(self, address: str) -> IpRecord | None:
        key = _key(ipaddress.ip_address(address))
        at = bisect.bisect_right(self._starts, key) - 1
        if at < 0 or key > self._ranges[at][1]:
            return None
        start, end, asn, country, as_name, _ = self._ranges[at]
        if asn == 0:  # "Not routed"
            return None
        return IpRecord(_network_of(key, start, end), asn, as_name or None, country, False)

    def _read(self, path: Path, ranges: list[tuple[int, int, int, str | None, str, str]]) -> str:
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        except OSError as error:
            raise IpDatabaseError(f"{path}: cannot read: {error.strerror or error}") from None
        except (EOFError, gzip.BadGzipFile, UnicodeDecodeError):
            raise IpDatabaseError(f"{path}: not an ip2asn file (not UTF-8 text or gzip)") from None
        date: str | None = None
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{path}, line {number}"
            if line.startswith("#"):
                key, _, value = line.lstrip("# ").partition(":")
                if key.strip().lower() == "date":
                    date = _stated_date(value.strip(), where)
                continue
            if not line.strip():
                continue
            ranges.append(_range(line, where))
        if date is not None:
            return date
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return f"{modified:%Y-%m-%d} (file modified)"


def _range(line: str, where: str) -> tuple[int, int, int, str | None, str, str]:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) != 5:
        raise IpDatabaseError(f"{where}: expected 5 tab-separated fields (range_start "
                              f"range_end AS_number country_code AS_description), "
                              f"got {len(fields)}")  # fmt: skip
    first, last, asn_text, country, description = fields
    try:
        start, end = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
    except ValueError as error:
        raise IpDatabaseError(f"{where}: {error}") from None
    if start.version != end.version or int(end) < int(start):
        raise IpDatabaseError(f"{where}: {first} - {last} is not a range of addresses")
    if not asn_text.strip().isdigit() or int(asn_text) >= 2**32:
        raise IpDatabaseError(f"{where}: expected an AS number (0 to 4294967295), "
                              f"got {asn_text!r}")  # fmt: skip
    code = country.strip().upper()
    if code in ("NONE", "", "ZZ", "--"):
        code = ""
    elif len(code) != 2 or not code.isalpha():
        raise IpDatabaseError(f"{where}: expected a two-letter country code or None, "
                              f"got {country!r}")  # fmt: skip
    return (_key(start), _key(end), int(asn_text), code or None, description.strip(), where)


def _stated_date(value: str, where: str) -> str:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise IpDatabaseError(f"{where}: expected '# date: YYYY-MM-DD', got {value!r}") from None


def _key(address: Address) -> int:
    """IPv4 and IPv6 in one order: IPv4 as ::ffff:a.b.c.d, as libloc keeps it."""
    if address.version == 4:
        return 0xFFFF_0000_0000 | int(address)
    return int(address)


def _address(key: int) -> Address:
    if key >> 32 == 0xFFFF:
        return ipaddress.IPv4Address(key & 0xFFFF_FFFF)
    return ipaddress.IPv6Address(key)


def _network_of(key: int, start: int, end: int) -> str:
    """The CIDR network of the range holding ``key`` (a range need not be one CIDR)."""
    for network in ipaddress.summarize_address_range(_address(start), _address(end)):
        if _address(key) in network:
            return str(network)
    return f"{_address(start)}-{_address(end)}"


LIBLOC_MAGIC: Final = b"LOCDBXX"
_HEADER = struct.Struct(">QIII" + "II" * 5 + "HH")  # created_at ... pool, signature lengths
_HEADER_SIZE: Final = _HEADER.size + 2 * 2048 + 32  # then two signatures and padding
_NODE = struct.Struct(">III")  # zero, one, network (0xffffffff: none)
_NETWORK = struct.Struct(">2s2xIH2x")  # country code, AS number, flags
_AS = struct.Struct(">II")  # number, name (an offset into the string pool)
_ANYCAST: Final = 1 << 2
_NO_NETWORK: Final = 0xFFFF_FFFF


class LiblocDatabase:
    """An IPFire location database (format version 1), memory-mapped. Raises IpDatabaseError
    naming the file when it is not one or a section lies outside the file."""

    name = "libloc"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as file:
                self._data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as error:  # ValueError: an empty file cannot be mapped
            raise IpDatabaseError(f"{path}: cannot read: {error}") from None
        data = self._data
        if len(data) < 8 + _HEADER_SIZE or data[:7] != LIBLOC_MAGIC:
            raise IpDatabaseError(f"{path}: not a libloc database (no LOCDBXX header)")
        if data[7] != 1:
            raise IpDatabaseError(f"{path}: libloc database version {data[7]}: "
                                  "only version 1 is read")  # fmt: skip
        (created, self._vendor, self._description, _, as_offset, as_length, networks_offset,
         networks_length, tree_offset, tree_length, _, _, pool_offset, pool_length, _,
         _) = _HEADER.unpack_from(data, 8)  # fmt: skip
        for offset, length in ((as_offset, as_length), (networks_offset, networks_length),
                               (tree_offset, tree_length), (pool_offset, pool_length)):  # fmt: skip
            if offset + length > len(data):
                raise IpDatabaseError(f"{path}: truncated (a section ends past the file's end)")
        self._as = (as_offset, as_length // _AS.size)
        self._networks = (networks_offset, networks_length // _NETWORK.size)
        self._tree = (tree_offset, tree_length // _NODE.size)
        self._pool = (pool_offset, pool_length)
        self.created_at = datetime.fromtimestamp(created, UTC)
        self.date = f"{self.created_at:%Y-%m-%d}"
        if self._tree[1] == 0:
            raise IpDatabaseError(f"{path}: the database has no network tree")

    @property
    def vendor(self) -> str:
        return self._string(self._vendor)

    @property
    def description(self) -> str:
        return self._string(self._description)

    def lookup(self, address: str) -> IpRecord | None:
        key = _key(ipaddress.ip_address(address))
        tree_offset, nodes = self._tree
        node, depth = 0, 0
        found: tuple[int, int] | None = None  # the deepest network on the path, its prefix
        while True:
            zero, one, network = _NODE.unpack_from(self._data, tree_offset + node * _NODE.size)
            if network != _NO_NETWORK:
                found = (network, depth)
            if depth == 128:
                break
            node = one if (key >> (127 - depth)) & 1 else zero
            if node == 0:
                break
            if node >= nodes:
                raise IpDatabaseError(f"{self.path}: corrupt network tree (node {node} of "
                                      f"{nodes})")  # fmt: skip
            depth += 1
        if found is None:
            return None
        index, prefix = found
        networks_offset, count = self._networks
        if index >= count:
            raise IpDatabaseError(f"{self.path}: corrupt network tree (network {index} of "
                                  f"{count})")  # fmt: skip
        code, asn, flags = _NETWORK.unpack_from(self._data, networks_offset + index * 12)
        country = code.decode("ascii", "replace").strip("\0").upper() or None
        mask = ((1 << prefix) - 1) << (128 - prefix)
        network = _network(key & mask, prefix)
        return IpRecord(network, asn or None, self._as_name(asn) if asn else None, country,
                        bool(flags & _ANYCAST))  # fmt: skip

    def _as_name(self, number: int) -> str | None:
        """The AS's name, by bisection of the AS section (sorted by number)."""
        offset, count = self._as
        low, high = 0, count - 1
        while low <= high:
            middle = (low + high) // 2
            found, name = _AS.unpack_from(self._data, offset + middle * _AS.size)
            if found == number:
                return self._string(name) or None
            if found < number:
                low = middle + 1
            else:
                high = middle - 1
        return None

    def _string(self, at: int) -> str:
        offset, length = self._pool
        if at >= length:
            return ""
        end = self._data.find(b"\0", offset + at, offset + length)
        return self._data[offset + at : end if end >= 0 else offset + length].decode(
            "utf-8", "replace"
        )


def _network(start: int, prefix: int) -> str:
    if start >> 32 == 0xFFFF and prefix >= 96:
        return str(ipaddress.IPv4Network((start & 0xFFFF_FFFF, prefix - 96)))
    return str(ipaddress.IPv6Network((start, prefix)))
