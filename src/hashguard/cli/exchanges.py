"""``hashguard exchanges ...``: the exchanges whose lists this service fetches (docs/exchanges.md):
adding one (its plug-in, base URL, settings, credentials, interval), listing them, fetching one
now, their fetch status and quarantined records, enabling, disabling and removing one, their
credentials (one exchange's own, or a plug-in's shared ones), and re-sealing every credential
under a new server secret.

The database, the server's secret file and the networks exchanges may be reached on are read as
``hashguard serve`` reads them (``--config FILE``, the HASHGUARD_* variables, the flags): use the
same ones, or the credentials sealed here do not open there. Credentials are read from a JSON
file or standard input, never from the command line (it shows in ``ps``), and never printed.
"""

import functools
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import typer

from hashguard.api.settings import SETTINGS
from hashguard.cli.common import ExitCode, fail, who
from hashguard.cli.settings import with_settings

if TYPE_CHECKING:
    from hashguard.api.configuration import Configuration
    from hashguard.api.settings import ServiceSettings
    from hashguard.exchanges.api import ExchangeApi
    from hashguard.exchanges.store import Exchanges, FetchStatus
    from hashguard.exchanges.sync import Fetched, Sync

T = TypeVar("T")

exchanges_app = typer.Typer(name="exchanges", no_args_is_help=True)  # help: cli/__init__.py
credentials_app = typer.Typer(
    name="credentials",
    no_args_is_help=True,
    help="Credentials: one exchange's own (--exchange NAME) or a plug-in's, shared by its "
    "exchanges; read from a JSON file or standard input, stored sealed.",
)
exchanges_app.add_typer(credentials_app)

FLAGGED = frozenset(
    {"database_url", "secret_file", "exchange_networks"}
    | {name for name, (_, spec) in SETTINGS.items() if spec.section == "exchanges"}
)
exchange_settings = functools.partial(with_settings, flagged=FLAGGED)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The exchange (and the list it fills).")]
Actor = Annotated[str, typer.Option("--actor", help="Who does it (audit log).")]
CredentialsFile = Annotated[
    Path,
    typer.Option(
        "--file",
        metavar="FILE.json",
        help="A JSON object of the credentials ('-': standard input).",
    ),
]

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL: Final = re.compile(r"\s*(\d+)\s*([smhd]?)\s*")
QUARANTINE_SHOWN: Final = 20  # records `status NAME` lists


# --- exchanges -------------------------------------------------------------------------------


@exchanges_app.command()
@exchange_settings
def add(
    configuration: "Configuration",
    name: Name,
    api: Annotated[
        str,
        typer.Option(
            "--api", help="The plug-in: sample, hashguard, ncmec, stopncii, fb_threatexchange."
        ),
    ],
    base_url: Annotated[
        str, typer.Option("--base-url", metavar="URL", help="The exchange's http(s) address.")
    ] = "",
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A setting of the plug-in (repeat; a list setting takes commas or repeats).",
        ),
    ] = None,
    credentials_file: Annotated[
        Path | None,
        typer.Option(
            "--credentials-file",
            metavar="FILE.json",
            help="The exchange's own credentials, a JSON object ('-': standard input).",
        ),
    ] = None,
    interval: Annotated[
        str, typer.Option("--interval", metavar="DURATION", help="Between fetches: 90s, 15m, 1h.")
    ] = "15m",
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Add it without fetching until enabled.")
    ] = False,
    actor: Actor = "",
) -> None:
    """Add an exchange: it fetches the plug-in's lists into the list NAME (made when absent),
    first at once unless --disabled, then every --interval. Exit status 1 for a setting or
    credential the plug-in refuses (named), a name taken, or an unknown plug-in."""
    from hashguard.exchanges import registry

    plugin = _db(lambda: registry.get(api))
    given = _settings(plugin, settings or [])
    if base_url:
        given["base_url"] = base_url
    seconds = parse_interval(interval)
    credentials = None if credentials_file is None else read_credentials(credentials_file)
    exchanges = _exchanges(configuration.settings)
    added = _db(lambda: exchanges.add(name, api, given, credentials, enabled=not disabled,
                                      interval=seconds, actor=who(actor)))  # fmt: skip
    when = "disabled" if disabled else "first fetch due now"
    typer.echo(f"exchange {added.name}: {added.api} into list {added.list}, every "
               f"{_duration(added.interval)}; {when}")  # fmt: skip
    if plugin.credentials_schema is not None and not added.has_credentials:
        typer.echo(f"  it needs credentials: hashguard exchanges credentials set --exchange "
                   f"{added.name} --file FILE.json (or {api}'s shared ones)")  # fmt: skip


