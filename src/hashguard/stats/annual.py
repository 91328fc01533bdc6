"""The annual transparency report: Regulation (EU) 2021/1232 Art 3(1)(g)(vii) (standard form:
Implementing Regulation 2024/2916) and the provider figures of CSA Regulation proposal Art 83(1),
as JSON and as HTML with charts.

Built from the yearly counts only (``store.counts``): no personal data goes in, and the figures
survive the purge of the detections they count. Cells between 1 and 9 are suppressed (shown as
"<10") so that no small group of people can be singled out; a ratio is suppressed when its
denominator is.
"""

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Engine

from hashguard.legal.profiles import profile
from hashguard.review.services import ServiceStore
from hashguard.store.counts import counts, total

SMALL: Final = 10  # counts below this (and above 0) are suppressed
SUPPRESSED: Final = "<10"

MEASURES: Final = (
    "matching against vetted lists of known material only, with thresholds per list",
    "a person reviews every match before any report or permanent action (unless the legal "
    "profile lets exact copies on vetted lists skip review); four eyes per list",
    "a false positive is undone at once and the list entry contested with its owner",
    "users are told the reasons and can complain; another reviewer decides",
    "error rates measured per technology (this report) and in published benchmarks",
)


def cell(value: float) -> int | str:
    """A count as published: suppressed when small."""
    whole = round(value)
    return SUPPRESSED if 0 < whole < SMALL else whole


def ratio(part: float, whole: float) -> float | str | None:
    """``part / whole``, suppressed when either is: the ratio and a published whole would
    give the part away."""
    if whole <= 0:
        return None
    if whole < SMALL or 0 < round(part) < SMALL:
        return SUPPRESSED
    return round(part / whole, 4)


def report(
    engine: Engine, year: int, provider: str, organisations: Sequence[str] = ()
) -> dict[str, Any]:
    """The report of ``year`` for ``provider``; ``organisations``: whom data was shared with
    beyond the report recipients counted."""
    figures = counts(engine, year)

    def by_key(metric: str) -> dict[str, int | str]:
        return {key: cell(value) for key, value in sorted(figures.get(metric, {}).items())}

    detections = figures.get("detections", {})
    false_positives = figures.get("false_positives", {})
    confirmed = figures.get("confirmed", {})
    errors = {}
    for technology in sorted(set(detections) | set(false_positives)):
        decided = confirmed.get(technology, 0.0) + false_positives.get(technology, 0.0)
        errors[technology] = {
            "false_positives": cell(false_positives.get(technology, 0.0)),
            "decided": cell(decided),
            "error_ratio": ratio(false_positives.get(technology, 0.0), decided),
        }
    complaints = figures.get("complaints", {})
    seconds = figures.get("complaint_seconds", {})
    decided_complaints = complaints.get("upheld", 0.0) + complaints.get("rejected", 0.0)
    days_to_decide: float | str | None = None
    if decided_complaints >= SMALL:
        days_to_decide = round(total(seconds) / decided_complaints / 86400, 2)
    elif decided_complaints:
        days_to_decide = SUPPRESSED
    services = ServiceStore(engine).all()
    actions = figures.get("actions", {})
    removed = actions.get("remove", 0.0) + actions.get("disable", 0.0)
    return {
        "format": "hashguard/annual-transparency-report",
        "year": year,
        "provider": provider,
        "regulation_2021_1232": {
            "data_processed": {
                "types": "hashes of uploaded images and videos; matches; the service's own "
                "references for content and accounts; IP address and time for reports",
                "detections_by_source": by_key("detections_by_source"),
                "detections_by_technology": by_key("detections"),
            },
            "cases": {
                "child_sexual_abuse_material": cell(total(confirmed)),
                "solicitation": 0,  # hashguard detects no solicitation (grooming) at all
            },
            "complaints": {
                "received": cell(complaints.get("received", 0.0)),
                "upheld": cell(complaints.get("upheld", 0.0)),
                "rejected": cell(complaints.get("rejected", 0.0)),
                "judicial": "not recorded by hashguard",
            },
            "errors_by_technology": errors,
            "measures_to_limit_errors": list(MEASURES),
            "retention": {
                service.name: f"{profile(service.legal_profile).retention_days} days after "
                "identification, longer only under a legal hold or an open complaint"
                for service in services
            },
            "shared_with": sorted(
                {**dict.fromkeys(figures.get("reports", {})), **dict.fromkeys(organisations)}
            ),
            "reports_by_recipient": by_key("reports"),
        },
        "csa_regulation_art_83": {
            "technologies": sorted(detections),
            "error_rates": {t: e["error_ratio"] for t, e in errors.items()},
            # Not published when a part is suppressed: decided - rejected would give upheld.
            "complaints_decided": SUPPRESSED
            if any(cell(complaints.get(k, 0.0)) == SUPPRESSED for k in ("upheld", "rejected"))
            else cell(decided_complaints),
            "average_days_to_decide": days_to_decide,
            "decisions_reversed": cell(complaints.get("upheld", 0.0)),
            "items_removed_own_initiative": cell(removed),
            "accounts_suspended": cell(actions.get("suspend", 0.0)),
            "removal_orders_received": "not recorded by hashguard",
        },
    }


