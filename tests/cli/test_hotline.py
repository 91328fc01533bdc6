"""``hashguard hotline ...`` with real files: a real DNS server on loopback answering a test zone
(a site, a site behind a CNAME into a "CDN"), an ip2asn file and a registry of hosters written
here mapping loopback ranges to made-up networks, AS numbers and countries, a partners file with
owner-only key files, a real website serving generated images and a real police endpoint on
loopback. The settings come from a ``--config`` file's ``[hotline]`` section, as for ``serve``.

Each command's output, exit status and one-line errors; a whole round from the command line:
report -> run-once (crawl, triage, trace) -> queue -> assess -> run-once (route, the police's
report delivered) -> the same images at another URL triaged without anyone viewing them."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hashguard.hotline.intake import Intake
from hashguard.lists.model import Category
from hashguard.store import audit
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.dns import DnsServer, dns_server, free_udp_port
from support.hotline_items import BASELINE, NOT_ILLEGAL, events, hashes_of, new_case, queued_item
from support.invoke import Ran, hashguard
from support.loopback import Loopback
from support.media import jpeg

ZONE = {
    "www.hoster-nl.test": ["A 127.0.0.1"],
    "www.site-cdn.test": ["CNAME site.edge.cdn.test"],
    "site.edge.cdn.test": ["A 127.0.2.10"],
    "unknown.test": ["A 127.0.9.9"],
}
IP2ASN = """\
# date: 2026-11-30
127.0.0.0\t127.0.0.255\t64500\tNL\tEXAMPLE-HOSTING
127.0.2.0\t127.0.2.255\t64510\tUS\tEDGE-CDN
"""
HOSTERS = """\
[[hoster]]
name = "Example Hosting B.V."
country = "NL"
asns = [64500]
abuse_email = "abuse@hosting.example"

