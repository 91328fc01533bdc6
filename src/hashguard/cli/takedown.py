"""``hashguard takedown ...``: notice and takedown for its operators (docs/takedown.md). The
notices and their timelines (never content: URLs, hashes, labels), resending and withdrawing
one, removal orders (listing, issuing), the hosters with their open and overdue notices, the
monitor's figures (a table or CSV), and XARF export and import.

The database and the settings are read as ``hashguard serve`` reads them: ``--config FILE``
(its ``[hotline]`` and ``[takedown]`` sections), the HASHGUARD_* variables and the flags each
command offers. Notice and takedown runs with the hotline: without ``hotline_country`` every
command says so (exit status 2).
"""

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from hashguard.api.settings import SETTINGS
from hashguard.cli.common import ExitCode, fail, who
from hashguard.cli.settings import with_settings
from hashguard.errors import MAX_ID

if TYPE_CHECKING:
    from hashguard.api.configuration import Configuration
    from hashguard.takedown.notices import NoticeDetail, NoticeView
    from hashguard.takedown.service import Takedown

T = TypeVar("T")

takedown_app = typer.Typer(name="takedown", no_args_is_help=True)  # help: cli/__init__.py

FLAGGED = frozenset(
    {"database_url", "public_url"}
    | {name for name, (_, spec) in SETTINGS.items() if spec.section in ("hotline", "takedown")}
)
takedown_settings = functools.partial(with_settings, flagged=FLAGGED)

NoticeId = Annotated[int, typer.Argument(metavar="ID", help="The notice's number.", min=1,
                                         max=MAX_ID)]  # fmt: skip
Actor = Annotated[str, typer.Option("--actor", help="Who does it (audit log).")]


class State(StrEnum):
    queued = "queued"
    open = "open"
    removed = "removed"
    forwarded = "forwarded"
    withdrawn = "withdrawn"


class By(StrEnum):
    hoster = "hoster"
    country = "country"
    all = "all"


class OrdersAction(StrEnum):
    issue = "issue"


# --- notices ---------------------------------------------------------------------------------


@takedown_app.command()
@takedown_settings
def notices(
    configuration: "Configuration",
    hoster: Annotated[str | None, typer.Option("--hoster", help="Only this hoster's.")] = None,
    state: Annotated[State | None, typer.Option("--state", help="Only in this state.")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only open notices past their deadline.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="The newest N.")] = 100,
) -> None:
    """Notices, newest first: number, kind, state, hoster, deadline (OVERDUE when open and past
    it), and the first URL (with how many more)."""
    takedown = _takedown(configuration)
    found = _db(lambda: takedown.notices.list(
        hoster=hoster, state=state.value if state else None, overdue=True if overdue else None,
        limit=limit))  # fmt: skip
    typer.echo("id\tkind\tstate\thoster\tdeadline\turls")
    for notice in found:
        typer.echo(_notice_line(notice))


@takedown_app.command()
@takedown_settings
def show(configuration: "Configuration", notice_id: NoticeId) -> None:
    """One notice: what it is about, its times, its timeline, the re-checks (what each URL
    served, by hash) and the deliveries. Exit status 1 for a notice that does not exist."""
    takedown = _takedown(configuration)
    for line in _detail_lines(_db(lambda: takedown.notices.get(notice_id))):
        typer.echo(line)


@takedown_app.command()
@takedown_settings
def resend(configuration: "Configuration", notice_id: NoticeId, actor: Actor = "") -> None:
    """Send an open notice again, as it was signed (audited)."""
    takedown = _takedown(configuration)
    notice = _db(lambda: takedown.notices.resend(notice_id, who(actor)))
    typer.echo(f"notice {notice.id} to {notice.hoster}: sent again")


@takedown_app.command()
@takedown_settings
def withdraw(
    configuration: "Configuration",
    notice_id: NoticeId,
    reason: Annotated[str, typer.Option("--reason", help="Why (a dispute upheld, a mistake).")],
    actor: Actor = "",
) -> None:
    """Take back a queued or open notice: nothing more is sent or checked (audited)."""
    takedown = _takedown(configuration)
    notice = _db(lambda: takedown.notices.withdraw(notice_id, who(actor), reason))
    typer.echo(f"notice {notice.id} to {notice.hoster}: withdrawn")