@exchanges_app.command("list")
@exchange_settings
def list_exchanges(configuration: "Configuration") -> None:
    """Every exchange: name, plug-in, list, on or off, interval, credentials, last fetch, next
    fetch, quarantined records."""
    exchanges = _exchanges(configuration.settings)
    typer.echo("name\tapi\tlist\tenabled\tinterval\tcredentials\tlast_fetch\tnext_fetch\t"
               "quarantined")  # fmt: skip
    for exchange in _db(exchanges.all):
        status = _db(lambda e=exchange.name: exchanges.status(e))  # type: ignore[misc]
        typer.echo(f"{exchange.name}\t{exchange.api}\t{exchange.list}\t"
                   f"{'yes' if exchange.enabled else 'no'}\t{_duration(exchange.interval)}\t"
                   f"{'set' if exchange.has_credentials else '-'}\t{_last_fetch(status)}\t"
                   f"{_when(status.next_fetch_at) if exchange.enabled else '-'}\t"
                   f"{status.quarantined}")  # fmt: skip


@exchanges_app.command()
@exchange_settings
def fetch(configuration: "Configuration", name: Name) -> None:
    """Fetch the exchange now (enabled or not), in this process: the records applied, those
    quarantined (where and why), and the error if it failed. Exit status 0 when fetched, 1 when
    it cannot be fetched as configured (no such exchange, a fetch of it running, settings or
    credentials refused or unreadable), 2 when the exchange could not be read now (try again)."""
    from hashguard.errors import HashguardError, Unavailable

    sync = _sync(configuration.settings)
    # the outcome is printed below: the sync's log lines would say it twice
    logging.getLogger("hashguard.exchanges").addHandler(logging.NullHandler())
    try:
        done = sync.fetch(name)
    except HashguardError as error:
        fail(str(error))
    for line in fetched_lines(done):
        typer.echo(line)
    for held in _db(lambda: sync.exchanges.quarantined(name, limit=done.quarantined)):
        typer.echo(f"  quarantined {held.position}: {held.reason}")
    if not done.succeeded:
        fail(f"exchange {name}: {done.error}",
             ExitCode.ERROR if done.kind is Unavailable else ExitCode.FAILED)  # fmt: skip


@exchanges_app.command()
@exchange_settings
def status(
    configuration: "Configuration",
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="One exchange.")] = None,
) -> None:
    """Where fetching stands: HMA's fetch status (checkpoint, running fetch, last fetch, up to
    date, items fetched) and hashguard's (checkpoint age, last counts and error, failures in a
    row, next fetch, quarantined records with where and why). Without NAME, every exchange."""
    exchanges = _exchanges(configuration.settings)
    names = [name] if name else [e.name for e in _db(exchanges.all)]
    for index, each in enumerate(names):
        if index:
            typer.echo("")
        for line in status_lines(exchanges, each):
            typer.echo(line)


@exchanges_app.command()
@exchange_settings
def remove(configuration: "Configuration", name: Name, actor: Actor = "") -> None:
    """Remove the exchange, its own credentials and quarantined records; its list stays with
    what it fetched (remove the list to stop matching it). Audited."""
    exchanges = _exchanges(configuration.settings)
    typer.echo(_db(lambda: exchanges.remove(name, who(actor))).message)


@exchanges_app.command()
@exchange_settings
def enable(configuration: "Configuration", name: Name, actor: Actor = "") -> None:
    """Fetch the exchange again on its interval, first at once. Audited."""
    exchanges = _exchanges(configuration.settings)
    _db(lambda: exchanges.update(name, enabled=True, actor=who(actor)))
    typer.echo(f"exchange {name}: enabled; next fetch due now")