[[hoster]]
name = "Edge CDN"
asns = [64510]
abuse_api = "https://edge.example/abuse"
cdn = true
"""
POLICE_KEY = "police-secret-key-0123"

zone = dns_server(ZONE)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory to run in, no HASHGUARD_* settings from the test's world, and the hotline's
    files: IP database, hosters, partners (the police at ``police_url``, set by the test)."""
    monkeypatch.chdir(tmp_path)
    for name in ("HASHGUARD_DATABASE_URL", "HASHGUARD_CONFIG", "HASHGUARD_HOTLINE_COUNTRY",
                 "HASHGUARD_HOTLINE_PARTNERS", "HASHGUARD_HOTLINE_RESOLVER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "ip2asn.tsv").write_text(IP2ASN)
    (tmp_path / "hosters.toml").write_text(HOSTERS)
    return tmp_path


def config(scratch: Path, zone: DnsServer, police_url: str = "http://127.0.0.1:9/reports",
           extra: str = "") -> Path:  # fmt: skip
    """hg.toml: the database, the networks the crawler may reach, the [hotline] section."""
    keys = scratch / "keys"
    keys.mkdir(exist_ok=True)
    (keys / "police.key").write_text(POLICE_KEY + "\n")
    (keys / "police.key").chmod(0o600)
    (scratch / "partners.toml").write_text(
        f'[police]\nname = "Police NL"\nurl = "{police_url}"\nkey_file = "keys/police.key"\n'
    )
    path = scratch / "hg.toml"
    path.write_text(f"""\
[database]
database_url = "sqlite:///{scratch / "hg.db"}"

[hotline]
hotline_country = "NL"
hotline_networks = ["127.0.0.0/8"]
hotline_resolver = ["{zone.address}"]
hotline_ip_databases = ["{scratch / "ip2asn.tsv"}"]
hotline_hosters = "{scratch / "hosters.toml"}"
hotline_partners = "{scratch / "partners.toml"}"
{extra}""")
    return path


def engine_of(scratch: Path) -> Engine:
    return open_engine(f"sqlite:///{scratch / 'hg.db'}")


def one_error(ran: Ran, code: int = 1) -> str:
    """The one line a failed command says (``hashguard: ...``), its status checked."""
    assert ran.returncode == code, ran.stdout + ran.stderr
    [line] = ran.stderr.splitlines()
    assert line.startswith("hashguard: ")
    return line.removeprefix("hashguard: ")


# --- trace ----------------------------------------------------------------------------------


def test_trace_names_hoster_as_country_and_the_database_date(
    scratch: Path, zone: DnsServer
) -> None:
    ran = hashguard("hotline", "trace", "https://www.hoster-nl.test/gallery?id=7",
                    "--resolver", zone.address, "--ip-database", "ip2asn.tsv",
                    "--hosters", "hosters.toml")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert re.fullmatch(r"https://www\.hoster-nl\.test/gallery\?id=7  traced \S+ \S+Z", lines[0])
    assert lines[1:] == [
        "host        www.hoster-nl.test",
        "address     127.0.0.1  network 127.0.0.0/24  AS64500 EXAMPLE-HOSTING  country NL  "
        "hoster Example Hosting B.V.",
        "hoster      Example Hosting B.V. (NL); abuse: abuse@hosting.example",
        "country     NL",
        "cdn         no",
        "databases   ip2asn 2026-11-30",
    ]


def test_trace_reads_the_hotline_section_and_finds_the_cdn_as_json(
    scratch: Path, zone: DnsServer
) -> None:
    ran = hashguard("hotline", "trace", "http://www.site-cdn.test/x", "--format", "json",
                    "--config", str(config(scratch, zone)))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    assert found["dns"]["cnames"] == ["site.edge.cdn.test"]
    assert found["addresses"] == [
        {"address": "127.0.2.10", "network": "127.0.2.0/24", "asn": 64510, "as_name": "EDGE-CDN",
         "country": "US", "anycast": False, "cdn": True, "hoster": "Edge CDN"}
    ]  # fmt: skip
    assert (found["cdn"], found["country"], found["hoster"]["name"]) == (True, "US", "Edge CDN")
    assert found["databases"] == ["ip2asn 2026-11-30"] and found["unresolved"] == []


def test_what_cannot_be_resolved_is_said_and_the_status_is_still_0(
    scratch: Path, zone: DnsServer
) -> None:
    ran = hashguard("hotline", "trace", "https://unknown.test/", "--resolver", zone.address,
                    "--ip-database", "ip2asn.tsv", "--hosters", "hosters.toml")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "unresolved  no IP database knows 127.0.9.9" in ran.stdout
    assert "unresolved  no hoster in the registry for 127.0.9.9" in ran.stdout
    ran = hashguard("hotline", "trace", "https://missing.test/", "--resolver", zone.address)
    assert ran.returncode == 0, ran.stderr
    assert "unresolved  no address: no such domain" in ran.stdout
    assert "unresolved  no IP database configured" in ran.stdout
    ran = hashguard("hotline", "trace", "https://www.hoster-nl.test/",
                    "--resolver", f"127.0.0.1:{free_udp_port()}")  # fmt: skip
    assert ran.returncode == 0 and "unresolved  no address: " in ran.stdout


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (("ftp://files.example/x",), "URL 'ftp://files.example/x' is of scheme ftp"),
        (("https://10.1.2.3/x",), "10.1.2.3"),
        (("https://www.hoster-nl.test/", "--ip-database", "absent.tsv"),
         "absent.tsv: cannot read: No such file or directory"),
        (("https://www.hoster-nl.test/", "--resolver", "dns.example"), "nameserver 'dns.example'"),
    ],
)  # fmt: skip
def test_a_bad_url_or_file_is_one_line_and_status_1(
    scratch: Path, arguments: tuple[str, ...], said: str
) -> None:
    assert said in one_error(hashguard("hotline", "trace", *arguments))


def test_a_bad_hosters_file_names_its_line(scratch: Path) -> None:
    (scratch / "bad.toml").write_text('[[hoster]]\nname = "A"\nasns = ["x"]\n')
    said = one_error(hashguard("hotline", "trace", "https://a.test/", "--hosters", "bad.toml"))
    assert said.startswith("bad.toml, line 3: ")


# --- partners -------------------------------------------------------------------------------


