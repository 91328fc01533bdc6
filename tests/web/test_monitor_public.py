"""The public monitor's periods and load, over a served app on loopback (SQLite and
PostgreSQL): a period is whole calendar months (bounds to the microsecond give nothing finer);
a time out of range is a clear 400 everywhere (the page, its exports, the operators' API); one
pass over the notices per period at a time, a bound on passes at once, a limit per address;
the export links and the language switch keep the period; an over-long ``lang`` is English."""

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from hashguard.app import create_app
from hashguard.rate_limit import RateLimited
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.takedown.monitor import Monitor, Overview
from hashguard.web.monitor_pages import Period, _Recent

from support.in_process import serving
from support.monitor_rows import fleet
from support.waiting import eventually


@pytest.fixture
def served(engine: Engine) -> Iterator[tuple[httpx.Client, Any, str]]:
    fleet(engine)
    token = ApiKeyStore(engine).create(Role.ANALYST, name="analyst")[1]
    app = create_app(engine)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, app, token


def figures(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    del body["generated_at"]
    return body


def test_a_public_period_is_whole_months(served: Any) -> None:
    client, _, _ = served
    months = figures(client.get("/monitor.json", params={"since": "2026-04",
                                                         "until": "2026-05"}))  # fmt: skip
    assert months["period"] == {"since": "2026-04-01T00:00:00+00:00",
                                "until": "2026-05-01T00:00:00+00:00"}  # fmt: skip
    # bounds a microsecond apart, inside the month: the same figures, nothing to subtract
    for since, until in (("2026-04-10T13:14:15.000001", "2026-04-20"),
                         ("2026-04-10T13:14:15.000002", "2026-04-20T00:00:00.000001"),
                         ("2026-04-01", "2026-05-01")):  # fmt: skip
        assert figures(client.get("/monitor.json", params={"since": since,
                                                           "until": until})) == months  # fmt: skip
    csv = client.get("/monitor.csv", params={"since": "2026-04-30T23:59:59.999999"}).text
    assert csv == client.get("/monitor.csv", params={"since": "2026-04"}).text


@pytest.mark.parametrize("bound", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_a_time_out_of_range_is_a_clear_400_everywhere(served: Any, bound: str) -> None:
    client, _, token = served
    page = client.get("/monitor", params={"since": bound})
    assert page.status_code == 400 and "out of range in UTC" in page.text
    for path in ("/monitor.json", "/monitor.csv"):
        answer = client.get(path, params={"until": bound})
        assert answer.status_code == 400, (path, answer.text)
        assert "until: " in answer.json()["error"]["message"]
    api = client.get("/v1/takedown/monitor", params={"since": bound},
                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert api.status_code == 400 and "out of range in UTC" in api.text


def test_the_links_keep_the_period_and_a_long_lang_is_english(served: Any) -> None:
    client, _, _ = served
    page = client.get("/monitor", params={"since": "2026-04-10", "until": "2026-05-02",
                                          "lang": "en"})  # fmt: skip
    assert page.status_code == 200
    hrefs = dict(re.findall(r'<a id="([a-z-]+)"[^>]*? href="([^"]*)"', page.text))
    hrefs |= {found[1]: found[0] for found in re.findall(r'<a href="([^"]*)"[^>]*? id="([a-z-]+)"',
                                                          page.text)}  # fmt: skip
    assert hrefs["export-json"] == "/monitor.json?since=2026-04&amp;until=2026-06"
    assert hrefs["language"] == "/monitor?since=2026-04&amp;until=2026-06&amp;lang=nl"
    long = client.get("/monitor", params={"lang": "x" * 500})
    assert long.status_code == 200 and 'lang="en"' in long.text


def test_an_address_starting_many_passes_waits(served: Any) -> None:
    client, app, _ = served
    app.state.monitor_recent = _Recent(per_minute=2)
    for month in ("2026-01", "2026-02"):
        assert client.get("/monitor.json", params={"since": month}).status_code == 200
    busy = client.get("/monitor.json", params={"since": "2026-03"})
    assert busy.status_code == 429 and int(busy.headers["Retry-After"]) >= 1
    page = client.get("/monitor", params={"since": "2026-03"})
    assert page.status_code == 429 and "try again" in page.text
    kept = client.get("/monitor.json", params={"since": "2026-01"})  # kept: no new pass
    assert kept.status_code == 200


class Slow:
    """A monitor whose passes wait until the test lets them finish."""

    def __init__(self, engine: Engine) -> None:
        self.real = Monitor(engine)
        self.go = threading.Event()
        self.calls = 0

    def overview(self, since: Any, until: Any, public: bool = False) -> Overview:
        self.calls += 1
        self.go.wait(30)
        return self.real.overview(since, until, public=public)


def test_one_pass_per_period_at_a_time_and_a_bound_on_passes(engine: Engine) -> None:
    fleet(engine)
    slow = Slow(engine)
    recent = _Recent(running=1)
    april = Period(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    may = Period(datetime(2026, 5, 1, tzinfo=UTC), None)
    results: list[dict[str, Any]] = []

    def ask(period: Period) -> None:
        results.append(recent.figures(slow, period, "192.0.2.1"))  # type: ignore[arg-type]

    threads = [threading.Thread(target=ask, args=(april,)) for _ in range(5)]
    threads.append(threading.Thread(target=ask, args=(may,)))
    for thread in threads:
        thread.start()
    # one pass per period, not one per visitor; and the bound: one of them waits for the other
    assert eventually(lambda: len(recent.flights) == 2 and slow.calls >= 1)
    assert slow.calls == 1
    slow.go.set()
    for thread in threads:
        thread.join(60)
    assert slow.calls == 2 == recent.passes and len(results) == 6
    assert len({id(r) for r in results}) == 2  # April's five visitors got the one pass's figures


def test_the_limit_counts_only_new_passes(engine: Engine) -> None:
    recent = _Recent(per_minute=1)
    monitor = Monitor(engine)
    first = Period(None, None)
    recent.figures(monitor, first, "192.0.2.1")
    assert recent.figures(monitor, first, "192.0.2.1") is recent.figures(monitor, first, "x")
    with pytest.raises(RateLimited):
        recent.figures(monitor, Period(datetime(2026, 1, 1, tzinfo=UTC), None), "192.0.2.1")


def test_a_full_cache_lets_only_its_oldest_period_go(engine: Engine) -> None:
    recent = _Recent(kept=2)
    monitor = Monitor(engine)
    months = [Period(datetime(2026, n, 1, tzinfo=UTC), None) for n in (1, 2, 3)]
    first, second = (recent.figures(monitor, period, "192.0.2.1") for period in months[:2])
    recent.figures(monitor, months[2], "192.0.2.1")  # the third: January goes, February stays
    assert recent.passes == 3
    assert recent.figures(monitor, months[1], "192.0.2.1") is second
    assert recent.passes == 3
    assert recent.figures(monitor, months[0], "192.0.2.1") is not first
    assert recent.passes == 4


def test_callers_waiting_for_a_pass_are_capped(engine: Engine) -> None:
    """Each caller waiting for a pass under way holds a worker thread: past the cap, 429."""
    fleet(engine)
    slow = Slow(engine)
    recent = _Recent(waiters=2)
    april = Period(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    results: list[dict[str, Any]] = []

    def ask() -> None:
        results.append(recent.figures(slow, april, "192.0.2.1"))  # type: ignore[arg-type]

    threads = [threading.Thread(target=ask) for _ in range(3)]  # one computes, two wait
    for thread in threads:
        thread.start()
    assert eventually(lambda: slow.calls == 1 and recent.waiting == 2)
    with pytest.raises(RateLimited) as refused:
        recent.figures(slow, april, "192.0.2.2")  # type: ignore[arg-type]
    assert refused.value.retry_after > 0
    assert refused.value.scope == "server"  # counted as the server's limit, not the caller's
    slow.go.set()
    for thread in threads:
        thread.join(60)
    assert len(results) == 3 and len({id(r) for r in results}) == 1 and recent.waiting == 0
    assert recent.figures(slow, april, "192.0.2.2") is results[0]  # type: ignore[arg-type]
