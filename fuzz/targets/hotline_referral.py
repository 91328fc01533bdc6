"""A referral another hotline sends (``POST /v1/hotline/referrals``): the body read as JSON (not
JSON: the route's 400, not fuzzed further), then every field checked as the receiving hotline
checks it (``partners.check_referral``: ids, URLs, each item's hashes and labels, the trace's
fields), then the trace taken rendered as the desk's item and case pages show it."""

import json
from datetime import UTC, datetime
from pathlib import Path

from hashguard.hotline.cases import TraceShown
from hashguard.hotline.partners import check_referral
from hashguard.web.pages import page

_AT = datetime(2026, 1, 1, tzinfo=UTC)


def one(data: bytes, scratch: Path) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return
    referral = check_referral(document)
    page("hotline/trace.html", trace=TraceShown(_AT, None, None, False, dict(referral.trace)))