@takedown_app.command()
@takedown_settings
def orders(
    configuration: "Configuration",
    action: Annotated[
        OrdersAction | None, typer.Argument(help="issue: issue a removal order.")
    ] = None,
    urls: Annotated[
        list[str] | None, typer.Option("--url", help="A URL to remove (repeat).")
    ] = None,
    basis: Annotated[str, typer.Option("--basis", help="The order's legal basis.")] = "",
    reference: Annotated[str, typer.Option("--reference", help="The authority's reference.")] = "",
    hoster: Annotated[
        str | None, typer.Option("--hoster", help="The hoster (default: traced from the URLs).")
    ] = None,
    actor: Actor = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="The newest N.")] = 100,
) -> None:
    """Removal orders, newest first; `orders issue --url URL --basis TEXT --reference REF`
    issues one (sent to the hoster by the service's scheduler, with the order's deadline)."""
    takedown = _takedown(configuration)
    if action is OrdersAction.issue:
        if not urls:
            fail("orders issue: give the URLs to remove (--url, repeat)")
        made = _db(lambda: takedown.notices.issue_order(urls or [], basis, reference, who(actor),
                                                         hoster))  # fmt: skip
        typer.echo(f"order {made.id} to {made.hoster}: {len(made.urls)} URL(s), queued")
        return
    typer.echo("id\tkind\tstate\thoster\tdeadline\turls")
    for notice in _db(lambda: takedown.orders(None, limit)):
        typer.echo(_notice_line(notice))


@takedown_app.command()
@takedown_settings
def hosters(configuration: "Configuration") -> None:
    """The registry of hosters with their notices: name, country, abuse contacts (e-mail, API),
    CDN or not, notices open now and overdue now."""
    takedown = _takedown(configuration)
    rows = {row.group: row for row in _db(lambda: takedown.monitor.figures("hoster"))}
    typer.echo("hoster\tcountry\tabuse_email\tabuse_api\tcdn\topen\toverdue")
    for hoster in takedown.hosters:
        row = rows.get(hoster.name)
        typer.echo(f"{hoster.name}\t{hoster.country or '-'}\t{hoster.abuse_email or '-'}\t"
                   f"{hoster.abuse_api or '-'}\t{'yes' if hoster.cdn else 'no'}\t"
                   f"{row.open_now if row else 0}\t{row.overdue_now if row else 0}")  # fmt: skip
    for name, row in rows.items():  # hosters with notices the registry no longer names
        if takedown.hosters.named(name) is None:
            typer.echo(f"{name}\t-\t-\t-\t-\t{row.open_now}\t{row.overdue_now}")


@takedown_app.command()
@takedown_settings
def monitor(
    configuration: "Configuration",
    by: Annotated[By, typer.Option("--by", help="Group by hoster, country, or all.")] = By.hoster,
    since: Annotated[str, typer.Option("--since", help="Reported from (YYYY-MM-DD).")] = "",
    until: Annotated[str, typer.Option("--until", help="Reported before (YYYY-MM-DD).")] = "",
    csv: Annotated[bool, typer.Option("--csv", help="CSV instead of a table.")] = False,
) -> None:
    """The monitor's figures: per group the notices, removals, hours from report to verified
    removal (median, p90, p99), the share within 24 hours, open and overdue now, re-notices,
    escalations, reappearances and disputes."""
    from hashguard.takedown import monitor as figures

    takedown = _takedown(configuration)
    start = _db(lambda: figures.parse_moment(since, "--since"))
    end = _db(lambda: figures.parse_moment(until, "--until"))
    rows = _db(lambda: takedown.monitor.figures(by.value, start, end))
    if csv:
        typer.echo(figures.csv(rows), nl=False)
        return
    typer.echo(f"{by.value:<28} notices removed  median    p90    p99  in 24h  open overdue "
               "renot. escal. reapp. disp.")  # fmt: skip
    for row in rows:
        typer.echo(f"{row.group[:28]:<28} {row.notices or 0:>7} {row.removed or 0:>7} "
                   f"{_hours(row.median_hours)} {_hours(row.p90_hours)} "
                   f"{_hours(row.p99_hours)} {_share(row.within_24h)} {row.open_now or 0:>5} "
                   f"{row.overdue_now or 0:>7} {row.renotices or 0:>6} "
                   f"{row.escalations or 0:>6} {row.reappeared or 0:>6} "
                   f"{row.disputes or 0:>5}")  # fmt: skip


@takedown_app.command()
@takedown_settings
def export(
    configuration: "Configuration",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here (default: standard output).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N notices.")] = 1000,
) -> None:
    """Notices (as signed and sent) and outcome reports of verified removals as XARF v4, one
    JSON object per line, for other abuse desks."""
    import json

    from hashguard import durable

    takedown = _takedown(configuration)
    lines = "".join(json.dumps(report, ensure_ascii=False, sort_keys=True) + "\n"
                    for report in _db(lambda: takedown.export(limit)))  # fmt: skip
    if out is None:
        typer.echo(lines, nl=False)
        return
    try:
        durable.write(out, lines.encode())
    except OSError as error:
        fail(f"{out}: cannot write: {error.strerror or error}")
    typer.echo(f"wrote {lines.count(chr(10))} XARF report(s) to {out}", err=True)


