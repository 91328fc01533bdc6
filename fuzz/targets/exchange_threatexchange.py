"""ThreatExchange's answers as the fb_threatexchange exchange reads them, through the exchange's
real HTTP client (``Http``: links and redirects resolved and checked against the base URL) with
only the network replaced. The input's first byte picks the first answer's status (a page, a
redirect, an error the Graph API sends, a retryable failure); the rest is its body (for a
redirect: its Location). A page's next link is followed, and answered with an empty page; a
page that is not one is not tried again (no pause between tries)."""

from datetime import UTC, datetime
from pathlib import Path

from hashguard.exchanges.api import Answer
from hashguard.exchanges.http import Http
from hashguard.exchanges.threatexchange import ThreatExchangeExchange

_NOW = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = (200, 302, 400, 401, 403, 404, 429, 500)


class _Answering(Http):
    """The exchange's HTTP client, its network replaced by ``first`` and then empty pages."""

    def __init__(self, first: Answer) -> None:
        super().__init__("https://graph.example/v21.0")
        self.answers = [first]

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Answer:
        return self.answers.pop() if self.answers else Answer(200, b'{"data": []}', "", {})


def answer(data: bytes) -> Answer:
    """The first answer the input stands for."""
    status = STATUSES[data[0] % len(STATUSES)] if data else 200
    body = data[1:]
    if status == 302:
        return Answer(302, b"", "", {"location": body.decode("utf-8", "replace")})
    return Answer(status, body, "application/json", {})


def one(data: bytes, scratch: Path) -> None:
    exchange = ThreatExchangeExchange(
        {"privacy_group": 1234}, {"api_token": "1234|fuzz"}, _Answering(answer(data)),
        clock=lambda: _NOW,
    )  # fmt: skip
    exchange.RETRY_PAUSES = ()
    for _page in exchange.fetch(None):
        pass
