"""``hashguard exchanges``: what an operator does from the command line, on a real database
(both kinds), against a loopback stand-in of another hashguard's change feed: adding an
exchange with its settings and credentials, fetching it now (records applied, a corrupt record
quarantined and named, the exit status by the kind of failure), its status, enabling,
disabling, removing; credentials read from a file or standard input, never shown, never stored
in the clear; re-sealing them under a new server secret. Bad input in one line, exit status 1."""

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from hashguard.exchanges import sample
from hashguard.store import audit
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import ExchangeCredentialRow

from support.exchanges.hashguard_peer import PeerFeed, change
from support.invoke import Ran, hashguard

MD5S = [f"{n:032x}" for n in range(1, 4)]


@pytest.fixture
def feed() -> Iterator[PeerFeed]:
    served = PeerFeed("known", "hg_peer_" + secrets.token_hex(16))
    served.changes = [change(n, value) for n, value in enumerate(MD5S, start=1)]
    yield served
    served.close()


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "hg.toml"
    path.write_text(f'database_url = "{database_url}"\n\n[server]\n'
                    f'secret_file = "{tmp_path / "secret.key"}"\n\n[fetch]\n'
                    'exchange_networks = ["127.0.0.0/8"]\n')  # fmt: skip
    return path


def exchanges(config: Path, *arguments: str, stdin: str | None = None) -> Ran:
    return hashguard("exchanges", *arguments, "--config", str(config), input=stdin)


def credentials_file(tmp_path: Path, feed: PeerFeed) -> Path:
    path = tmp_path / "peer.json"
    path.write_text(json.dumps({"api_key": feed.key}))
    return path


def add_peer(config: Path, feed: PeerFeed, tmp_path: Path, *more: str) -> Ran:
    added = exchanges(config, "add", "PEER", "--api", "hashguard", "--base-url", feed.url,
                      "--set", f"list={feed.name}", "--credentials-file",
                      str(credentials_file(tmp_path, feed)), "--interval", "1h", *more)  # fmt: skip
    assert added.returncode == 0, added.stderr
    return added


def test_an_exchange_is_added_fetched_and_its_status_shown(
    config: Path, feed: PeerFeed, tmp_path: Path, database_url: str
) -> None:
    added = add_peer(config, feed, tmp_path)
    assert "exchange PEER: hashguard into list PEER, every 1h; first fetch due now" in added.stdout

    listed = exchanges(config, "list")
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split("\t")
    assert row[:7] == ["PEER", "hashguard", "PEER", "yes", "1h", "set", "never"]

    fetched = exchanges(config, "fetch", "PEER")
    assert fetched.returncode == 0, fetched.stderr
    assert "exchange PEER: 3 record(s) applied, 0 quarantined; up to date" in fetched.stdout
    assert "added 3" in fetched.stdout
    engine = open_engine(database_url)
    _, entries = ListStore(engine).entries("PEER")
    assert sorted(e.value for e in entries) == MD5S

    # the next fetch starts from the checkpoint: only what is new
    feed.changes.append(change(4, f"{4:032x}"))
    again = exchanges(config, "fetch", "PEER")
    assert "1 record(s) applied" in again.stdout, again.stdout
    assert feed.fetched[-1].endswith("since=3&limit=1000") or "since=3" in feed.fetched[-1]

    status = exchanges(config, "status", "PEER")
    assert status.returncode == 0, status.stderr
    fields = dict(line.strip().split(None, 1) for line in status.stdout.splitlines()[1:3])
    # the time of the newest change applied, and how long ago that is
    assert fields["checkpoint_ts"].startswith("2024-05-01 00:00:00Z (")
    assert fields["checkpoint_ts"].endswith("h ago)")
    assert "last_fetch_succeeded    yes" in status.stdout
    assert "fetched_items           4" in status.stdout
    assert "failures in a row       0" in status.stdout
    assert "quarantined             0" in status.stdout


def test_a_corrupt_record_is_quarantined_and_named_while_the_rest_applies(
    config: Path, feed: PeerFeed, tmp_path: Path
) -> None:
    feed.changes.insert(1, {"version": 2, "kind": "add", "signal": "md5", "value": "not-hex"})
    add_peer(config, feed, tmp_path)

    fetched = exchanges(config, "fetch", "PEER")
    assert fetched.returncode == 0, fetched.stderr
    assert "3 record(s) applied, 1 quarantined" in fetched.stdout
    quarantined = [line for line in fetched.stdout.splitlines() if "quarantined " in line]
    assert len(quarantined) == 1, fetched.stdout
    assert "quarantined change 2 " in quarantined[0], quarantined  # where it was in the feed

    status = exchanges(config, "status", "PEER")
    assert "quarantined             1" in status.stdout
    held = status.stdout.split("quarantined             1", 1)[1].strip().splitlines()
    assert held and ": " in held[0], status.stdout  # where, then why