def render_html(document: Mapping[str, Any]) -> str:
    """The report as one HTML page, charts inline (SVG), suppressed cells shown as "<10"."""
    eu = document["regulation_2021_1232"]
    art83 = document["csa_regulation_art_83"]
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{e['false_positives']}</td><td>{e['decided']}</td>"
        f"<td>{_shown(e['error_ratio'])}</td></tr>"
        for t, e in eu["errors_by_technology"].items()
    )
    complaints = eu["complaints"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Transparency report {document['year']}</title></head><body>",
        f"<h1>Transparency report {document['year']}: {html.escape(document['provider'])}</h1>",
        "<p>Regulation (EU) 2021/1232 Art 3(1)(g)(vii) and CSA Regulation Art 83. Counts from 1 "
        "to 9 are shown as &lt;10. No personal data.</p>",
        "<h2>Detections by technology</h2>",
        _bar_chart(eu["data_processed"]["detections_by_technology"], "detections"),
        "<h2>Errors (false positives) by technology</h2>",
        "<table><tr><th>technology</th><th>false positives</th><th>decided</th>"
        f"<th>error ratio</th></tr>{rows}</table>",
        "<h2>Complaints</h2>",
        f"<p>Received: {complaints['received']}; upheld: {complaints['upheld']}; rejected: "
        f"{complaints['rejected']}; average time to decide: "
        f"{_shown(art83['average_days_to_decide'])} days.</p>",
        "<h2>Measures to limit errors</h2><ul>",
        *(f"<li>{html.escape(m)}</li>" for m in eu["measures_to_limit_errors"]),
        "</ul><h2>Retention</h2><ul>",
        *(f"<li>{html.escape(s)}: {html.escape(r)}</li>" for s, r in eu["retention"].items()),
        "</ul><h2>Data shared with</h2><ul>",
        *(f"<li>{html.escape(o)}</li>" for o in eu["shared_with"]),
        "</ul></body></html>",
    ]
    return "\n".join(parts)


def _shown(value: object) -> str:
    return "-" if value is None else html.escape(str(value))


def _bar_chart(values: Mapping[str, int | str], what: str) -> str:
    """An inline SVG bar chart; suppressed cells are left out of it (and said so)."""
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import pyplot

    shown = {k: v for k, v in values.items() if isinstance(v, int)}
    hidden = sorted(k for k, v in values.items() if not isinstance(v, int))
    if not shown:
        note = f" ({', '.join(hidden)}: &lt;10)" if hidden else ""
        return f"<p>No {what} to chart{note}.</p>"
    figure, axes = pyplot.subplots(figsize=(6, 2.5))
    axes.bar(list(shown), list(shown.values()), color="#4a6fa5")
    axes.set_ylabel(what)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    pyplot.close(figure)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    note = f"<p>Not charted ({html.escape(', '.join(hidden))}): &lt;10.</p>" if hidden else ""
    return svg + note
