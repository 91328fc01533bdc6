"""/docs (Swagger UI) and /redoc (ReDoc) render from the installed package's own files: in a
real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real ``hashguard
serve``, with every request to another host refused, the operations are listed, and nothing but
ReDoc's CDN logo breaks the pages' Content-Security-Policy (it runs no inline script).
Screenshots at desktop width stay in the test's directory."""

from pathlib import Path
from typing import Any

from support.browser import chromium, launched
from support.server import Server, running

chromium()  # else the module is skipped, saying what installs it

# Each page, and what shows that it listed the operations: a route's summary.
PAGES = {
    "/docs": ".opblock-summary-description >> text=Match Hashes",
    "/redoc": "h2 >> text=Match Hashes",
}
# Reports the page's violations of its policy to the test (an init script runs under no CSP).
WATCH = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"""


def test_docs_and_redoc_render_with_no_network(tmp_path: Path) -> None:
    # The pages are the OpenAPI document's: one database (a file) is enough.
    with running(f"sqlite:///{tmp_path / 'hashguard.db'}") as server, launched() as browser:
        for path, operation in PAGES.items():
            own, elsewhere, violations = shown(browser, server, path, operation, tmp_path)
            assert elsewhere == [], f"{path} asked other hosts for {elsewhere}"
            # Only ReDoc's CDN logo is blocked (img-src), as the policy means it to be.
            broken = [v for v in violations if not v.startswith("img-src https://cdn.redoc.ly/")]
            assert broken == [], f"{path} broke its policy: {broken}"
            policy = server.get(path).headers["content-security-policy"]
            assert "script-src 'self';" in policy  # no inline script
            assert any(url.endswith("/openapi.json") for url in own), own


def shown(
    browser: Any, server: Server, path: str, operation: str, directory: Path
) -> tuple[list[str], list[str], list[str]]:
    """Open ``path`` with every request to another host refused, wait until ``operation`` is
    visible and take a screenshot; the URLs asked of the server and of other hosts, and the
    page's violations of its policy."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(WATCH)
    own: list[str] = []
    elsewhere: list[str] = []

    def only_own_origin(route: Any) -> None:
        url = route.request.url
        if url.startswith(server.url + "/"):
            own.append(url)
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    page.route("**/*", only_own_origin)
    page.goto(server.url + path)
    page.wait_for_selector(operation, timeout=30_000)
    assert page.locator(operation).first.is_visible()
    page.screenshot(path=directory / f"{path.strip('/')}-desktop.png")
    violations = list(page.evaluate("window.__violations"))
    page.close()
    return own, elsewhere, violations