@exchanges_app.command()
@exchange_settings
def disable(configuration: "Configuration", name: Name, actor: Actor = "") -> None:
    """Stop fetching the exchange (its list and state stay). Audited."""
    exchanges = _exchanges(configuration.settings)
    _db(lambda: exchanges.update(name, enabled=False, actor=who(actor)))
    typer.echo(f"exchange {name}: disabled")


@exchanges_app.command()
@exchange_settings
def checkpoint(
    configuration: "Configuration",
    name: Name,
    new: Annotated[
        str | None,
        typer.Option(
            "--set",
            metavar="JSON",
            help="Where the next fetch starts, as the plug-in reads it (StopNCII: "
            "'{\"nextSetTimestamp\": 1700000000}'); null: from the beginning.",
        ),
    ] = None,
    actor: Actor = "",
) -> None:
    """Show where the exchange's next fetch starts, or set it (--set) to fetch a skipped span
    again, as a quarantined record's reason says: checked by the plug-in, refused while a
    fetch of it runs, the next fetch due at once, audited. Exit status 1 for a checkpoint the
    plug-in refuses (what it expects is said) or a fetch running."""
    import json

    exchanges = _exchanges(configuration.settings)
    if new is None:
        held = _db(lambda: exchanges.checkpoint(name))
        typer.echo(f"exchange {name}: checkpoint {json.dumps(held)}")
        return
    try:
        given = json.loads(new)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        fail(f"--set: not JSON ({error}): give the checkpoint as a JSON object, or null")
    if given is not None and not isinstance(given, dict):
        fail("--set: give the checkpoint as a JSON object, or null")
    done = _db(lambda: exchanges.set_checkpoint(name, given, who(actor)))
    typer.echo(f"exchange {name}: checkpoint set to {json.dumps(done)}; next fetch due now")


@exchanges_app.command("rotate-secret")
@exchange_settings
def rotate_secret(
    configuration: "Configuration",
    old_secret_file: Annotated[
        Path,
        typer.Option(
            "--old-secret-file", metavar="OLD", help="The secret file they are sealed under now."
        ),
    ],
    actor: Actor = "",
) -> None:
    """Re-seal every stored credential from the secret file OLD to the current one
    (secret_file), all or none, audited: run it after replacing the server's secret file,
    before the service starts with the new one. Exit status 1 when OLD cannot be read or a
    credential opens with neither secret (nothing changed)."""
    from hashguard.exchanges import credentials
    from hashguard.review.webhook import SecretFileError, load_secret

    settings = configuration.settings
    if not old_secret_file.is_file():
        fail(f"{old_secret_file}: no such secret file (--old-secret-file)")
    if old_secret_file.resolve() == Path(settings.secret_file).resolve():
        fail(f"{old_secret_file} is the current secret file (secret_file): give the old one")
    try:
        old, new = load_secret(old_secret_file), load_secret(settings.secret_file)
    except SecretFileError as error:
        fail(str(error))
    engine = _engine(settings)
    count = _db(lambda: credentials.rotate(engine, old, new, who(actor)))
    typer.echo(f"re-sealed {count} credential(s) under {settings.secret_file}")


# --- credentials -----------------------------------------------------------------------------


@credentials_app.command("set")
@exchange_settings
def set_credentials(
    configuration: "Configuration",
    file: CredentialsFile,
    api: Annotated[
        str | None, typer.Argument(metavar="[API]", help="The plug-in whose exchanges share them.")
    ] = None,
    exchange: Annotated[
        str | None, typer.Option("--exchange", metavar="NAME", help="One exchange's own.")
    ] = None,
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url",
            metavar="URL",
            help="A plug-in's shared ones: the base URL of the exchanges they are for (default: "
            "the plug-in's); they go to no other host.",
        ),
    ] = "",
    actor: Actor = "",
) -> None:
    """Set credentials, checked by the plug-in and stored sealed (audited without them): an
    exchange's own win over its plug-in's shared ones. They are bound to a host: an
    exchange's own to its base URL's, a plug-in's to --base-url's (or its default's); an
    exchange on another host does not use them."""
    scope = _scope(api, exchange)
    if exchange is not None and base_url:
        fail("--base-url is for a plug-in's shared credentials: an exchange's own are for its "
             "base URL")  # fmt: skip
    given = read_credentials(file)
    exchanges = _exchanges(configuration.settings)
    if exchange is not None:
        origin = _db(lambda: exchanges.set_credentials(exchange, given, who(actor)))
    else:
        origin = _db(lambda: exchanges.set_api_credentials(str(api), given, who(actor), base_url))
    typer.echo(f"credentials of {scope}: set (sealed; fields {', '.join(sorted(given))}; sent "
               f"to {origin} only)")  # fmt: skip


