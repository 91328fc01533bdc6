"""The desk's two views, gathered from the domain and rendered: the queue (filtered by state,
list and service, with counts per state) and one detection (the item, its evidence, votes,
actions, reports and deliveries, and the forms that apply to it now).

The gathering functions block (the database): run them in the thread pool.
"""

import json
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse

from hashguard.api.auth import actor
from hashguard.api.routes_review import deliveries
from hashguard.api.service import Service
from hashguard.lists.model import REINSTATABLE
from hashguard.matching import Matcher
from hashguard.reports.submit import RECIPIENTS
from hashguard.review import actions
from hashguard.review.model import (
    CONFIRMED_STATES,
    OPEN,
    PERMANENT,
    ActionKind,
    Decision,
    Detection,
    Source,
    State,
)
from hashguard.signals.registry import UnknownSignal
from hashguard.store import audit
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.list_errors import ListError
from hashguard.web.pages import page, state_words

# The queue's state filter: open (the default), every state, or one.
QUEUE_STATES: Final[dict[str, frozenset[State]]] = {
    "open": OPEN, **{s.value: frozenset({s}) for s in State}, "all": frozenset(State),
}  # fmt: skip
QUEUE_LIMIT: Final = 200


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows, as its GET query parameters say."""

    state: str = "open"
    list_name: str = ""
    service: str = ""

    def query(self, **changes: str) -> str:
        """The query string of this filter with ``changes`` (defaults left out)."""
        chosen = replace(self, **changes)
        values = {"state": chosen.state if chosen.state != "open" else "",
                  "list": chosen.list_name, "service": chosen.service}  # fmt: skip
        shown = urlencode({k: v for k, v in values.items() if v})
        return f"?{shown}" if shown else ""


def queue_page(service: Service, key: ApiKey, csrf: str, chosen: QueueFilter) -> HTMLResponse:
    """The queue as ``key`` may see it, filtered; an unknown state or service is said in the
    page (400, 404)."""
    review = service.review
    scope = list(key.lists) if key.lists else None
    lists = [h.name for h in service.lists.lists() if key.may_use(h.name)]
    services = [s.name for s in review.services.all()]
    found: list[Detection] = []
    error, status = "", 200
    counts = {s: 0 for s in State}
    if chosen.state not in QUEUE_STATES:
        error, status = f"no state called {chosen.state!r}: choose one of the list", 400
    elif chosen.service and chosen.service not in services:
        error, status = f"no service named {chosen.service!r}", 404
    else:
        found = review.find(QUEUE_STATES[chosen.state], scope, chosen.list_name, chosen.service,
                            QUEUE_LIMIT)  # fmt: skip
        counts = review.counts(scope, chosen.list_name, chosen.service)
    tabs = [("open", "Open", counts[State.PENDING] + counts[State.IN_REVIEW])]
    tabs += [(s.value, state_words(s), counts[s]) for s in State]
    tabs.append(("all", "All", sum(counts.values())))
    thresholds = {d.id: _threshold(service, d.list_name, d.technology) for d in found}
    return page("queue.html", status, detections=found, reviewer=actor(key), csrf=csrf,
                chosen=chosen, tabs=tabs, lists=lists, services=services, error=error,
                thresholds=thresholds, limit=QUEUE_LIMIT)  # fmt: skip


def detection_page(
    service: Service, key: ApiKey, csrf: str, ident: int, error: str = "", status: int = 200
) -> HTMLResponse:
    """Detection ``ident`` as ``key`` may see it, with ``error`` (the refusal of a form) said
    at the top. Raises NotFound."""
    review = service.review
    found = review.visible(ident, key.lists)
    votes = review.votes(ident)
    taken = actions.actions(service.engine, ident)
    reports = service.reports.of(ident)
    checked = review.services.get(found.service)
    following = [d.id for d in review.queue(list(key.lists) or None, 50) if d.id != ident]
    if found.state is State.FALSE_POSITIVE:
        evidence = false_positive_evidence(service, key, ident)
    else:
        evidence = [{**m, "threshold": _threshold(service, m["list"], m["signal"])}
                    for m in found.evidence]  # fmt: skip
    in_force = {a.kind for a in taken if a.reversed_at is None}
    if found.state in OPEN:
        kinds = [ActionKind.QUARANTINE] if checked.profile.quarantine else []
    elif found.state in CONFIRMED_STATES:
        kinds = sorted(PERMANENT, key=list(ActionKind).index)
    else:
        kinds = []
    made = {r.recipient for r in reports}
    recipients = [r for r in RECIPIENTS if r not in made
                  and (r != "ncmec" or found.source is Source.MATCH)]  # fmt: skip
    settings = service.settings
    missing = [what for what, given in (
        ("--provider-name", settings.provider_name), ("--provider-email", settings.provider_email),
        ("--provider-country", settings.provider_country), ("--report-key", settings.report_key),
    ) if not given]  # fmt: skip
    return page(
        "detection.html", status, d=found, reviewer=actor(key), csrf=csrf, error=error,
        content_url=f"/desk/detections/{ident}/content"
        if checked.content_url and found.state is not State.FALSE_POSITIVE  # purged
        else "",
        evidence=evidence, votes=votes, four_eyes=review.four_eyes(found),
        tally={d.value: len({v.reviewer for v in votes if v.decision is d}) for d in Decision},
        open=found.state in OPEN, confirmed=found.state in CONFIRMED_STATES,
        contested=evidence if found.state is State.FALSE_POSITIVE else [],
        taken=taken, kinds=[k for k in kinds if k not in in_force],
        recipients=recipients if found.state in CONFIRMED_STATES else [],
        reports_missing=missing, deliveries=deliveries(service, ident),
        next_id=following[0] if following else None,
    )  # fmt: skip


def false_positive_evidence(service: Service, key: ApiKey, ident: int) -> list[dict[str, Any]]:
    """What a false positive had matched (its detection's evidence is purged; the audit event
    of the decision keeps the list entries and distances), each entry as it is now, and whether
    ``key`` may reinstate it: an admin key that may use the list, the one desk key that may
    curate lists."""
    events = audit.events(service.engine, subjects=[f"detection:{ident}"],
                          action="detection.false_positive", limit=1)  # fmt: skip
    details = json.loads(events[0].details) if events else {}
    recorded = details.get("evidence") or [  # an event from before distances were kept
        {"list": name, "entry": entry, "signal": "", "distance": None}
        for name, _, entry in (str(c).rpartition(":") for c in details.get("contest", []))
    ]
    found = []
    for match in recorded:
        name = str(match["list"])
        if not key.may_use(name):
            continue
        try:
            entry = service.lists.entry_by_id(name, int(match["entry"]))
        except (ListError, ValueError):  # the list or entry removed since
            continue
        curates = key.role is Role.ADMIN
        found.append({"list": name, "entry": entry.id, "signal": entry.signal,
                      "value": entry.value, "labels": sorted(entry.labels),
                      "distance": match.get("distance"), "stability": entry.stability,
                      "threshold": _threshold(service, name, entry.signal),
                      "status": entry.status.value,
                      "reinstate": curates and entry.status in REINSTATABLE})  # fmt: skip
    return found


def _threshold(service: Service, list_name: str, signal: str) -> float | str:
    try:
        return Matcher.threshold(service.lists.get(list_name), signal)
    except (ListError, UnknownSignal):  # no list (a flag), or one removed since: none known
        return "-"