def test_partners_lists_endpoints_and_key_files_never_the_key(
    scratch: Path, zone: DnsServer
) -> None:
    path = config(scratch, zone)
    (scratch / "keys" / "de.key").write_text("de-secret-key\n")
    (scratch / "keys" / "de.key").chmod(0o644)  # every user can read it: refused
    with (scratch / "partners.toml").open("a") as file:
        file.write('\n[[partner]]\nname = "Hotline DE"\ncountries = ["DE", "AT"]\n'
                   'url = "https://hotline-de.example/"\nkey_file = "keys/de.key"\n')  # fmt: skip
    ran = hashguard("hotline", "partners", "--config", str(path))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        f"partners file: {scratch / 'partners.toml'}",
        "partner       Hotline DE  DE, AT  https://hotline-de.example/v1/hotline/referrals  "
        f"({scratch / 'keys/de.key'}: the key file can be read by every user (mode 0644); make "
        f"it owner-only: chmod 600 {scratch / 'keys/de.key'})",
        "police        Police NL  -  http://127.0.0.1:9/reports  "
        f"(key file {scratch / 'keys/police.key'} readable)",
    ]
    assert POLICE_KEY not in ran.stdout + ran.stderr and "de-secret" not in ran.stdout
    checked = hashguard("hotline", "partners", "check", "--config", str(path))
    assert checked.stdout == ran.stdout
    assert one_error(checked) == "1 key file cannot be used"
    (scratch / "keys" / "de.key").chmod(0o600)
    assert hashguard("hotline", "partners", "check", "--config", str(path)).returncode == 0


def test_a_bad_partners_file_names_its_line_and_none_is_said(scratch: Path) -> None:
    (scratch / "p.toml").write_text('[[partner]]\nname = "X"\ncountries = ["de"]\n'
                                    'url = "https://x.example/"\n')  # fmt: skip
    said = one_error(hashguard("hotline", "partners", "check", "--partners", "p.toml"))
    assert said == "p.toml, line 3: partner 1: 'de' is not a country code (two capital letters)"
    said = one_error(hashguard("hotline", "partners"))
    assert said == "no partners file: give --partners PATH or set hotline_partners"


# --- reports, run-once, queue, assess, case -------------------------------------------------