@credentials_app.command("clear")
@exchange_settings
def clear_credentials(
    configuration: "Configuration",
    api: Annotated[
        str | None, typer.Argument(metavar="[API]", help="The plug-in whose exchanges share them.")
    ] = None,
    exchange: Annotated[
        str | None, typer.Option("--exchange", metavar="NAME", help="One exchange's own.")
    ] = None,
    actor: Actor = "",
) -> None:
    """Forget credentials (audited)."""
    scope = _scope(api, exchange)
    exchanges = _exchanges(configuration.settings)
    if exchange is not None:
        _db(lambda: exchanges.set_credentials(exchange, None, who(actor)))
    else:
        _db(lambda: exchanges.set_api_credentials(str(api), None, who(actor)))
    typer.echo(f"credentials of {scope}: cleared")


# --- what the commands show ------------------------------------------------------------------


def fetched_lines(done: "Fetched") -> list[str]:
    """What one fetch did, as `fetch` prints it."""
    if not done.succeeded:
        return [f"exchange {done.name}: fetch failed"]
    counts = {k: v for k, v in done.counts.items() if k not in ("records", "quarantined")}
    shown = ", ".join(f"{k} {_count(v)}" for k, v in counts.items() if v) or "nothing new"
    more = "up to date" if done.up_to_date else "more to fetch (due again now)"
    return [f"exchange {done.name}: {done.records} record(s) applied, {done.quarantined} "
            f"quarantined; {more}", f"  {shown}"]  # fmt: skip


def status_lines(exchanges: "Exchanges", name: str) -> list[str]:
    """An exchange's fetch status, as `status NAME` prints it."""
    exchange = _db(lambda: exchanges.get(name))
    state: FetchStatus = _db(lambda: exchanges.status(name))
    now = datetime.now(UTC)
    checkpoint = "-"
    if state.checkpoint_ts is not None:
        age = max(0, int(now.timestamp()) - state.checkpoint_ts)
        checkpoint = f"{_stamp(state.checkpoint_ts)} ({_age(age)} ago)"
    running = "-" if state.running_fetch_start_ts is None else _stamp(state.running_fetch_start_ts)
    lines = [
        f"exchange {exchange.name}  {exchange.api} -> list {exchange.list}  "
        f"{'enabled' if exchange.enabled else 'disabled'}, every {_duration(exchange.interval)}",
        f"  checkpoint_ts           {checkpoint}",
        f"  running_fetch_start_ts  {running}",
        f"  last_fetch_complete_ts  {_last_fetch(state)}",
        f"  last_fetch_succeeded    {_yes_no(state.last_fetch_succeeded)}",
        f"  up_to_date              {_yes_no(state.up_to_date)}",
        f"  fetched_items           {state.fetched_items}",
        f"  failures in a row       {state.failures}",
        f"  next fetch              {_when(state.next_fetch_at) if exchange.enabled else '-'}",
        f"  credentials             {'set' if exchange.has_credentials else '-'}",
    ]
    if state.last_counts:
        shown = ", ".join(f"{k} {_count(v)}" for k, v in state.last_counts.items() if v)
        lines.append(f"  last counts             {shown}")
    if state.last_error:
        lines.append(f"  last error              {' '.join(state.last_error.split())}")
    lines.append(f"  quarantined             {state.quarantined}")
    held = _db(lambda: exchanges.quarantined(name, limit=QUARANTINE_SHOWN))
    for record in held:
        reason = " ".join(record.reason.split())
        lines.append(f"    {_when(record.at)}  {record.position}: {reason}")
    if state.quarantined > len(held):
        lines.append(f"    ... {state.quarantined - len(held)} older (GET "
                     f"/v1/exchanges/{name}/quarantine)")  # fmt: skip
    return lines


