"""Another hashguard instance subscribes to a list through the service's change feed
(``hashguard lists follow``) and stays an exact mirror, incrementally."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashguard.lists.model import (
    Category,
    ChangeKind,
    EntryStatus,
    ListPolicy,
    Provenance,
    Source,
)
from hashguard.lists.records import Submission, Withdrawal
from hashguard.matching import Matcher, query
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.database import scratch_database
from support.invoke import Ran, hashguard
from support.loopback import Loopback
from support.server import Server, running

A, B, C = ("0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f",
           "4a8a08f09d37b73795649038408b5f33")  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def origin(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with scratch_database(request.param, tmp_path_factory.mktemp("origin")) as url:
        engine = open_engine(url)
        store = ListStore(engine)
        policy = ListPolicy({"pdq": 20.0}, two_sources=False)
        store.create("known", "Hotline NL", Category.KNOWN_CSAM, ["NL"], "Art. 6", policy)
        nl = Provenance("Hotline NL", sources=(Source("Hotline NL", "NL", "case-1"),))
        de = Provenance("Hotline DE", sources=(Source("Hotline DE", "DE", "fall-9"),))
        store.apply("known", [Submission("md5", A, frozenset({"A1"}), nl),
                              Submission("md5", B, frozenset({"B2"}), nl),
                              Submission("md5", B, frozenset(), de),
                              Submission("md5", C, frozenset(), de)])  # fmt: skip
        store.change("known", ChangeKind.RELABEL, "md5", A, labels={"A2"})
        store.apply("known", [Withdrawal("fall-9")])  # B keeps NL; C loses its last source
        store.change("known", ChangeKind.CONTEST, "md5", A, "appeal")
        engine.dispose()
        with running(url) as served:
            yield served


def _follow(origin: Server, mirror: str, *more: str) -> Ran:
    return hashguard("lists", "follow", "copy", "--from", origin.url, "--remote", "known",
                     "--key", origin.tokens["auditor"], "--database-url", mirror,
                     *more)  # fmt: skip


def _state(url: str, name: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    engine = open_engine(url)
    try:
        store = ListStore(engine)
        _list, entries = store.entries(name)
        held = [(e.signal, e.value, e.status, sorted(e.labels), e.provenance) for e in entries]
        log = [(c.version, c.kind, c.signal, c.value, c.labels, c.provenance, c.reason)
               for c in store.changes_since(name, 0)]  # fmt: skip
        return held, log
    finally:
        engine.dispose()


def test_a_mirror_replays_the_feed_exactly_and_incrementally(
    origin: Server, tmp_path: Path
) -> None:
    mirror = f"sqlite:///{tmp_path / 'mirror.db'}"
    _held, log = _state(origin.database_url, "known")
    version = len(log)
    assert [c[1] for c in log].count(ChangeKind.WITHDRAW) == 1  # every kind is replayed
    first = _follow(origin, mirror)
    assert first.returncode == 0, first.stderr
    assert f"copy: {version} change(s) applied, version {version}" in first.stdout
    assert _state(mirror, "copy") == _state(origin.database_url, "known")
    engine = open_engine(mirror)
    copy = ListStore(engine).get("copy")
    assert (copy.owner, copy.category) == ("Hotline NL", Category.KNOWN_CSAM)
    assert copy.policy.thresholds == {"pdq": 20.0}
    engine.dispose()

    again = _follow(origin, mirror)
    assert f"copy: 0 change(s) applied, version {version}" in again.stdout  # nothing twice

    origin_engine = open_engine(origin.database_url)
    ListStore(origin_engine).change("known", ChangeKind.DELIST, "md5", B, "wrong")
    origin_engine.dispose()
    third = _follow(origin, mirror)
    assert f"copy: 1 change(s) applied, version {version + 1}" in third.stdout
    assert _state(mirror, "copy") == _state(origin.database_url, "known")
    engine = open_engine(mirror)
    matcher = Matcher(ListStore(engine), ["copy"])
    assert matcher.match(query.parse("md5", B)) == []  # the delisting reached the mirror

    origin_engine = open_engine(origin.database_url)
    ListStore(origin_engine).change("known", ChangeKind.REINSTATE, "md5", B, "reassessed", "owner")
    origin_engine.dispose()
    fourth = _follow(origin, mirror)
    assert f"copy: 1 change(s) applied, version {version + 2}" in fourth.stdout
    assert _state(mirror, "copy") == _state(origin.database_url, "known")
    assert _state(mirror, "copy")[1][-1][1:] == (
        ChangeKind.REINSTATE, "md5", B, None, None, "reassessed",
    )  # fmt: skip
    matcher.refresh()
    (match,) = matcher.match(query.parse("md5", B))  # the reinstatement reached it too
    assert (match.list, match.value) == ("copy", B)
    engine.dispose()


def test_a_revival_and_its_withdrawal_reach_a_mirror_alike(origin: Server, tmp_path: Path) -> None:
    # C was deleted when DE withdrew it (DE kept on record); NL submits it again, then
    # withdraws it: nobody holds it, at the origin and at the mirror.
    mirror = f"sqlite:///{tmp_path / 'mirror.db'}"
    nl = Provenance("Hotline NL", sources=(Source("Hotline NL", "NL", "case-2"),))
    origin_engine = open_engine(origin.database_url)
    store = ListStore(origin_engine)
    store.apply("known", [Submission("md5", C, frozenset(), nl)])
    assert store.entry("known", "md5", C).provenance.sources == nl.sources
    assert _follow(origin, mirror).returncode == 0
    engine = open_engine(mirror)
    matcher = Matcher(ListStore(engine), ["copy"])
    assert len(matcher.match(query.parse("md5", C))) == 1
    store.apply("known", [Withdrawal("case-2")])
    assert store.entry("known", "md5", C).status is EntryStatus.DELETED
    origin_engine.dispose()
    assert _follow(origin, mirror).returncode == 0
    assert _state(mirror, "copy") == _state(origin.database_url, "known")
    matcher.refresh()
    assert matcher.match(query.parse("md5", C)) == []
    engine.dispose()


def test_a_list_with_changes_of_its_own_is_not_a_mirror(origin: Server, tmp_path: Path) -> None:
    mirror = f"sqlite:///{tmp_path / 'mirror.db'}"
    assert _follow(origin, mirror).returncode == 0
    engine = open_engine(mirror)
    ListStore(engine).apply("copy", [Submission("md5", "f" * 32)])
    engine.dispose()
    refused = _follow(origin, mirror)
    assert refused.returncode == 1
    assert "not a mirror" in refused.stderr or "changes of its own" in refused.stderr


def test_a_wrong_key_or_list_is_one_clear_line(origin: Server, tmp_path: Path) -> None:
    mirror = f"sqlite:///{tmp_path / 'mirror.db'}"
    command = ["lists", "follow", "copy", "--from", origin.url, "--remote", "nope",
               "--key", origin.tokens["auditor"], "--database-url", mirror]  # fmt: skip
    missing = hashguard(*command)
    assert missing.returncode == 1 and "404" in missing.stderr and "nope" in missing.stderr
    command[command.index("--key") + 1] = "hg_0000000000000000_" + "x" * 43
    refused = hashguard(*command)
    assert refused.returncode == 1 and "401" in refused.stderr
    assert "Traceback" not in missing.stderr + refused.stderr


_POLICY: dict[str, object] = ListPolicy({"pdq": 20.0}).as_json()


def _follow_loopback(origin: Loopback, mirror: str) -> Ran:
    """``lists follow`` of list "known" at a loopback stand-in origin (closed after)."""
    key = "hg_0000000000000000_" + "x" * 43
    try:
        return hashguard("lists", "follow", "copy", "--from", origin.url, "--remote", "known",
                         "--key", key, "--database-url", mirror)  # fmt: skip
    finally:
        origin.close()


_DESCRIBED = {"name": "known", "owner": "Hotline NL", "category": Category.KNOWN_CSAM.value,
              "jurisdictions": ["NL"], "legal_basis": "Art. 6", "version": 0,
              "policy": _POLICY}  # fmt: skip


@pytest.mark.parametrize(
    ("odd", "named"),
    [
        ({"policy": []}, "policy: expected an object, got a list"),
        ({"owner": 7}, "owner: expected a string, got a number"),
        ({"owner": "x" * 5_000_000}, "owner of 5,000,000 characters; the limit is 200"),
        ({"jurisdictions": "NL"}, "jurisdictions: expected a list, got a string"),
        ({"jurisdictions": [{"NL": 1}]}, "jurisdiction: expected a string, got an object"),
        ({"legal_basis": None}, "legal_basis: expected a string, got null"),
        ({"category": "poems"}, "category 'poems': expected one of"),
        ({"policy": {**_POLICY, "thresholds": {"pdq": 10**400}}}, "pdq: a number out of range"),
        (
            {"policy": {**_POLICY, "negative": "no"}},
            "negative: expected true or false, got a string",
        ),
        (
            {"policy": {**_POLICY, "variants": ["all"]}},
            "policy variant 'all': expected one of dihedral, trim, scale",
        ),
    ],
)
def test_an_origin_describing_its_list_oddly_is_one_clear_line(
    odd: dict[str, object], named: str, tmp_path: Path
) -> None:
    """``lists follow`` creates the local list as the origin describes its own: a description
    that is not what a hashguard service answers is refused, naming the field, and no list is
    created."""
    described = json.dumps({**_DESCRIBED, **odd}).encode()
    origin = Loopback(lambda path, headers, body: (200, "application/json", described))
    mirror = f"sqlite:///{tmp_path / 'mirror.db'}"
    ran = _follow_loopback(origin, mirror)
    assert ran.returncode == 1, ran.stdout
    assert "Traceback" not in ran.stderr
    assert f"known: the origin described the list oddly ({named}" in ran.stderr
    assert origin.fetched == ["/v1/lists/known"]  # nothing read beyond the description
    engine = open_engine(mirror)
    try:
        assert ListStore(engine).lists() == []
    finally:
        engine.dispose()


def test_an_older_origin_without_the_newer_policy_fields_is_followed(tmp_path: Path) -> None:
    """An origin of an earlier version describes its list without ``variants`` and
    ``four_eyes``: the local list takes their defaults; a long jurisdiction name is kept."""
    policy = {k: v for k, v in _POLICY.items() if k not in ("variants", "four_eyes")}
    described = json.dumps({**_DESCRIBED, "policy": policy,
                            "jurisdictions": ["EU-DSA-ARTICLE-18"]}).encode()  # fmt: skip

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if path.startswith("/v1/lists/known/changes"):
            return 200, "application/json", b'{"version": 0, "changes": []}'
        return 200, "application/json", described

    origin = Loopback(answer)
    mirror = f"sqlite:///{tmp_path / 'mirror.db'}"
    ran = _follow_loopback(origin, mirror)
    assert ran.returncode == 0, ran.stderr
    engine = open_engine(mirror)
    try:
        copy = ListStore(engine).get("copy")
    finally:
        engine.dispose()
    assert copy.policy == ListPolicy({"pdq": 20.0}) and copy.jurisdictions == ("EU-DSA-ARTICLE-18",)
