"""Matched rows reported to a service (``--report-to``), against a real HTTP server on loopback
that answers as a service under strain would: each hash sent within the list it matched in,
under the file's full location; 503 and 429 waited out as Retry-After says, for minutes if need
be; a batch over the service's limit (413) sent in smaller ones, then larger again, and a hash
too large alone counted, not sent; an answer that is not a service's refused; a preflight that
can match nothing."""

import hashlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from hashguard.scan.detections import Reporter, ReportFailed, ReportTargetInvalid, content_ref
from hashguard.scan.work import row_schema

from support.scripted_service import Scripted


def _rows(matched: dict[str, list[tuple[str, str]]]) -> pa.Table:
    """Rows of files keyed as given, each matched in (list, hash value) pairs."""
    columns: dict[str, list[Any]] = {name: [] for name in row_schema().names}
    for key, found in matched.items():
        row = {"key": key, "matches": [
            {"list": name, "entry": 1, "signal": "pdq", "distance": 0.0, "variant": "original",
             "hash": value} for name, value in found]}  # fmt: skip
        for name, values in columns.items():
            values.append(row.get(name))
    return pa.table(columns, schema=row_schema())


@pytest.fixture
def reporter_for() -> Iterator[Any]:
    made: list[Reporter] = []

    def make(
        server: Scripted, patience: float = 60, waiting: Any = None, wait: float = 0.001
    ) -> Reporter:
        made.append(Reporter(server.url, "key", ["a", "b"], lambda key: f"s3://bucket/{key}", 5,
                             wait=wait, patience=patience, waiting=waiting))  # fmt: skip
        return made[-1]

    yield make
    for reporter in made:
        reporter.close()


def test_each_hash_goes_within_the_list_it_matched_in_under_the_full_location(
    reporter_for: Any,
) -> None:
    rows = _rows({"x.jpg": [("a", "f" * 64), ("b", "e" * 64)], "y.jpg": [], "z.jpg": [("b", "f1")]})
    with Scripted([]) as server:
        reported = reporter_for(server).report(rows)
    assert (reported.files, reported.matched, reported.too_large) == (2, 2, 0)
    sent = {tuple(body["lists"]): body["hashes"] for body in server.bodies}
    assert sent[("a",)] == [
        {"signal": "pdq", "value": "f" * 64, "content_ref": "s3://bucket/x.jpg"}
    ]
    assert [(h["value"], h["content_ref"]) for h in sent[("b",)]] == [
        ("e" * 64, "s3://bucket/x.jpg"), ("f1", "s3://bucket/z.jpg")]  # fmt: skip
    long = "s3://bucket/" + "k" * 600
    assert content_ref(long) == content_ref(long) != long and len(content_ref(long)) <= 500


def test_a_busy_or_restarting_service_is_waited_out(reporter_for: Any) -> None:
    script = [(503, {"Retry-After": "0"}), (429, {"Retry-After": "0"}), (502, {})]
    with Scripted(script) as server:
        reported = reporter_for(server).report(_rows({"x.jpg": [("a", "f" * 64)]}))
    assert reported.matched == 1 and len(server.bodies) == 4


def test_a_service_restarting_for_many_tries_is_waited_out_before_and_while_reporting(
    reporter_for: Any,
) -> None:
    """Not ready (503, no Retry-After) for ten tries: a service loading its lists. The user is
    told once per request."""
    told: list[str] = []
    with Scripted([(503, {})] * 10) as server:
        reporter = reporter_for(server, waiting=told.append)
        reporter.preflight()
        assert len(server.bodies) == 11
        server.script = [(503, {})] * 10
        assert reporter.report(_rows({"x.jpg": [("a", "f" * 64)]})).matched == 1
    assert told == [f"{server.url}/v1/match/hashes refused the report: HTTP 503 no"] * 2


