"""``hashguard hotline ...``: the hotline for its operators (docs/hotline.md). Reports and their
cases as the desk shows them (never a reporter's contact, never content), the queue, assessing
an item, a hosting trace now, the partner registry and its key files, and one run of the
pipeline for operators who do not run ``hashguard serve`` (from cron).

The database and the hotline's settings are read as ``hashguard serve`` reads them: ``--config
FILE`` (its ``[hotline]`` section), the HASHGUARD_* variables and the flags each command offers.
"""

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from hashguard.api.settings import SETTINGS
from hashguard.cli.common import ExitCode, fail
from hashguard.cli.settings import with_settings
from hashguard.errors import MAX_ID

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hashguard.api.configuration import Configuration
    from hashguard.api.settings import ServiceSettings
    from hashguard.hotline.cases import CaseShown, ItemShown
    from hashguard.hotline.partners import PartnerRegistry
    from hashguard.hotline.service import Hotline
    from hashguard.hotline.trace import Trace

T = TypeVar("T")

hotline_app = typer.Typer(name="hotline", no_args_is_help=True)  # help: cli/__init__.py

# The settings the hotline's commands offer as flags (the others come from --config and the
# environment as well): the database, the media limit and the hotline's own section (the
# networks the crawler may reach among them).
FLAGGED = frozenset(
    {"database_url", "max_upload_mb"}
    | {name for name, (_, spec) in SETTINGS.items() if spec.section == "hotline"}
)
hotline_settings = functools.partial(with_settings, flagged=FLAGGED)


class ListFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


class TraceFormat(StrEnum):
    text = "text"
    json = "json"


class PartnersAction(StrEnum):
    check = "check"


# --- reading --------------------------------------------------------------------------------


@hotline_app.command()
@hotline_settings
def reports(
    configuration: "Configuration",
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N reports.")] = 50,
    output: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ListFormat.text
    ),
) -> None:
    """Reports, newest first, with their URLs' cases and states.

    Each report's reference, when it came, its source (public, or partner:NAME) and per URL its
    case and state; jsonl adds where it was seen and the description. Never the reporter's
    contact."""
    import json

    from hashguard.hotline.cases import Cases

    cases = Cases(_engine(configuration.settings))
    for report in _db(lambda: cases.reports(limit)):
        shown = [_db(functools.partial(cases.case, case_id)) for case_id in report.cases]
        if output is ListFormat.jsonl:
            typer.echo(json.dumps({
                "reference": report.reference, "created_at": _iso(report.created_at),
                "source": report.source, "seen_where": report.seen_where,
                "description": report.description,
                "cases": [{"id": c.id, "url": c.url, "state": c.state} for c in shown],
            }, ensure_ascii=False))  # fmt: skip
            continue
        typer.echo(f"{report.reference}  {_when(report.created_at)}  {report.source}")
        for case in shown:
            typer.echo(f"  case {case.id}  {case.state:<11}  {case.url}")


@hotline_app.command()
@hotline_settings
def case(
    configuration: "Configuration",
    case_id: Annotated[
        int, typer.Argument(metavar="ID", help="The case's number.", min=1, max=MAX_ID)
    ],
) -> None:
    """One case: its reports, fetches, items, trace, route, notices and outbox.

    Exit status 1 for a case that does not exist."""
    from hashguard.hotline.cases import Cases

    cases = Cases(_engine(configuration.settings))
    for line in _case_lines(_db(lambda: cases.case(case_id))):
        typer.echo(line)


@hotline_app.command()
@hotline_settings
def queue(
    configuration: "Configuration",
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N items.")] = 50,
) -> None:
    """Items waiting for an analyst, oldest first.

    Item, case, kind, state (queued, or pending a second analyst: who assessed it first) and
    URL."""
    from hashguard.hotline.cases import Cases

    cases = Cases(_engine(configuration.settings))
    waiting = _db(lambda: cases.queue(limit))
    if not waiting:
        typer.echo("no items wait for an analyst")
    for item in waiting:
        typer.echo(_item_line(item))


# --- assessing and running ------------------------------------------------------------------


