"""A real headless Chromium for the tests of pages: Debian's ``chromium`` (``make install`` puts
it there through scripts/ensure-system-packages), driven by Playwright."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

ABSENT = "chromium absent: `make install` installs it (scripts/ensure-system-packages)"


def chromium() -> str:
    """The browser's path; else the test (or, called at import, its module) is skipped, saying
    what installs it."""
    pytest.importorskip("playwright.sync_api")
    found = shutil.which("chromium")
    if found is None:
        pytest.skip(ABSENT, allow_module_level=True)
    return found


@contextmanager
def launched() -> Iterator[Any]:
    """A headless Chromium, closed when the block ends."""
    from playwright.sync_api import sync_playwright

    path = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