@takedown_app.command("import")
@takedown_settings
def import_reports(
    configuration: "Configuration",
    file: Annotated[Path, typer.Argument(help="XARF reports: a JSON object, a list, or lines.")],
    source: Annotated[str, typer.Option("--source", help="Who sent them (an abuse desk).")] = "",
    actor: Actor = "",
) -> None:
    """Take in XARF reports of takedown outcomes from another abuse desk: kept as outcomes,
    linked to the hotline's case of each URL. A report that cannot be read is named with its
    line and field (exit status 1) and nothing is kept."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"{file}: cannot read: {getattr(error, 'strerror', None) or error}")
    takedown = _takedown(configuration)
    kept, linked = _db(lambda: takedown.import_reports(text, source or file.name, who(actor)))
    typer.echo(f"imported {kept} outcome(s) from {source or file.name}; {linked} linked to a case")


# --- the parts -------------------------------------------------------------------------------


def _takedown(configuration: "Configuration") -> "Takedown":
    """Notice and takedown as `hashguard serve` builds it (its files read: each error names its
    file and line, exit status 2); its scheduler is not started, and its signing key is read
    when it is there, never made (`hashguard serve` makes it; `export` needs it)."""
    from hashguard.api.service import takedown_settings as settings_of
    from hashguard.cli.hotline import _hotline
    from hashguard.errors import Invalid
    from hashguard.takedown.service import Takedown

    settings = configuration.settings
    hotline = _hotline(settings)
    try:
        return Takedown(hotline.engine, hotline, settings_of(settings), make_key=False)
    except Invalid as error:
        fail(str(error), ExitCode.ERROR)


def _db(read: Callable[[], T]) -> T:
    """``read()``, a refusal as one line (exit status 1)."""
    from hashguard.errors import HashguardError

    try:
        return read()
    except HashguardError as error:
        fail(str(error))


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _hours(value: float | None) -> str:
    return f"{'-' if value is None else f'{value:.1f}':>6}"


def _share(value: float | None) -> str:
    return f"{'-' if value is None else f'{value:.0%}':>7}"


def _notice_line(notice: "NoticeView") -> str:
    deadline = _when(notice.deadline_at) + (" OVERDUE" if notice.overdue else "")
    more = f" (+{len(notice.urls) - 1})" if len(notice.urls) > 1 else ""
    first = notice.urls[0] if notice.urls else "-"
    return f"{notice.id}\t{notice.kind}\t{notice.state}\t{notice.hoster}\t{deadline}\t{first}{more}"


def _detail_lines(detail: "NoticeDetail") -> list[str]:
    n = detail.notice
    lines = [f"notice {n.id}  {n.kind}  {n.state}{'  OVERDUE' if n.overdue else ''}",
             f"  hoster     {n.hoster} ({n.country or '-'})",
             f"  case       {n.case_id if n.case_id is not None else '-'}",
             f"  report id  {n.report_id}",
             f"  reported   {_when(n.reported_at)}",
             f"  sent       {_when(n.sent_at)}",
             f"  deadline   {_when(n.deadline_at)}",
             f"  verified   {_when(n.verified_at)}"]  # fmt: skip
    if n.kind == "order":
        lines += [f"  order      {n.reference}: {n.legal_basis}",
                  f"  outcome    {n.outcome or '-'} {n.outcome_reason}".rstrip()]  # fmt: skip
    if n.dispute_reason:
        lines.append(f"  disputed   {_when(n.disputed_at)}: {n.dispute_reason}")
    if n.previous_id is not None:
        lines.append(f"  reappeared from notice {n.previous_id}")
    if n.last_error:
        lines.append(f"  waiting    {n.last_error}")
    lines.append("urls:")
    lines += [f"  {url}" for url in n.urls]
    for item in n.items:
        hashes = ", ".join(f"{signal} {value}" for signal, value in item.get("hashes", {}).items())
        lines.append(f"  item {item.get('url')}: {hashes or 'no hashes'}")
    lines.append("timeline:")
    lines += [f"  {_when(e.at)}  {e.kind:<15}  {e.actor}" for e in detail.events]
    lines.append("checks:")
    lines += [f"  {_when(c.at)}  {c.purpose:<8}  {c.outcome:<12}  {c.status or '-'}  {c.url}"
              for c in detail.checks]  # fmt: skip
    lines.append("deliveries:")
    lines += [f"  {d.purpose:<10} {d.channel:<4}  {d.target}  "
              f"{'delivered ' + _when(d.delivered_at) if d.delivered_at else 'waiting'}"
              f"{'  (' + d.last_error + ')' if d.last_error else ''}"
              for d in detail.deliveries]  # fmt: skip
    return lines