@hotline_app.command()
@hotline_settings
def assess(
    configuration: "Configuration",
    item_id: Annotated[
        int, typer.Argument(metavar="ITEM", help="The item's number.", min=1, max=MAX_ID)
    ],
    labels: Annotated[
        list[str],
        typer.Option(
            "--label",
            metavar="GROUP=VALUE",
            help="A label from the vocabulary (repeat: iccam=baseline, age=..., ...).",
        ),
    ],
    analyst: Annotated[str, typer.Option("--analyst", help="Who assesses (audited).")],
) -> None:
    """Assess an item waiting for an analyst; prints the outcome.

    Final (its hashes listed, the items that now match triaged at once), pending a second
    analyst (four eyes), or disagreed (back to the queue). Exit status 1, with one line saying
    why, for labels the vocabulary refuses, an unknown item or one not waiting for this
    analyst; 2 when the hotline is off or its files cannot be read."""
    from hashguard.errors import HashguardError

    given: dict[str, str] = {}
    for text in labels:
        group, equals, value = text.partition("=")
        if not equals or not group.strip() or not value.strip():
            fail(f"--label {text!r}: expected GROUP=VALUE (e.g. iccam=baseline)")
        if group.strip() in given:
            fail(f"--label {text!r}: {group.strip()} is labelled twice")
        given[group.strip()] = value.strip()
    hotline = _hotline(configuration.settings)
    try:
        done = hotline.assessments.assess(item_id, given, analyst)
    except HashguardError as error:
        fail(str(error))
    finally:
        hotline.stop()
    typer.echo(_assessed(done))


@hotline_app.command("run-once")
@hotline_settings
def run_once(
    configuration: "Configuration",
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N cases.")] = 100,
) -> None:
    """Run the pipeline once (from cron, without serve); prints what it did.

    What `hashguard serve` does all the time: crawl, triage and trace the reported URLs due,
    route the cases whose items are all decided, and send what waits in the outbox. Exit
    status 2 when the hotline is off or its files cannot be read."""
    from hashguard.hotline import outbox
    from hashguard.hotline.model import CaseState, ItemState

    hotline = _hotline(configuration.settings)
    try:
        before = _db(hotline.cases.figures)
        handled = _db(lambda: hotline.pipeline.run_once(limit))
        after = _db(hotline.cases.figures)
        delivered = _db(lambda: outbox.deliver_due(hotline.engine, hotline.destination_of))
        waiting = [m for m in _db(lambda: outbox.messages(hotline.engine)) if not m.delivered_at]
    finally:
        hotline.stop()
    typer.echo(f"cases handled: {handled}")

    def waiting_cases(figures: Any) -> int:
        return sum(figures.cases_by_state.get(s, 0) for s in (CaseState.NEW, CaseState.CRAWLING))

    def grew(name: str, now: dict[str, int], then: dict[str, int]) -> int:
        return now.get(name, 0) - then.get(name, 0)

    unreachable = grew(CaseState.UNREACHABLE, after.cases_by_state, before.cases_by_state)
    typer.echo(f"reported URLs crawled: {waiting_cases(before) - waiting_cases(after)}"
               + (f" ({unreachable} unreachable)" if unreachable else ""))  # fmt: skip
    items = {state: getattr(after, state) - getattr(before, state)
             for state in (ItemState.AUTO, ItemState.QUEUED, ItemState.FAILED)}  # fmt: skip
    typer.echo(f"items found: {after.items - before.items} ({items[ItemState.AUTO]} triaged "
               f"without anyone viewing them, {items[ItemState.QUEUED]} queued for analysts, "
               f"{items[ItemState.FAILED]} failed)")  # fmt: skip
    routed = {kind: grew(kind, after.routes_by_kind, before.routes_by_kind)
              for kind in after.routes_by_kind}  # fmt: skip
    shown = ", ".join(f"{kind} {count}" for kind, count in sorted(routed.items()) if count)
    typer.echo(f"cases routed: {sum(routed.values())}" + (f" ({shown})" if shown else ""))
    typer.echo(f"outbox: {delivered} delivered, {len(waiting)} waiting")
    for message in waiting:
        reason = f": {message.last_error}" if message.last_error else ""
        typer.echo(f"  {message.kind} to {message.target} (case {message.case_id}, "
                   f"{message.attempts} attempts){reason}")  # fmt: skip