def test_a_failed_fetch_says_why_with_its_exit_status(
    config: Path, feed: PeerFeed, tmp_path: Path
) -> None:
    add_peer(config, feed, tmp_path)
    feed.fail_from = 1  # the exchange answers 503: it cannot be read now, try again
    unavailable = exchanges(config, "fetch", "PEER")
    assert unavailable.returncode == 2
    assert unavailable.stderr.startswith("hashguard: exchange PEER: ")
    assert "503" in unavailable.stderr and "overloaded" in unavailable.stderr
    status = exchanges(config, "status", "PEER")
    assert "last_fetch_succeeded    no" in status.stdout
    assert "failures in a row       1" in status.stdout
    assert "overloaded" in status.stdout

    # no credentials: it cannot be fetched as configured
    cleared = exchanges(config, "credentials", "clear", "--exchange", "PEER")
    assert cleared.returncode == 0, cleared.stderr
    refused = exchanges(config, "fetch", "PEER")
    assert refused.returncode == 1
    assert "has no credentials" in refused.stderr

    missing = exchanges(config, "fetch", "NOPE")
    assert missing.returncode == 1
    assert missing.stderr == "hashguard: no exchange named 'NOPE'\n"


def test_credentials_come_from_a_file_or_stdin_and_are_never_shown_or_stored_plainly(
    config: Path, feed: PeerFeed, tmp_path: Path, database_url: str
) -> None:
    added = exchanges(config, "add", "PEER", "--api", "hashguard", "--base-url", feed.url,
                      "--set", "list=known")  # fmt: skip
    assert "it needs credentials" in added.stdout
    document = json.dumps({"api_key": feed.key})
    given = exchanges(config, "credentials", "set", "--exchange", "PEER", "--file", "-",
                      stdin=document)  # fmt: skip
    assert given.returncode == 0, given.stderr
    assert given.stdout == (
        f"credentials of exchange PEER: set (sealed; fields api_key; sent to {feed.url} only)\n"
    )
    fetched = exchanges(config, "fetch", "PEER")
    assert fetched.returncode == 0, fetched.stderr

    # shared credentials of the plug-in, from a file, for the base URL named (it has no default)
    unnamed = exchanges(config, "credentials", "set", "hashguard", "--file",
                        str(credentials_file(tmp_path, feed)))  # fmt: skip
    assert unnamed.returncode == 1 and "base_url: required" in unnamed.stderr
    shared = exchanges(config, "credentials", "set", "hashguard", "--base-url", feed.url,
                       "--file", str(credentials_file(tmp_path, feed)))  # fmt: skip
    assert shared.returncode == 0, shared.stderr
    assert shared.stdout.endswith(f"sent to {feed.url} only)\n")

    outputs = [added, given, fetched, shared,
               exchanges(config, "status"), exchanges(config, "list")]  # fmt: skip
    for ran in outputs:
        assert feed.key not in ran.stdout + ran.stderr
    engine = open_engine(database_url)
    with engine.connect() as connection:
        sealed = connection.execute(select(ExchangeCredentialRow.ciphertext)).scalars().all()
        audit_rows = connection.execute(text("SELECT details FROM audit_events")).scalars().all()
    assert len(sealed) == 2
    assert all(feed.key not in value for value in sealed)
    assert all(feed.key not in str(details) for details in audit_rows)
    assert not any(feed.key.encode() in path.read_bytes() for path in tmp_path.rglob("*.db*"))


def test_the_secret_is_not_echoed_when_a_credentials_file_is_wrong(
    config: Path, tmp_path: Path, feed: PeerFeed
) -> None:
    exchanges(config, "add", "PEER", "--api", "hashguard", "--base-url", feed.url,
              "--set", "list=known")  # fmt: skip
    secret = "hg_peer_" + secrets.token_hex(16)
    broken = tmp_path / "broken.json"
    broken.write_text('{"api_key": "' + secret + '"')  # not JSON: unterminated
    refused = exchanges(config, "credentials", "set", "--exchange", "PEER", "--file", str(broken))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"hashguard: {broken}: the credentials are not JSON")
    broken.write_text("[" * 100_000)  # deeper than the JSON parser's recursion
    refused = exchanges(config, "credentials", "set", "--exchange", "PEER", "--file", str(broken))
    assert refused.stderr.startswith(f"hashguard: {broken}: the credentials are not JSON")
    wrong_field = tmp_path / "wrong.json"
    wrong_field.write_text(json.dumps({"token": secret}))
    named = exchanges(config, "credentials", "set", "--exchange", "PEER", "--file",
                      str(wrong_field))  # fmt: skip
    assert named.returncode == 1
    assert "token: not a credential of this exchange (it takes: api_key)" in named.stderr
    for ran in (refused, named):
        assert secret not in ran.stdout + ran.stderr


def test_rotating_the_secret_reseals_every_credential(
    config: Path, feed: PeerFeed, tmp_path: Path, database_url: str
) -> None:
    add_peer(config, feed, tmp_path)
    old = tmp_path / "old.key"
    (tmp_path / "secret.key").rename(old)  # the operator replaces the server's secret

    unreadable = exchanges(config, "fetch", "PEER")
    assert unreadable.returncode == 1
    assert "sealed under another server secret" in unreadable.stderr

    rotated = exchanges(config, "rotate-secret", "--old-secret-file", str(old))
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout == f"re-sealed 1 credential(s) under {tmp_path / 'secret.key'}\n"
    fetched = exchanges(config, "fetch", "PEER")
    assert fetched.returncode == 0, fetched.stderr

    # the old secret opens nothing any more; a missing old file is named
    assert exchanges(config, "rotate-secret", "--old-secret-file", str(old)).returncode == 0
    gone = exchanges(config, "rotate-secret", "--old-secret-file", str(tmp_path / "no.key"))
    assert gone.returncode == 1 and "no such secret file" in gone.stderr


