"""The public monitor (``/monitor``) in a real headless Chromium against the served app: the
tables show the public figures (counts under 10 as "<10") that equal the hand computation from
the inserted notices; the JSON and CSV exports linked from the page equal them; the period
picker and the custom period; both charts are SVG with a title, a text alternative and a table
beside; a bad period is refused on the page; a phone's width does not overflow; axe-core finds
no serious or critical violation; English and Dutch."""

import csv as csv_module
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hashguard.app import create_app
from hashguard.store.database import open_engine
from hashguard.web.monitor_words import WORDS

from support.browser import chromium, launched
from support.in_process import serving
from support.monitor_rows import Made, by_hand, fleet

chromium()  # else the module is skipped, saying what installs it

SERIOUS = ("serious", "critical")
COUNTS = ("notices", "removed", "open_now", "overdue_now", "renotices", "escalations",
          "reappeared", "disputes")  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Made]]]:
    directory: Path = tmp_path_factory.mktemp("monitor")
    engine = open_engine(f"sqlite:///{directory / 'monitor.db'}")
    made = fleet(engine)
    with serving(create_app(engine)) as url:
        yield url, made
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as browser:
        yield browser


def opened(browser: Any, url: str, **options: Any) -> Any:
    """A new page; the page needs no script (axe-core's checks run one: ``script=True``)."""
    script = options.pop("script", False)
    return browser.new_context(java_script_enabled=script, **options).new_page()


def cells(page: Any, table: str, group: str) -> dict[str, str]:
    row = page.locator(f"#{table} tr[data-group='{group}'] td")
    return {row.nth(n).get_attribute("data-column"): row.nth(n).inner_text()
            for n in range(row.count())}  # fmt: skip


def shown(value: int | None) -> str:
    return "<10" if value is None or value < 10 else f"{value:,}"


def test_the_page_shows_the_public_figures_of_the_hand_computation(
    site: tuple[str, list[Made]], browser: Any
) -> None:
    url, made = site
    page = opened(browser, url)
    answer = page.goto(url + "/monitor")
    assert answer.status == 200
    assert page.text_content("h1") == WORDS["en"]["title"]
    moment = datetime.now(UTC)
    fast = by_hand([m for m in made if m.hoster == "fast"], moment)
    row = cells(page, "hosters", "fast")
    # 14 notices, 12 removed, but hidden: beside small's 3, all minus the others would give
    # small's away (complementary suppression)
    assert row["notices"] == row["removed"] == "<10" and fast["notices"] == 14
    assert row["p99"] == "–"  # from 100 removals only
    assert row["median"] == f"{fast['median_hours']:,.1f}"
    assert row["p90"] == f"{fast['p90_hours']:,.1f}"
    assert row["within"] == f"{fast['within_24h']:.0%}"
    assert row["disputes"] == "<10" and row["open"] == "<10"
    small = cells(page, "hosters", "small")
    assert small["notices"] == "<10" and small["median"] == "–"  # 3 removals: suppressed
    assert page.locator("#hosters tr[data-group='cdn']").count() == 0  # CDN notices not counted
    country = cells(page, "countries", "DE")
    assert country["notices"] == "<10"  # DE is slow's alone, and slow is hidden
    everything = by_hand(made, moment)
    assert cells(page, "overall", "all")["notices"] == shown(everything["notices"])
    assert "INHOPE" in page.text_content(".about")
    assert "re-fetch" not in page.text_content(".about")  # said in words: fetching again
    assert "fetching the web addresses again" in page.text_content(".about")


def test_the_exports_equal_the_figures_on_the_page(
    site: tuple[str, list[Made]], browser: Any
) -> None:
    url, made = site
    page = opened(browser, url)
    page.goto(url + "/monitor")
    exported = httpx.get(url + page.get_attribute("#export-json", "href")).json()
    hosters = {row["group"]: row for row in exported["hosters"]}
    for group in ("fast", "slow", "small"):
        row = cells(page, "hosters", group)
        figures = hosters[group]
        assert row["notices"] == shown(figures["notices"])
        assert row["median"] == ("–" if figures["median_hours"] is None
                                 else f"{figures['median_hours']:,.1f}")  # fmt: skip
    assert exported["all"]["notices"] == by_hand(made)["notices"]
    assert hosters["small"]["notices"] is None
    text = httpx.get(url + page.get_attribute("#export-csv", "href")).text
    lines = {line["group"]: line for line in csv_module.DictReader(io.StringIO(text))}
    assert set(lines) == set(hosters)
    for group, figures in hosters.items():
        for name in COUNTS:
            expected = "<10" if figures[name] is None else str(figures[name])
            assert lines[group][name] == expected, (group, name)
    refused = httpx.get(url + "/monitor.csv?by=planet")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "by: expected one of hoster, country, all, not 'planet'"
    )
    distribution = [b["removals"] for b in exported["distribution"]]
    table = page.locator("#distribution tbody td").all_inner_texts()
    assert table == [shown(n) for n in distribution]


def test_the_period_picker_and_a_custom_period(site: tuple[str, list[Made]], browser: Any) -> None:
    url, made = site
    page = opened(browser, url)
    page.goto(url + "/monitor")
    page.click(f"text={WORDS['en']['period_3m']}")
    assert page.text_content("#none") == WORDS["en"]["none"]  # the notices are older
    page.fill("#since", "2026-04")
    page.fill("#until", "2026-05")
    with page.expect_navigation():
        page.click("#show")
    assert "since=2026-04" in page.url
    inside = [m for m in made if datetime(2026, 4, 1, tzinfo=UTC) <= m.reported_at
              < datetime(2026, 5, 1, tzinfo=UTC)]  # fmt: skip
    assert cells(page, "overall", "all")["notices"] == shown(by_hand(inside)["notices"])
    assert 0 < len(inside) < len(made)
    assert "2026-04-01" in page.text_content("#period-now")
    page.goto(url + "/monitor?since=2026-04-10&until=2026-04-20&lang=en")  # whole months
    assert "2026-04-01" in page.text_content("#period-now")
    assert "2026-05-01" in page.text_content("#period-now")
    bad = page.goto(url + "/monitor?since=someday")
    assert bad.status == 400
    assert "since: expected a date" in page.text_content("#error")


def test_the_charts_have_text_alternatives_and_tables(
    site: tuple[str, list[Made]], browser: Any
) -> None:
    url, made = site
    page = opened(browser, url)
    page.goto(url + "/monitor")
    for chart in ("#distribution-chart", "#trend-chart"):
        svg = page.locator(chart)
        assert svg.get_attribute("role") == "img"
        assert svg.locator("title").first.text_content()
        assert svg.locator("desc").text_content()
    assert page.locator("#distribution-chart rect.bar").count() == 9
    months = sorted({m.reported_at.strftime("%Y-%m") for m in made if m.kind != "cdn"})
    assert page.locator("#trend tbody th").all_inner_texts() == months
    assert page.locator("#trend-chart circle").count() > 0


def test_a_phone_and_dutch_and_accessibility(site: tuple[str, list[Made]], browser: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    url, _ = site
    for language in ("en", "nl"):
        page = opened(browser, url, viewport={"width": 390, "height": 844}, script=True)
        page.goto(url + f"/monitor?lang={language}")
        assert page.text_content("h1") == WORDS[language]["title"]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        found = Axe().run(page).response["violations"]
        serious = [f"{v['id']}: {[n['target'] for n in v['nodes']]}"
                   for v in found if v["impact"] in SERIOUS]  # fmt: skip
        assert serious == [], language
