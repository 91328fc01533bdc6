"""Matched files reported to a hashguard service, as its upload checks report them: each
matched file's hashes go to ``POST /v1/match/hashes`` with the file's key as ``content_ref``.
With a service's key, each matched file becomes a detection for review there; the service
keeps one open detection per content reference, so a file reported again (a resumed scan
redoes the parts it had not written) opens none twice."""

import hashlib
from collections.abc import Sequence
from typing import Any, Final

import httpx
import pyarrow as pa

from hashguard.errors import Unavailable

# The service's own limit is max_batch (1,000 by default); stay well under it.
_PER_REQUEST: Final = 100
_REF_LENGTH: Final = 500  # the longest content_ref the service takes


class ReportFailed(Unavailable):
    """The service did not take the report (unreachable, a refused key, an unknown list)."""


def content_ref(key: str) -> str:
    """The reference a file is reported under: its key, or for a key longer than the service
    takes, the SHA-256 of the key (the same each time)."""
    if len(key) <= _REF_LENGTH:
        return key
    return f"key-sha256:{hashlib.sha256(key.encode()).hexdigest()}"


class Reporter:
    """Reports matched rows to the service at ``url`` with the API key ``token``, matched
    there within ``lists``."""

    def __init__(self, url: str, token: str, lists: Sequence[str], timeout: float = 60) -> None:
        self.lists = list(lists)
        self.client = httpx.Client(
            base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )  # fmt: skip

    def report(self, rows: pa.Table) -> int:
        """Send each matched row's matching hashes; the number of files the service matched
        too. Raises ReportFailed."""
        hashes: list[dict[str, str]] = []
        for row in rows.select(["key", "matches"]).to_pylist():
            ref = content_ref(row["key"])
            sent = {(m["signal"], m["hash"]) for m in row["matches"]}
            hashes.extend({"signal": s, "value": v, "content_ref": ref} for s, v in sorted(sent))
        matched: set[str] = set()
        for start in range(0, len(hashes), _PER_REQUEST):
            chunk = hashes[start : start + _PER_REQUEST]
            answer = self._post({"hashes": chunk, "lists": self.lists})
            for given, result in zip(chunk, answer["results"], strict=True):
                if result["matches"]:
                    matched.add(given["content_ref"])
        return len(matched)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        where = f"{self.client.base_url}/v1/match/hashes"
        try:
            answer = self.client.post("/v1/match/hashes", json=body)
        except httpx.HTTPError as error:
            raise ReportFailed(f"cannot report matches to {where}: {error}") from None
        if answer.status_code != 200:
            try:
                detail = answer.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                detail = answer.text
            said = " ".join(str(detail).split())
            raise ReportFailed(f"{where} refused the report: HTTP {answer.status_code} {said}")
        found: dict[str, Any] = answer.json()
        return found

    def close(self) -> None:
        self.client.close()
