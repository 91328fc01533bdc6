"""A page of ThreatExchange threat updates as the fb_threatexchange exchange reads it: the page
(JSON with a data list, perhaps a next link), then each update (one that cannot be read is
quarantined with its excerpt). The input is the first answer's body; any page after it is
empty, and a page that is not one is not tried again (no pause between tries)."""

from datetime import UTC, datetime
from pathlib import Path

from hashguard.exchanges.api import Answer
from hashguard.exchanges.threatexchange import ThreatExchangeExchange

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


class _Answers:
    """The exchange's HTTP: ``body`` for the first request, an empty page after it."""

    base_url = "https://graph.example/v21.0"

    def __init__(self, body: bytes) -> None:
        self.bodies = [body]

    def request(self, method: str, path: str, **_: object) -> Answer:
        body = self.bodies.pop() if self.bodies else b'{"data": []}'
        return Answer(200, body, "application/json", {})


def one(data: bytes, scratch: Path) -> None:
    exchange = ThreatExchangeExchange(
        {"privacy_group": 1234}, {"api_token": "1234|fuzz"}, _Answers(data), clock=lambda: _NOW
    )
    exchange.RETRY_PAUSES = ()
    for _page in exchange.fetch(None):
        pass