def test_a_round_from_the_command_line(scratch: Path, zone: DnsServer) -> None:
    images = {"/a.jpg": jpeg(61), "/b.jpg": jpeg(62), "/c.jpg": jpeg(61),
              "/d.jpg": jpeg(62)}  # fmt: skip
    pages = {"/page": b'<html><img src="/a.jpg"><img src="/b.jpg"></html>',
             "/again": b'<html><img src="/c.jpg"><img src="/d.jpg"></html>'}  # fmt: skip

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if path in pages:
            return 200, "text/html", pages[path]
        if path in images:
            return 200, "image/jpeg", images[path]
        return 404, "text/plain", b"not here"

    site = Loopback(answer)
    police = Loopback(lambda path, headers, body: (202, "application/json", b"{}"))
    try:
        port = site.url.rsplit(":", 1)[1]
        path = str(config(scratch, zone, f"{police.url}/reports"))
        engine = engine_of(scratch)
        intake = Intake(engine, reports_per_hour=10, retain=timedelta(days=1))
        url = f"http://www.hoster-nl.test:{port}/page"
        receipt = intake.report([url], "a forum", "two pictures", contact="me@reporter.example")

        ran = hashguard("hotline", "run-once", "--config", path)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert ran.stdout.splitlines() == [
            "cases handled: 1",
            "reported URLs crawled: 1",
            "items found: 2 (0 triaged without anyone viewing them, 2 queued for analysts, "
            "0 failed)",
            "cases routed: 0",
            "outbox: 0 delivered, 0 waiting",
        ]
        [case_id] = receipt.cases
        listed = hashguard("hotline", "reports", "--config", path)
        assert listed.returncode == 0
        assert re.fullmatch(rf"{receipt.reference}  \S+ \S+Z  public\n  case {case_id}  "
                            rf"triaged      {re.escape(url)}\n", listed.stdout)  # fmt: skip
        as_json = hashguard("hotline", "reports", "--format", "jsonl", "--config", path)
        [report] = [json.loads(line) for line in as_json.stdout.splitlines()]
        assert report["cases"] == [{"id": case_id, "url": url, "state": "triaged"}]
        assert (report["reference"], report["seen_where"]) == (receipt.reference, "a forum")
        assert "reporter.example" not in listed.stdout + as_json.stdout  # never the contact

        queue = hashguard("hotline", "queue", "--config", path).stdout.splitlines()
        assert [line.split("  ")[1:] for line in queue] == [
            [f"case {case_id}", "image", "queued", f"http://www.hoster-nl.test:{port}/a.jpg"],
            [f"case {case_id}", "image", "queued", f"http://www.hoster-nl.test:{port}/b.jpg"],
        ]
        first, second = (int(line.split()[1]) for line in queue)
        labels = [f"--label={group}={value}" for group, value in BASELINE.items()]
        ran = hashguard("hotline", "assess", str(first), *labels, "--analyst", "alice",
                        "--config", path)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert re.fullmatch(rf"item {first}: assessed \(assessment \d+ by alice\): "
                            r"iccam=baseline, age=prepubescent, industry=A1, depiction=real; "
                            r"illegal in [A-Z, ]*NL[A-Z, ]*; hashes on hotline-illegal\n",
                            ran.stdout)  # fmt: skip
        ran = hashguard(
            "hotline",
            "assess",
            str(second),
            "--analyst",
            "bob",
            "--config",
            path,
            *[f"--label={group}={value}" for group, value in NOT_ILLEGAL.items()],
        )
        assert "not illegal anywhere; hashes on hotline-not-illegal" in ran.stdout
        assert hashguard("hotline", "queue", "--config", path).stdout == (
            "no items wait for an analyst\n"
        )

        ran = hashguard("hotline", "run-once", "--config", path)
        assert ran.returncode == 0, ran.stderr
        assert "cases routed: 1 (domestic 1)" in ran.stdout
        assert "outbox: 1 delivered, 0 waiting" in ran.stdout
        [(_, headers, body)] = police.requests
        assert headers["Authorization"] == f"Bearer {POLICE_KEY}"
        assert json.loads(body)["url"] == url

        shown = hashguard("hotline", "case", str(case_id), "--config", path)
        assert shown.returncode == 0, shown.stderr
        text = shown.stdout
        assert text.startswith(f"case {case_id}  routed  {url}\n")
        assert f"  {receipt.reference}  " in text and "seen: a forum" in text
        assert "hoster Example Hosting B.V.  country NL" in text
        assert "domestic  Example Hosting B.V.  notice, police: " in text
        assert "queued  to Example Hosting B.V. (abuse@hosting.example)  2 URLs" in text
        assert re.search(r"police to police  delivered \S+ \S+Z", text)
        assert "labels: iccam=baseline" in text and "pdq: " in text
        assert "reporter.example" not in text

        # The same images at another URL: decided without anyone viewing them.
        intake.report([f"http://www.hoster-nl.test:{port}/again"], "a chat")
        viewed = len(events(engine, "hotline.item.viewed"))
        ran = hashguard("hotline", "run-once", "--config", path)
        assert "items found: 2 (2 triaged without anyone viewing them, 0 queued for analysts, " \
               "0 failed)" in ran.stdout  # fmt: skip
        assert "cases routed: 1 (domestic 1)" in ran.stdout
        assert len(events(engine, "hotline.item.viewed")) == viewed == 0
    finally:
        site.close()
        police.close()


@pytest.fixture
def items(scratch: Path, zone: DnsServer) -> tuple[Path, list[int]]:
    """The configuration and two queued items of a case (tests/support/hotline_items.py)."""
    path = config(scratch, zone)
    engine = engine_of(scratch)
    case_id = new_case(engine, "https://www.hoster-nl.test/page")
    return path, [queued_item(engine, case_id, f"https://www.hoster-nl.test/{n}.jpg",
                              hashes_of(jpeg(70 + n))) for n in range(2)]  # fmt: skip


