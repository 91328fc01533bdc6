"""The offline IP databases: ip2asn files written here (IPv4, IPv6, gzipped, dated or not) and
libloc databases written by Debian's own libloc writer, read by hashguard's reader; the real
database Debian ships checked against Debian's reader and its ``location`` command."""

import gzip
import json
import os
import random
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hashguard.hotline.ipdb import (
    Ip2AsnDatabase,
    IpDatabaseError,
    IpRecord,
    LiblocDatabase,
    open_database,
)

DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_DATABASE = Path("/usr/share/libloc-location/location.db")

V4 = """\
# date: 2026-11-30
127.0.1.0\t127.0.1.255\t64500\tNL\tEXAMPLE-HOSTING Example Hosting B.V.
127.0.2.0\t127.0.2.255\t64501\tDE\tEXAMPLE-CDN
127.0.3.0\t127.0.4.9\t4200000001\tFR\tPRIVATE-FR
127.0.5.0\t127.0.5.255\t0\tNone\tNot routed
"""
V6 = "2001:db8::\t2001:db8:0:ffff:ffff:ffff:ffff:ffff\t64502\tBE\tEXAMPLE-V6\n"


def debian_location() -> None:
    usable = subprocess.run([DEBIAN_PYTHON, "-c", "import location"], capture_output=True)
    if usable.returncode != 0:
        pytest.skip("Debian's python3-location is not installed "
                    "(scripts/ensure-system-packages python3 --test installs it)")  # fmt: skip


def test_ip2asn_ranges_give_network_as_and_country(tmp_path: Path) -> None:
    (tmp_path / "v4.tsv").write_text(V4)
    (tmp_path / "v6.tsv.gz").write_bytes(gzip.compress(V6.encode()))
    database = Ip2AsnDatabase([tmp_path / "v4.tsv", tmp_path / "v6.tsv.gz"])
    assert database.lookup("127.0.1.7") == IpRecord(
        "127.0.1.0/24", 64500, "EXAMPLE-HOSTING Example Hosting B.V.", "NL", False
    )
    assert database.lookup("127.0.2.255") == IpRecord(
        "127.0.2.0/24", 64501, "EXAMPLE-CDN", "DE", False
    )
    # a range that is no single CIDR: the CIDR piece holding the address
    assert database.lookup("127.0.4.3") == IpRecord(
        "127.0.4.0/29", 4200000001, "PRIVATE-FR", "FR", False
    )
    assert database.lookup("2001:db8::1").asn == 64502  # type: ignore[union-attr]
    assert database.lookup("127.0.5.1") is None  # AS 0: not routed
    assert database.lookup("127.0.0.1") is None
    assert database.lookup("::ffff:127.0.1.1") == database.lookup("127.0.1.1")  # as libloc
    assert database.date == "2026-11-30"


def test_an_undated_ip2asn_file_is_dated_by_its_modification_time(tmp_path: Path) -> None:
    path = tmp_path / "ip2asn-v6.tsv"
    path.write_text(V6)
    when = datetime(2025, 3, 4, 12, tzinfo=UTC).timestamp()
    os.utime(path, (when, when))
    database = open_database(path)
    assert (database.name, database.date) == ("ip2asn", "2025-03-04 (file modified)")


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("127.0.0.1\t127.0.0.9\t64500\tNL", "expected 5 tab-separated fields"),
        ("127.0.0.x\t127.0.0.9\t64500\tNL\tX", "does not appear to be an IPv4 or IPv6 address"),
        ("127.0.0.9\t127.0.0.1\t64500\tNL\tX", "is not a range of addresses"),
        ("127.0.0.1\t::1\t64500\tNL\tX", "is not a range of addresses"),
        ("127.0.0.1\t127.0.0.9\tAS64500\tNL\tX", "expected an AS number"),
        ("127.0.0.1\t127.0.0.9\t64500\tNLD\tX", "expected a two-letter country code"),
        ("# date: last tuesday", "expected '# date: YYYY-MM-DD'"),
    ],
)
def test_a_malformed_ip2asn_line_is_named_with_file_and_line(
    tmp_path: Path, line: str, error: str
) -> None:
    path = tmp_path / "ip2asn.tsv"
    path.write_text(f"127.0.9.0\t127.0.9.255\t64500\tNL\tOK\n{line}\n")
    with pytest.raises(IpDatabaseError, match=f"^{path}, line 2: .*{error}"):
        Ip2AsnDatabase([path])


def test_overlapping_and_unreadable_ip2asn_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ip2asn.tsv"
    path.write_text("127.0.9.0\t127.0.9.255\t64500\tNL\tA\n127.0.9.128\t127.0.10.0\t64501\tNL\tB\n")
    with pytest.raises(IpDatabaseError, match=f"{path}, line 2: the range overlaps .* line 1"):
        Ip2AsnDatabase([path])
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(IpDatabaseError, match="not an ip2asn file"):
        open_database(tmp_path / "bad.gz")
    with pytest.raises(IpDatabaseError, match="cannot read"):
        open_database(tmp_path / "absent.tsv")


WRITER = """
import json, sys, location
spec = json.loads(sys.argv[2])
writer = location.Writer()
writer.vendor, writer.description, writer.license = "hashguard tests", "made-up networks", "CC0"
for number, name in spec["ases"]:
    writer.add_as(number).name = name
for network, number, country, anycast in spec["networks"]:
    added = writer.add_network(network)
    added.asn, added.country_code = number, country
    if anycast:
        added.set_flag(location.NETWORK_FLAG_ANYCAST)
writer.write(sys.argv[1])
"""