def test_a_service_that_stays_down_or_refuses_the_key_fails_the_report(reporter_for: Any) -> None:
    down = Scripted([(503, {"Retry-After": "0"})] * 100_000)
    with down, pytest.raises(ReportFailed, match=r"HTTP 503 no \(tried \d+ times\)"):
        reporter_for(down, patience=0.2).report(_rows({"x.jpg": [("a", "f" * 64)]}))
    refusing = Scripted([(401, {})])
    with refusing, pytest.raises(ReportFailed, match="refused the report: HTTP 401 no"):
        reporter_for(refusing).preflight()
    with pytest.raises(ReportTargetInvalid, match="expected http"):
        Reporter("127.0.0.1:8000", "key", ["a"], str)
    with pytest.raises(ReportTargetInvalid, match="not a URL"):
        Reporter("http://host:port", "key", ["a"], str)


def test_a_service_that_says_retry_at_once_is_not_hammered(reporter_for: Any) -> None:
    """``Retry-After: 0`` on every answer (some proxies send it): the report waits between
    tries all the same, and fails as a report does when the patience runs out."""
    down = Scripted([(503, {"Retry-After": "0"})] * 100_000)
    with down, pytest.raises(ReportFailed, match=r"HTTP 503 no \(tried \d+ times\)") as failed:
        reporter_for(down, patience=1.0, wait=0.25).preflight()
    assert len(down.bodies) <= 1.0 / 0.25 + 1
    assert failed.match(rf"tried {len(down.bodies)} times")


def test_batches_over_the_services_limit_are_sent_smaller(reporter_for: Any) -> None:
    matched = {f"{n:03d}.jpg": [("a", f"f{n:03d}")] for n in range(250)}
    with Scripted([], max_batch=30) as server:
        reported = reporter_for(server).report(_rows(matched))
    assert (reported.files, reported.matched) == (250, 250)
    taken = [body["hashes"] for body in server.bodies if len(body["hashes"]) <= 30]
    assert sorted(h["value"] for chunk in taken for h in chunk) == sorted(
        f"f{n:03d}" for n in range(250)
    )


def test_a_hash_too_large_alone_is_counted_not_sent(reporter_for: Any) -> None:
    huge = "f" * (1024 * 1024 + 1)  # over the bytes per request alone: the service says 413
    with Scripted([], max_batch=1) as server:
        server.max_batch = 0  # every request over the limit: as a body the service refuses
        reported = reporter_for(server).report(_rows({"x.mp4": [("a", huge)]}))
    assert (reported.files, reported.matched, reported.too_large) == (0, 0, 1)


def test_batches_grow_again_after_the_service_refused_large_ones(reporter_for: Any) -> None:
    """Refused as too large six times (a huge hash among them, say): down to one hash a
    request, then more again, not one a request for the rest of the scan."""
    matched = {f"{n:03d}.jpg": [("a", f"f{n:03d}")] for n in range(300)}
    with Scripted([(413, {})] * 6) as server:
        reported = reporter_for(server).report(_rows(matched))
    assert (reported.files, reported.matched) == (300, 300)
    assert [len(body["hashes"]) for body in server.bodies[:7]] == [100, 50, 25, 12, 6, 3, 1]
    assert len(server.bodies) < 40 and max(len(b["hashes"]) for b in server.bodies[7:]) > 50


def test_an_answer_that_is_not_a_services_fails_the_report(reporter_for: Any) -> None:
    """A proxy's page, or another program's JSON, at the URL given."""
    for page in ("<html>It works!</html>", '{"status": "ok"}', '{"results": []}'):
        with (
            Scripted([], page=page) as server,
            pytest.raises(ReportFailed, match="something other than a hashguard service's answer"),
        ):
            reporter_for(server).preflight()


def test_the_preflight_can_match_nothing_a_list_holds(reporter_for: Any) -> None:
    """Not the SHA-256 of no bytes (lists hold it, as junk): a match of it would be logged
    under the scanner's key at every scan's start."""
    with Scripted([]) as server:
        reporter_for(server).preflight()
        reporter_for(server).preflight()
    [first], [second] = (body["hashes"] for body in server.bodies)
    assert first["signal"] == "sha256" and len(bytes.fromhex(first["value"])) == 32
    assert first["value"] != second["value"] != hashlib.sha256(b"").hexdigest()
    assert [body["lists"] for body in server.bodies] == [["a", "b"]] * 2