# --- tracing and partners -------------------------------------------------------------------


@hotline_app.command()
@hotline_settings
def trace(
    configuration: "Configuration",
    url: Annotated[str, typer.Argument(help="The URL whose host is traced.")],
    resolvers: Annotated[
        list[str] | None,
        typer.Option(
            "--resolver",
            metavar="HOST:PORT",
            help="A nameserver to ask (repeat); default: the hotline's, else the system's.",
        ),
    ] = None,
    databases: Annotated[
        list[Path] | None,
        typer.Option(
            "--ip-database",
            metavar="PATH",
            help="An IP database, ip2asn TSV or libloc (repeat); default: the hotline's.",
        ),
    ] = None,
    hosters: Annotated[
        Path | None,
        typer.Option(
            "--hosters",
            metavar="PATH",
            help="The registry of hosters (TOML); default: the hotline's.",
        ),
    ] = None,
    output: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = (
        TraceFormat.text
    ),
) -> None:
    """Trace a URL's host now: DNS, network, AS, country, CDN, hoster.

    The CNAME chain and addresses, each address's network, AS and country (the IP databases'
    dates stated), CDN, hoster and abuse contact. What cannot be resolved is said, and the
    status is still 0; 1 for a URL that is no reportable URL or a file that cannot be read."""
    import json

    from hashguard.errors import Invalid
    from hashguard.hotline import hosters as registry
    from hashguard.hotline.ipdb import open_database
    from hashguard.hotline.trace import Tracer
    from hashguard.hotline.urls import check
    from hashguard.net.dns import DnsResolver

    s = configuration.settings
    try:
        checked = check(url, s.hotline_networks)
        resolver = DnsResolver(resolvers or s.hotline_resolver,
                               timeout=min(5.0, s.hotline_crawl_timeout))  # fmt: skip
        opened = [open_database(path) for path in (databases or s.hotline_ip_databases)]
        file = hosters or s.hotline_hosters
        known = registry.load(file) if file is not None else registry.HosterRegistry()
    except Invalid as error:
        fail(str(error))
    found = Tracer(resolver, opened, known).trace(checked.url)
    if output is TraceFormat.json:
        typer.echo(json.dumps(found.as_json(), indent=2, ensure_ascii=False))
        return
    for line in _trace_lines(found):
        typer.echo(line)


@hotline_app.command()
@hotline_settings
def partners(
    configuration: "Configuration",
    action: Annotated[
        PartnersAction | None,
        typer.Argument(help="check: also exit 1 when a key file cannot be used."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--partners", metavar="PATH", help="The partners file (TOML); default: the hotline's."
        ),
    ] = None,
) -> None:
    """Partner hotlines and the police and international endpoints; `partners check`.

    Each partner's name, countries and where referrals go, the endpoints, and whether each key
    file can be used (never the key). Exit status 1 for a file that cannot be used (its line
    named), and with `check` for a key file that cannot be used."""
    from hashguard.hotline.partners import PartnerFileError, load

    path = file or configuration.settings.hotline_partners
    if path is None:
        fail("no partners file: give --partners PATH or set hotline_partners")
    try:
        registry = load(path, configuration.settings.hotline_networks)
    except PartnerFileError as error:
        fail(str(error))
    typer.echo(f"partners file: {path}")
    unusable = 0
    for kind, name, where, url, key_file in _destinations(registry):
        key = _key_state(key_file)
        unusable += key is not None
        shown = "no key file" if key_file is None else key or f"key file {key_file} readable"
        typer.echo(f"{kind:<14}{name}  {where}  {url}  ({shown})")
    if not registry.partners:
        typer.echo("no partner hotlines")
    if action is PartnersAction.check and unusable:
        fail(f"{unusable} key file{'s' if unusable > 1 else ''} cannot be used")


# --- what the commands share ----------------------------------------------------------------


def _engine(settings: "ServiceSettings") -> "Engine":
    from hashguard.store.database import DatabaseError, open_engine

    try:
        return open_engine(settings.database_url)
    except DatabaseError as error:
        fail(str(error))


