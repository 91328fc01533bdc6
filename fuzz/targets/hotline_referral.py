"""A referral another hotline sends (``POST /v1/hotline/referrals``): the body read as JSON (not
JSON: the route's 400, not fuzzed further), then every field checked as the receiving hotline
checks it (``partners.check_referral``: ids, URLs, each item's hashes and labels, the trace as
the desk shows it)."""

import json
from pathlib import Path

from hashguard.hotline.partners import check_referral


def one(data: bytes, scratch: Path) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return
    check_referral(document)
