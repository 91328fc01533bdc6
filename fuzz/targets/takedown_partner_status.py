"""A partner's takedown status of a referral (``POST /v1/hotline/referrals/{id}/status``): the
body read as JSON (not JSON: the route's 400, not fuzzed further), then checked as the route
checks it (``outcomes.check_status``: the fields, the time, the evidence, and the signature
when it carries one)."""

import json
from pathlib import Path

from hashguard.takedown.outcomes import check_status

REFERRAL = "0123456789abcdef0123456789abcdef"


def one(data: bytes, scratch: Path) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return
    check_status(document, REFERRAL)
