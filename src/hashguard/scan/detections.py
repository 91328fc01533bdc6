"""Matched files reported to a hashguard service, as its upload checks report them: each
matched file's matching hashes go to ``POST /v1/match/hashes``, each within the one list it
matched in (a variant's hash is matched there as that list's policy allowed), with the file's
full location (``s3://bucket/prefix/key``, or a local file's absolute path) as
``content_ref``. With a service's key, each matched file becomes a detection for review there;
the service keeps one detection per content reference, ever, so a file reported again (a
resumed scan redoes the parts it had not written, a scan run again) opens none twice."""

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pyarrow as pa

from hashguard.errors import Invalid, Unavailable
from hashguard.net.answers import json_of, text_of

# Hashes per request at most; the service refuses more than its max_batch (1,000 by default)
# with 413, and then fewer are sent.
_PER_REQUEST: Final = 100
# Bytes of hash values per request at most: the service's body limit (max_json_bytes) is
# 2 MiB by default, and a long video's vPDQ runs to megabytes.
_BYTES_PER_REQUEST: Final = 1024 * 1024
_REF_LENGTH: Final = 500  # the longest content_ref the service takes
# Answers worth waiting for (the service not ready yet, too busy, a proxy's gateway errors),
# for how long in all by default (a service restarting loads its lists: minutes), and how long
# at most between two tries.
_RETRIED: Final = frozenset({429, 502, 503, 504})
PATIENCE: Final = 600.0
_LONGEST_WAIT: Final = 60.0
_DOUBLINGS: Final = 6  # of the wait between tries, at most: past the longest wait anyway


class ReportFailed(Unavailable):
    """The service did not take the report (unreachable, a refused key, an unknown list)."""


class ReportTargetInvalid(Invalid):
    """``--report-to`` is not a service's URL."""


def content_ref(location: str) -> str:
    """The reference a file is reported under: its full location, or for a location longer
    than the service takes, the SHA-256 of it (the same each time)."""
    if len(location) <= _REF_LENGTH:
        return location
    return f"location-sha256:{hashlib.sha256(location.encode()).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Reported:
    """What one report did: files sent, files the service matched too, and files not sent
    because a hash of theirs was over the service's body limit alone."""

    files: int = 0
    matched: int = 0
    too_large: int = 0

    def __add__(self, other: "Reported") -> "Reported":
        return Reported(self.files + other.files, self.matched + other.matched,
                        self.too_large + other.too_large)  # fmt: skip