def assess(path: Path, item: int, *options: str, labels: dict[str, str] = BASELINE) -> Ran:
    given = [f"--label={group}={value}" for group, value in labels.items()]
    return hashguard("hotline", "assess", str(item), *given, "--config", str(path), *options)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--label", "iccam"), "--label 'iccam': expected GROUP=VALUE (e.g. iccam=baseline)"),
        (("--label", "colour=red"), "unknown label group 'colour' (the groups: iccam, age, "
                                    "industry, iwf, depiction)"),
        (("--label", "age=adult"), "--label 'age=adult': age is labelled twice"),
    ],
)  # fmt: skip
def test_labels_the_vocabulary_refuses_are_one_line_and_status_1(
    items: tuple[Path, list[int]], options: tuple[str, ...], said: str
) -> None:
    path, (item, _) = items
    assert one_error(assess(path, item, "--analyst", "alice", *options)) == said


def test_assessing_what_is_not_waiting_is_refused_in_one_line(
    items: tuple[Path, list[int]],
) -> None:
    path, (item, _) = items
    assert one_error(assess(path, 999, "--analyst", "alice")) == "no hotline item number 999"
    assert assess(path, item, "--analyst", "alice").returncode == 0
    said = one_error(assess(path, item, "--analyst", "bob"))
    assert said == f"item {item} is assessed: it is not waiting for an analyst"
    inconsistent = {**NOT_ILLEGAL, "age": "adult", "industry": "A1"}
    said = one_error(assess(path, items[1][1], "--analyst", "alice", labels=inconsistent))
    assert said.startswith("inconsistent labels (age adult, industry A1): ")


def test_four_eyes_as_configured(items: tuple[Path, list[int]]) -> None:
    path, (item, _) = items
    ran = assess(path, item, "--analyst", "alice", "--hotline-four-eyes")
    assert re.fullmatch(rf"item {item}: pending \(assessment \d+ by alice\): a second analyst "
                        r"must agree\n", ran.stdout)  # fmt: skip
    said = one_error(assess(path, item, "--analyst", "alice", "--hotline-four-eyes"))
    assert "alice" in said
    ran = assess(path, item, "--analyst", "bob", "--hotline-four-eyes")
    assert ran.returncode == 0 and f"item {item}: assessed" in ran.stdout
    assert "by alice and bob" in ran.stdout


def test_four_eyes_the_service_was_started_with_hold_here_too(
    items: tuple[Path, list[int]], scratch: Path
) -> None:
    """A deployment's four eyes are what `serve` last started with (its recorded
    configuration): an assessment from the command line without the flag needs them too."""
    path, (item, _) = items
    engine = engine_of(scratch)
    with engine.begin() as connection:
        audit.append(connection, "hashguard serve", "service.configuration", "service",
                     {"hotline": {"hotline_four_eyes": True}})  # fmt: skip
    ran = assess(path, item, "--analyst", "alice")
    assert ran.returncode == 0 and f"item {item}: pending" in ran.stdout


def test_without_a_country_or_with_a_bad_file_the_hotline_cannot_run(
    items: tuple[Path, list[int]], scratch: Path
) -> None:
    path, (item, _) = items
    said = one_error(assess(path, item, "--analyst", "a", "--hotline-country", ""), code=2)
    assert said.startswith("the hotline is off: set hotline_country")
    (scratch / "rules.toml").write_text("[[rule]]\nkind = 'sideways'\n")
    said = one_error(hashguard("hotline", "run-once", "--config", str(path),
                               "--hotline-routing", "rules.toml"), code=2)  # fmt: skip
    assert said.startswith("rules.toml, line ")
    said = one_error(hashguard("hotline", "run-once", "--config", str(path),
                               "--hotline-country", "SE"), code=2)  # fmt: skip
    assert said == (
        "the built-in vocabulary has no legality rules for SE, the hotline's "
        'country: add them (docs/formats.md, "Hotline vocabulary")'
    )


def test_an_unknown_case_is_one_line(items: tuple[Path, list[int]]) -> None:
    path, _ = items
    said = one_error(hashguard("hotline", "case", "999", "--config", str(path)))
    assert said == "no hotline case 999"
    too_large = hashguard("hotline", "case", "9" * 20, "--config", str(path))
    assert too_large.returncode == 2 and "Traceback" not in too_large.stderr
    assert "less than or equal to" in too_large.stderr and "Traceback" not in too_large.stdout