def _db(read: Callable[[], T]) -> T:
    """``read()``, a store's error as one line (exit status 1)."""
    from hashguard.errors import HashguardError

    try:
        return read()
    except HashguardError as error:
        fail(str(error))


def _hotline(settings: "ServiceSettings") -> "Hotline":
    """The hotline as `hashguard serve` builds it (its files read: each error names its file
    and line, exit status 2), on the database; its pipeline's workers are not started.

    Four eyes hold for the deployment: when the service last started with them (its recorded
    configuration), an assessment made here needs them too, whatever this command was given."""
    import dataclasses

    from hashguard.api.service import decode_budget
    from hashguard.api.service import hotline_settings as settings_of
    from hashguard.errors import Invalid
    from hashguard.hotline.service import Hotline
    from hashguard.store import audit
    from hashguard.store.lists import ListStore

    if not settings.hotline_country:
        fail("the hotline is off: set hotline_country ([hotline] in the --config file, "
             "HASHGUARD_HOTLINE_COUNTRY or --hotline-country)", ExitCode.ERROR)  # fmt: skip
    engine = _engine(settings)
    hotline_settings = settings_of(settings)
    served = audit.last_details(engine, "service.configuration") or {}
    if served.get("hotline", {}).get("hotline_four_eyes") is True:
        hotline_settings = dataclasses.replace(hotline_settings, four_eyes=True)
    try:
        # The crawls of this process (run-once) take a decode budget of their own, as large
        # as the server's: a server running beside it has its own.
        return Hotline(engine, ListStore(engine), hotline_settings,
                       decodes=decode_budget(settings))  # fmt: skip
    except Invalid as error:
        fail(str(error), ExitCode.ERROR)


def _key_state(key_file: Path | None) -> str | None:
    """Why ``key_file`` cannot be used, or None (read here, never shown)."""
    from hashguard.hotline.partners import PartnerKeyError, read_key

    if key_file is None:
        return None
    try:
        read_key(key_file)
    except PartnerKeyError as error:
        return str(error)
    return None


def _destinations(
    registry: "PartnerRegistry",
) -> list[tuple[str, str, str, str, Path | None]]:
    """(kind, name, countries, URL posted to, key file) of each partner and endpoint."""
    found = [("partner", p.name, ", ".join(p.countries), p.post_url, p.key_file)
             for p in registry.partners]  # fmt: skip
    for kind, endpoint in (("police", registry.police), ("international", registry.international)):
        if endpoint is not None:
            found.append((kind, endpoint.name, "-", endpoint.post_url, endpoint.key_file))
    return found


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _labels(labels: dict[str, Any]) -> str:
    return ", ".join(f"{group}={value}" for group, value in labels.items()) or "-"


def _illegal_in(legality: dict[str, Any]) -> str:
    where = [country for country, verdict in legality.items() if verdict == "illegal"]
    return f"illegal in {', '.join(where)}" if where else "not illegal anywhere"


def _item_line(item: "ItemShown") -> str:
    first = f"  (first: {item.first_analyst})" if item.first_analyst else ""
    return (f"item {item.id}  case {item.case_id}  {item.kind}  {item.state}  "
            f"{item.url}{first}")  # fmt: skip


def _assessed(done: Any) -> str:
    from hashguard.hotline.model import AssessmentState

    by = " and ".join(done.analysts)
    if done.state is AssessmentState.PENDING:
        return (f"item {done.item_id}: pending (assessment {done.id} by {by}): a second "
                "analyst must agree")  # fmt: skip
    if done.state is AssessmentState.DISAGREED:
        return (f"item {done.item_id}: disagreed ({by}): back to the queue for two other "
                "analysts")  # fmt: skip
    line = (
        f"item {done.item_id}: assessed (assessment {done.id} by {by}): "
        f"{_labels(done.labels)}; {_illegal_in(done.legality)}; hashes on {done.list_name}"
    )
    if done.triaged:
        line += f"; triaged at once: items {', '.join(str(i) for i in done.triaged)}"
    return line