def test_enable_disable_and_remove(config: Path, tmp_path: Path, database_url: str) -> None:
    added = exchanges(config, "add", "SAMPLE", "--api", "sample", "--disabled")
    assert "disabled" in added.stdout, added.stderr
    row = exchanges(config, "list").stdout.splitlines()[1].split("\t")
    assert row[3] == "no" and row[7] == "-"

    assert exchanges(config, "enable", "SAMPLE").stdout == (
        "exchange SAMPLE: enabled; next fetch due now\n"
    )
    fetched = exchanges(config, "fetch", "SAMPLE")
    served = 2 * len(sample.SCENES) + len(sample.HMA_EXAMPLES)  # a PDQ and an MD5 per scene
    assert f"{served} record(s) applied" in fetched.stdout, fetched.stderr
    assert exchanges(config, "disable", "SAMPLE").returncode == 0

    removed = exchanges(config, "remove", "SAMPLE")
    assert removed.returncode == 0
    assert "its list SAMPLE stays" in removed.stdout
    assert exchanges(config, "list").stdout.count("\n") == 1
    engine: Engine = open_engine(database_url)
    assert ListStore(engine).get("SAMPLE").name == "SAMPLE"
    assert exchanges(config, "remove", "SAMPLE").returncode == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["add", "X", "--api", "nope"], "no exchange plug-in is called 'nope'"),
        (
            [
                "add",
                "X",
                "--api",
                "hashguard",
                "--base-url",
                "http://127.0.0.1:1",
                "--set",
                "lst=known",
            ],
            "lst: not a setting of this exchange (it takes: list)",
        ),
        (["add", "X", "--api", "hashguard", "--set", "list=known"], "base_url: required"),
        (["add", "X", "--api", "sample", "--interval", "soon"], "--interval 'soon': expected"),
        (["add", "X", "--api", "sample", "--interval", "1s"], "interval: 1 s; expected 10"),
        (["add", "X", "--api", "sample", "--set", "novalue"], "--set 'novalue': expected KEY"),
        (["add", "bad name", "--api", "sample"], "exchange name 'bad name': use"),
        (["credentials", "set", "--file", "-"], "name a plug-in (API) or an exchange"),
        (["credentials", "clear", "sample", "--exchange", "X"], "one of the two"),
        (["credentials", "set", "sample", "--file", "missing.json"], "missing.json: cannot read"),
        (["status", "NOPE"], "no exchange named 'NOPE'"),
        (["enable", "NOPE"], "no exchange named 'NOPE'"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else "",
)
def test_bad_input_is_one_line_and_exit_status_1(
    config: Path, arguments: list[str], message: str
) -> None:
    ran = exchanges(config, *arguments, stdin="")
    assert ran.returncode == 1, ran.stdout
    assert ran.stderr.startswith("hashguard: ") and ran.stderr.count("\n") == 1, ran.stderr
    assert message in ran.stderr


def test_an_operator_sets_where_the_next_fetch_starts(
    config: Path, feed: PeerFeed, tmp_path: Path, database_url: str
) -> None:
    add_peer(config, feed, tmp_path)
    assert exchanges(config, "fetch", "PEER").returncode == 0
    shown = exchanges(config, "checkpoint", "PEER")
    assert (
        shown.returncode == 0 and shown.stdout.strip() == 'exchange PEER: checkpoint {"version": 3}'
    )

    moved = exchanges(config, "checkpoint", "PEER", "--set", '{"version": 1}', "--actor", "ops")
    assert moved.returncode == 0, moved.stderr
    assert 'checkpoint set to {"version": 1}; next fetch due now' in moved.stdout
    again = exchanges(config, "fetch", "PEER")
    assert again.returncode == 0 and "2 record(s) applied" in again.stdout

    for given, said in [('{"version": -1}', 'expected {"version": N}'), ("[1]", "JSON object"),
                        ("{version", "not JSON"), ("[" * 50_000, "not JSON")]:  # fmt: skip
        refused = exchanges(config, "checkpoint", "PEER", "--set", given)
        assert refused.returncode == 1 and said in refused.stderr
        assert "Traceback" not in refused.stderr
    assert exchanges(config, "checkpoint", "PEER", "--set", "null").returncode == 0
    assert exchanges(config, "checkpoint", "PEER").stdout.strip().endswith("checkpoint null")
    engine = open_engine(database_url)
    try:
        moves = audit.events(engine, action="exchange.checkpoint")
    finally:
        engine.dispose()
    assert [json.loads(e.details)["after"] for e in moves] == [{"version": 1}, None]
    assert moves[0].actor == "ops" and moves[1].actor.endswith("(cli)")