# --- the parts -------------------------------------------------------------------------------


def parse_interval(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``15m``, ``1h`` or ``2d``; fails naming --interval."""
    found = _INTERVAL.fullmatch(text)
    if found is None:
        fail(f"--interval {text!r}: expected a whole number with s, m, h or d (e.g. 15m, 1h)")
    return int(found.group(1)) * _UNITS[found.group(2) or "s"]


def read_credentials(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` ('-': standard input); fails naming the file, never
    showing what it holds."""
    import json
    import sys

    where = "standard input" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"{where}: cannot read the credentials: {getattr(error, 'strerror', None) or error}")
    try:
        given = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        # the position only: the message of a JSON error can quote the secret
        fail(f"{where}: the credentials are not JSON (line {getattr(error, 'lineno', '?')})")
    if not isinstance(given, dict) or not given:
        fail(f'{where}: expected a JSON object of credentials, e.g. {{"api_key": "..."}}')
    return given


def _settings(plugin: type["ExchangeApi"], given: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options typed by the plug-in's settings (a number, true or false, a
    list of text); keys it does not know are left for it to refuse by name."""
    fields = {field.name: field for field in plugin.config_schema.fields}
    settings: dict[str, Any] = {}
    for item in given:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            fail(f"--set {item!r}: expected KEY=VALUE")
        field = fields.get(key)
        kind = field.type if field is not None else "string"
        if kind == "list":
            held = settings.setdefault(key, [])
            held.extend(word.strip() for word in text.split(",") if word.strip())
            continue
        settings[key] = _typed(key, kind, text.strip())
    return settings


def _typed(key: str, kind: str, text: str) -> Any:
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            fail(f"--set {key}={text}: {key} is a number")
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "boolean":
        if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
            fail(f"--set {key}={text}: {key} is true or false")
        return text.lower() in ("true", "yes", "1")
    return text


def _scope(api: str | None, exchange: str | None) -> str:
    if (api is None) == (exchange is None):
        fail("name a plug-in (API) or an exchange (--exchange NAME), one of the two")
    return f"exchange {exchange}" if exchange is not None else f"plug-in {api}"


def _engine(settings: "ServiceSettings") -> Any:
    from hashguard.store.database import DatabaseError, open_engine

    try:
        return open_engine(settings.database_url)
    except DatabaseError as error:
        fail(str(error))


def _exchanges(settings: "ServiceSettings") -> "Exchanges":
    """The exchanges of the database, credentials sealed with the server's secret (made on
    first use, as `hashguard serve` makes it)."""
    from hashguard.exchanges.credentials import Sealer
    from hashguard.exchanges.store import Exchanges
    from hashguard.review.webhook import SecretFileError, load_secret
    from hashguard.store.lists import ListStore

    engine = _engine(settings)
    try:
        secret = load_secret(settings.secret_file)
    except SecretFileError as error:
        fail(str(error), ExitCode.ERROR)
    return Exchanges(engine, ListStore(engine), Sealer(secret), networks=settings.exchange_networks)


def _sync(settings: "ServiceSettings") -> "Sync":
    from hashguard.exchanges.sync import Sync

    return Sync(_exchanges(settings), settings.exchange_networks)


def _db(read: Callable[[], T]) -> T:
    """``read()``, a refusal as one line (exit status 1)."""
    from hashguard.errors import HashguardError

    try:
        return read()
    except HashguardError as error:
        fail(str(error))


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _age(seconds: int) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``: the two largest units."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {rest}s"


def _count(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} {v}" for k, v in value.items()) + "}"
    return str(value)


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _stamp(ts: int) -> str:
    return _when(datetime.fromtimestamp(ts, UTC))


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _last_fetch(state: "FetchStatus") -> str:
    if state.last_fetch_complete_ts is None:
        return "never"
    outcome = "ok" if state.last_fetch_succeeded else "FAILED"
    return f"{_stamp(state.last_fetch_complete_ts)} {outcome}"