def _case_lines(case: "CaseShown") -> list[str]:
    lines = [
        f"case {case.id}  {case.state}  {case.url}",
        f"  reported {_when(case.created_at)}, updated {_when(case.updated_at)}, "
        f"crawled {case.attempts} time{'s' if case.attempts != 1 else ''}"
        + (f"; last error: {case.last_error}" if case.last_error else ""),
        "reports:",
        *(f"  {r.reference}  {_when(r.created_at)}  {r.source}  seen: {r.seen_where or '-'}"
          for r in case.reports),
        "fetches:",
        *(f"  {f.id}  {_when(f.at)}  {f.outcome}  {f.status or '-'}  {f.content_type or '-'}  "
          f"{f.size} bytes  {f.url}" + (f" -> {f.final_url}" if f.final_url != f.url else "")
          + (f"  ({f.detail})" if f.detail else "") for f in case.fetches),
        "items:",
    ]  # fmt: skip
    for item in case.items:
        lines.append("  " + _item_line(item))
        if item.labels:
            lines.append(f"    labels: {_labels(item.labels)}; {_illegal_in(item.legality)}")
        if item.triage:
            lines.append(f"    triage: {_labels(item.triage)}")
        lines += [f"    {signal}: {value}" for signal, value in item.hashes.items()
                  if len(value) <= 128]  # fmt: skip
        if item.derived:
            lines.append(f"    derived: {', '.join(item.derived)}")
    lines.append("trace:")
    if case.trace is None:
        lines.append("  none yet")
    else:
        lines.append(
            f"  {_when(case.trace.at)}  hoster {case.trace.hoster or '-'}  country "
            f"{case.trace.country or '-'}{'  behind a CDN' if case.trace.cdn else ''}"
        )
        unresolved = case.trace.trace.get("unresolved") or []
        lines += [f"  unresolved: {why}" for why in unresolved]
    lines.append("route:")
    if case.route is None:
        lines.append("  none yet")
    else:
        actions = ", ".join(case.route.actions) or "no actions"
        lines.append(f"  {_when(case.route.at)}  {case.route.kind}  {case.route.target or '-'}  "
                     f"{actions}: {case.route.reason}")  # fmt: skip
    lines.append("notices:")
    lines += [
        f"  {n.id}  {n.state}  to {n.hoster or '-'} "
        f"({n.abuse_email or n.abuse_api or 'no abuse contact'})"
        f"{'  CDN' if n.cdn else ''}  {len(n.urls)} URLs"
        for n in case.notices
    ] or ["  none"]
    lines.append("outbox:")
    lines += [f"  {o.id}  {o.kind} to {o.target}  "
              + (f"delivered {_when(o.delivered_at)}" if o.delivered_at else
                 f"waiting ({o.attempts} attempts; next {_when(o.next_attempt_at)})"
                 + (f": {o.last_error}" if o.last_error else ""))
              for o in case.outbox] or ["  none"]  # fmt: skip
    return lines


def _trace_lines(found: "Trace") -> list[str]:
    lines = [f"{found.url}  traced {_when(found.at)}", f"host        {found.host}"]
    if found.dns.cnames:
        lines.append(f"cnames      {' -> '.join(found.dns.cnames)}")
    for info in found.addresses:
        parts = [info.address, f"network {info.network or '-'}",
                 f"AS{info.asn} {info.as_name or ''}".strip() if info.asn is not None else "AS -",
                 f"country {info.country or '-'}", f"hoster {info.hoster or '-'}"]  # fmt: skip
        if info.cdn:
            parts.append("CDN" + (" (anycast)" if info.anycast else ""))
        lines.append(f"address     {'  '.join(parts)}")
    hoster = found.hoster
    if hoster is not None:
        contact = ", ".join(c for c in (hoster.abuse_email, hoster.abuse_api) if c)
        lines.append(f"hoster      {hoster.name} ({hoster.country or 'no country'}); abuse: "
                     f"{contact or 'no contact'}")  # fmt: skip
    else:
        lines.append("hoster      -")
    lines.append(f"country     {found.country or '-'}")
    lines.append(f"cdn         {'yes' if found.cdn else 'no'}")
    lines.append(f"databases   {', '.join(found.databases) or '-'}")
    lines += [f"unresolved  {why}" for why in found.unresolved]
    return lines