class Reporter:
    """Reports matched rows to the service at ``url`` with the API key ``token``; a row's
    key is reported under ``locate(key)``, its full location."""

    def __init__(
        self,
        url: str,
        token: str,
        lists: Sequence[str],
        locate: Callable[[str], str],
        timeout: float = 60,
        wait: float = 1.0,
        patience: float = PATIENCE,
        waiting: Callable[[str], None] | None = None,
    ) -> None:
        """``wait``: seconds before the first retry of a request (doubled each time), when
        the service says no Retry-After, and the least between two tries when it does;
        ``patience``: seconds a request is tried again for, at most; ``waiting(why)`` is told
        when a request is first tried again. Raises ReportTargetInvalid for a malformed URL."""
        try:
            base = httpx.URL(url.rstrip("/"))
        except httpx.InvalidURL as error:
            raise ReportTargetInvalid(f"--report-to {url}: not a URL ({error})") from None
        if base.scheme not in ("http", "https") or not base.host:
            raise ReportTargetInvalid(f"--report-to {url}: expected http(s)://HOST[:PORT]")
        self.lists, self.locate, self.wait, self.patience = list(lists), locate, wait, patience
        self.waiting = waiting
        self.batch = _PER_REQUEST
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def preflight(self) -> None:
        """One query within the scan's lists before any work, tried again as reports are:
        the service reachable, the key and its scope accepted, the answer a service's. Its
        hash is a random SHA-256, which no list holds (as the SHA-256 of no bytes may): it
        matches nothing, so it leaves no match in the log and opens no detection; the service
        only counts it among its queries. Raises ReportFailed."""
        probe = {"signal": "sha256", "value": secrets.token_hex(32), "content_ref": ""}
        self._post({"hashes": [probe], "lists": self.lists})

    def report(self, rows: pa.Table) -> Reported:
        """Send each matched row's matching hashes, each within the list it matched in; what
        was reported. Raises ReportFailed."""
        per_list: dict[str, dict[tuple[str, str, str], None]] = {}
        refs = set()
        for row in rows.select(["key", "matches"]).to_pylist():
            if not row["matches"]:
                continue
            ref = content_ref(self.locate(row["key"]))
            refs.add(ref)
            for m in row["matches"]:
                per_list.setdefault(m["list"], {})[(m["signal"], m["hash"], ref)] = None
        matched: set[str] = set()
        refused: set[str] = set()
        for name, items in sorted(per_list.items()):
            hashes = [{"signal": s, "value": v, "content_ref": r} for s, v, r in items]
            self._send(name, hashes, matched, refused)
        return Reported(len(refs - refused), len(matched - refused), len(refused))

    def _send(
        self, name: str, hashes: list[dict[str, str]], matched: set[str], refused: set[str]
    ) -> None:
        start = 0
        while start < len(hashes):
            chunk: list[dict[str, str]] = []
            size = 0
            for given in hashes[start : start + self.batch]:
                size += len(given["value"]) + len(given["content_ref"]) + 64
                if chunk and size > _BYTES_PER_REQUEST:
                    break
                chunk.append(given)
            answer = self._post({"hashes": chunk, "lists": [name]})
            if answer is None:  # 413: too many, or too large
                if len(chunk) > 1:
                    self.batch = max(1, len(chunk) // 2)
                    continue
                refused.add(chunk[0]["content_ref"])
            else:
                for given, result in zip(chunk, answer["results"], strict=True):
                    if result["matches"]:
                        matched.add(given["content_ref"])
                if len(chunk) == self.batch:  # taken whole: a few more next time, as before a 413
                    self.batch = min(_PER_REQUEST, self.batch + max(1, self.batch // 4))
            start += len(chunk)

    def _post(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The service's answer; None for 413 (the request over its limits). Waits and tries
        again on a timeout, a lost connection, 429, 502-504, honouring Retry-After, for
        ``patience`` seconds in all. Raises ReportFailed, also for an answer that is not a
        service's (a proxy's page, another program's)."""
        where = f"{self.client.base_url}/v1/match/hashes"
        deadline = time.monotonic() + self.patience
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                answer = self.client.post("/v1/match/hashes", json=body)
            except httpx.TransportError as error:
                said = " ".join(str(error).split()) or type(error).__name__
                failure = ReportFailed(f"cannot report matches to {where}: {said}")
            else:
                if answer.status_code == 413:
                    return None
                if answer.status_code == 200:
                    return _answer(answer, len(body["hashes"]), where)
                failure = ReportFailed(
                    f"{where} refused the report: HTTP {answer.status_code} {_detail(answer)}"
                )
                if answer.status_code not in _RETRIED:
                    raise failure
                retry_after = answer.headers.get("Retry-After")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReportFailed(f"{failure} (tried {attempt} times)") from None
            if attempt == 1 and self.waiting is not None:
                self.waiting(str(failure))
            time.sleep(min(self._pause(attempt, retry_after), left))

    def _pause(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before try ``attempt + 1``: as Retry-After says, but never less than
        ``wait`` (a proxy's ``Retry-After: 0`` would have us hammer the service)."""
        if retry_after is not None and retry_after.strip().isdigit():
            seconds = max(float(retry_after), self.wait)
        else:
            seconds = self.wait * 2.0 ** min(attempt - 1, _DOUBLINGS)
        return min(seconds, _LONGEST_WAIT)

    def close(self) -> None:
        self.client.close()


def _answer(answer: httpx.Response, sent: int, where: str) -> dict[str, Any]:
    """The JSON of a service's answer to ``sent`` hashes: a result with its matches for each.
    Raises ReportFailed for anything else."""
    try:
        found = json_of(answer)
        if len(found["results"]) == sent and all(
            isinstance(result["matches"], list) for result in found["results"]
        ):
            return dict(found)
    except (ValueError, KeyError, TypeError):
        pass
    kind = answer.headers.get("Content-Type", "no content type")
    raise ReportFailed(
        f"{where} answered HTTP 200 with something other than a hashguard service's answer "
        f"({kind}): is --report-to a hashguard service's URL?"
    )


def _detail(answer: httpx.Response) -> str:
    try:
        detail = json_of(answer)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = text_of(answer)[:1000]
    return " ".join(str(detail).split())[:300]