# --- config check ---------------------------------------------------------------------------


def rows(ran: Ran, section: str) -> list[str]:
    after = ran.stdout.partition(f"\n{section}:\n")[2]
    return after.partition("\n\n")[0].splitlines()


def test_config_check_loads_the_hotline_files_and_asks_the_resolver(
    scratch: Path, zone: DnsServer
) -> None:
    path = config(scratch, zone)
    ran = hashguard("config", "check", "--config", str(path))
    assert ran.returncode == 0, ran.stdout
    assert rows(ran, "checked") == [
        "ok:      hotline_vocabulary: the built-in vocabulary: 5 label groups, legality rules "
        "for 9 countries (BE, DE, FR, GB, NL, US, CA, AU, JP)",
        "ok:      hotline_routing: the built-in rules: 5 rules",
        f"ok:      hotline_partners: {scratch / 'partners.toml'}: 0 partners, police endpoint",
        f"ok:      hotline_hosters: {scratch / 'hosters.toml'}: 2 hosters (1 CDN)",
        f"ok:      hotline_ip_databases: {scratch / 'ip2asn.tsv'}: ip2asn database of 2026-11-30",
        f"ok:      hotline_resolver: {zone.address} answer",
    ]
    assert not [line for line in rows(ran, "problems") if "hotline" in line]


def test_config_check_warns_of_a_known_list_the_database_does_not_hold(
    scratch: Path, zone: DnsServer
) -> None:
    path = config(scratch, zone)
    ListStore(engine_of(scratch)).create("police-nl", "Politie", Category.KNOWN_CSAM)
    ran = hashguard("config", "check", "--config", str(path), "--hotline-known-list",
                    "police-nl", "--hotline-known-list", "polcie-nl")  # fmt: skip
    assert ran.returncode == 0, ran.stdout
    [warning] = [line for line in rows(ran, "problems") if "known_lists" in line]
    assert warning.startswith("warning: hotline_known_lists: the database holds no list "
                              "'polcie-nl': ")  # fmt: skip


def test_config_check_names_bad_hotline_files_with_their_lines(
    scratch: Path, zone: DnsServer
) -> None:
    (scratch / "vocabulary.toml").write_text("[groups.iccam]\nvalues = 3\n")
    (scratch / "keys").mkdir()
    path = config(scratch, zone, extra=f'hotline_vocabulary = "{scratch / "vocabulary.toml"}"\n')
    (scratch / "keys" / "police.key").chmod(0o644)
    (scratch / "ip2asn.tsv").write_text("127.0.0.0\tnot-an-address\t1\tNL\tX\n")
    silent = f"127.0.0.1:{free_udp_port()}"
    ran = hashguard("config", "check", "--config", str(path), "--hotline-resolver", silent)
    assert ran.returncode == 1
    problems = [line for line in rows(ran, "problems") if "hotline" in line]
    assert problems[0].startswith(f"error:   hotline_vocabulary: {scratch / 'vocabulary.toml'}"
                                  ", line 2: ")  # fmt: skip
    assert problems[1] == (f"error:   hotline_partners: Police NL: {scratch / 'keys/police.key'}"
                           ": the key file can be read by every user (mode 0644); make it "
                           f"owner-only: chmod 600 {scratch / 'keys/police.key'}")  # fmt: skip
    assert problems[2].startswith(f"error:   hotline_ip_databases: {scratch / 'ip2asn.tsv'}, "
                                  "line 1: ")  # fmt: skip
    assert problems[3] == (f"warning: hotline_resolver: {silent}: no answer (timed out): traces "
                           "will have no addresses until one answers")  # fmt: skip
    assert len(problems) == 4


def test_config_check_without_the_hotline_says_its_files_do_nothing(scratch: Path) -> None:
    ran = hashguard("config", "check", "--hotline-hosters", "hosters.toml")
    assert "checked:" not in ran.stdout
    assert ("warning: hotline_hosters: hotline_hosters set, but hotline_country is not: the "
            "hotline is off") in ran.stdout  # fmt: skip