def write_libloc(path: Path, ases: list[object], networks: list[object]) -> None:
    spec = json.dumps({"ases": ases, "networks": networks})
    written = subprocess.run([DEBIAN_PYTHON, "-c", WRITER, str(path), spec], capture_output=True)
    assert written.returncode == 0, written.stderr.decode()


def test_a_libloc_database_written_by_debians_libloc_is_read(tmp_path: Path) -> None:
    debian_location()
    path = tmp_path / "location.db"
    write_libloc(
        path,
        [[64500, "Example Hosting B.V."], [64510, "Example CDN"], [65000, "Private Wide"]],
        [
            ["127.0.0.0/16", 65000, "BE", False],
            ["127.0.1.0/24", 64500, "NL", False],
            ["127.0.1.128/25", 64510, "DE", True],  # more specific: wins inside
            # (Debian's writer takes AS numbers below 2**31 only: no 4200000000+ here)
            ["2001:db8::/32", 64500, "NL", False],
            ["2001:db8:1::/48", 64520, "FR", False],  # an AS without a name
        ],
    )
    before = datetime.now(UTC).date().isoformat()
    database = open_database(path)
    assert isinstance(database, LiblocDatabase)
    assert database.name == "libloc" and database.date >= before
    assert database.vendor == "hashguard tests"
    assert database.lookup("127.0.1.5") == IpRecord(
        "127.0.1.0/24", 64500, "Example Hosting B.V.", "NL", False
    )
    assert database.lookup("127.0.1.200") == IpRecord(
        "127.0.1.128/25", 64510, "Example CDN", "DE", True
    )
    assert database.lookup("127.0.7.7") == IpRecord(
        "127.0.0.0/16", 65000, "Private Wide", "BE", False
    )
    assert database.lookup("2001:db8:1::9") == IpRecord("2001:db8:1::/48", 64520, None, "FR", False)
    assert database.lookup("2001:db8:2::9") == IpRecord(
        "2001:db8::/32", 64500, "Example Hosting B.V.", "NL", False
    )
    assert database.lookup("127.1.0.1") is None
    assert database.lookup("10.0.0.1") is None


def test_files_that_are_not_libloc_databases_are_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.db"
    short.write_bytes(b"LOCDBXX\x01" + b"\0" * 100)
    with pytest.raises(IpDatabaseError, match=f"^{short}: not a libloc database"):
        LiblocDatabase(short)
    later = tmp_path / "v2.db"
    later.write_bytes(b"LOCDBXX\x02" + b"\0" * 5000)
    with pytest.raises(IpDatabaseError, match="version 2: only version 1 is read"):
        open_database(later)


CROSS_CHECK = """
import json, sys, location
database = location.Database(sys.argv[1])
answers = []
for address in json.loads(sys.argv[2]):
    try:
        network = database.lookup(address)
    except OSError:  # libloc leaks errno for an address it does not hold
        network = None
    if network is None:
        answers.append(None)
        continue
    number = network.asn or None
    known = database.get_as(number) if number else None
    answers.append([str(network), number, known.name if known else None,
                    network.country_code or None,
                    network.has_flag(location.NETWORK_FLAG_ANYCAST)])
print(json.dumps(answers))
"""


def test_the_database_debian_ships_reads_as_debians_libloc_reads_it() -> None:
    debian_location()
    if not DEBIAN_DATABASE.is_file():
        pytest.skip(f"{DEBIAN_DATABASE} absent (Debian's libloc-database)")
    database = LiblocDatabase(DEBIAN_DATABASE)
    cloudflare, google = database.lookup("1.1.1.1"), database.lookup("8.8.8.8")
    assert cloudflare is not None and google is not None
    assert (cloudflare.asn, cloudflare.as_name, cloudflare.anycast) == (
        13335,
        "CLOUDFLARENET",
        True,
    )
    assert google.asn == 15169
    if shutil.which("location"):  # Debian's command says the same
        shown = subprocess.run(["location", "lookup", "1.1.1.1"], capture_output=True, text=True)
        assert "AS13335 - CLOUDFLARENET" in shown.stdout and "Anycast" in shown.stdout
    pick = random.Random(18)
    addresses = [
        ".".join(str(pick.randrange(1 if n == 0 else 0, 224 if n == 0 else 256)) for n in range(4))
        for _ in range(300)
    ] + [f"2{pick.randrange(0x000, 0xA00):03x}:{pick.randrange(1 << 16):x}::1" for _ in range(100)]
    debian = subprocess.run(
        [DEBIAN_PYTHON, "-c", CROSS_CHECK, str(DEBIAN_DATABASE), json.dumps(addresses)],
        capture_output=True,
        text=True,
    )
    assert debian.returncode == 0, debian.stderr
    ours = []
    for address in addresses:
        record = database.lookup(address)
        ours.append(None if record is None else [record.network, record.asn, record.as_name,
                                                  record.country, record.anycast])  # fmt: skip
    differing = [
        (address, mine, theirs)
        for address, mine, theirs in zip(addresses, ours, json.loads(debian.stdout), strict=True)
        if mine != theirs
    ]
    assert differing == []
    assert sum(answer is not None for answer in ours) > 200  # most public addresses are known
