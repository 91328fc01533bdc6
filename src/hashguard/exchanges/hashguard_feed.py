"""A list's change feed on another hashguard service (``GET /v1/lists/{name}/changes?since=N``),
read over an exchange's ``Http``: the ``hashguard`` exchange plug-in (its checkpoint the origin
list's version) and the ``Feed`` that ``hashguard lists follow`` replays through
hashguard.lists.mirror.
"""

import ipaddress
import json
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from hashguard.errors import Invalid
from hashguard.exchanges.api import (
    EXCERPT,
    ExchangeConfigError,
    ExchangeHttp,
    ExchangeUnavailable,
    FeedbackItem,
    Field,
    Page,
    Quarantined,
    Schema,
)
from hashguard.exchanges.fields import check_fields
from hashguard.exchanges.http import Http
from hashguard.exchanges.registry import register
from hashguard.lists import limits
from hashguard.lists.mirror import ListAbout, MirrorError
from hashguard.lists.model import VARIANT_FAMILIES, Category, Change, ListPolicy
from hashguard.lists.records import Record, bounded

PAGE: Final = 1000  # changes asked for per request
# An operator's own command (``lists follow``) reaches the origin it names, wherever it is.
_ANYWHERE: Final = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


class _Origin:
    """JSON requests to a hashguard service with an API key; failures as
    ExchangeUnavailable (the key never in a message)."""

    def __init__(self, http: ExchangeHttp, key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        answer = self.http.request("GET", path, params=params, headers=self.headers)
        return _json(self.http.base_url, path, answer.status, answer.body)

    def post(self, path: str, document: Any) -> Any:
        body = json.dumps(document).encode()
        answer = self.http.request("POST", path, headers=self.headers, body=body,
                                   content_type="application/json")  # fmt: skip
        return _json(self.http.base_url, path, answer.status, answer.body)


def _json(base: str, path: str, status: int, body: bytes) -> Any:
    if status != 200:
        raise ExchangeUnavailable(f"{base}{path}: {status} {_message(body)}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ExchangeUnavailable(f"{base}{path}: the answer is not JSON") from None


def _message(body: bytes) -> str:
    """The error message of a refused request (or the start of its body)."""
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, RecursionError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def _moment(text: str) -> datetime | None:
    """A change's time (ISO 8601), or None when it has none readable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _changes_path(name: str) -> str:
    return f"/v1/lists/{name}/changes"


@register
class HashguardExchange:
    """Another hashguard service's list, by its change feed: each change replayed as it was
    made there."""

    name: ClassVar[str] = "hashguard"
    title: ClassVar[str] = "Another hashguard service's list"
    category: ClassVar[Category] = Category.KNOWN_CSAM
    config_schema: ClassVar[Schema] = Schema((
        Field("list", "string", required=True, help="the list's name at the origin"),
    ))  # fmt: skip
    credentials_schema: ClassVar[Schema | None] = Schema((
        Field("api_key", "string", required=True, secret=True,
              help="an API key of the origin that may read the list"),
    ))  # fmt: skip
    default_base_url: ClassVar[str] = ""
    supports_feedback: ClassVar[bool] = False
    local: ClassVar[bool] = False

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(cls.config_schema, config)

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(cls.credentials_schema or Schema(), credentials, "credential")

    @classmethod
    def check_checkpoint(cls, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """A checkpoint an operator sets: ``{"version": N}``, the origin list's version the
        changes after which are fetched. Raises ExchangeConfigError."""
        version = checkpoint.get("version")
        if (set(checkpoint) != {"version"} or not isinstance(version, int)
                or isinstance(version, bool) or version < 0):  # fmt: skip
            raise ExchangeConfigError(
                'checkpoint: expected {"version": N} (the origin list\'s version, 0 or more)'
            )
        return {"version": version}

    def __init__(
        self, config: Mapping[str, Any], credentials: Mapping[str, Any] | None, http: ExchangeHttp
    ) -> None:
        self.list = str(config["list"])
        self.origin = _Origin(http, str((credentials or {}).get("api_key", "")))

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        """Pages of the origin's changes after the checkpoint's version, until there are none
        newer. A change that cannot be read is quarantined (named by its version)."""
        since = int((checkpoint or {}).get("version", 0))
        while True:
            document = self.origin.get(_changes_path(self.list),
                                       {"since": str(since), "limit": str(PAGE)})  # fmt: skip
            try:
                version = int(document["version"])
                items = list(document["changes"])
            except (KeyError, TypeError, ValueError, OverflowError):  # 1e400: infinity
                raise ExchangeUnavailable(
                    f"{self.origin.http.base_url}{_changes_path(self.list)}: not a change feed "
                    "(expected version and changes)"
                ) from None
            if version < since:
                raise ExchangeUnavailable(
                    f"list {self.list} at the origin is at version {version}, before this "
                    f"exchange's checkpoint {since}: it was made anew there; add the exchange "
                    "again to start over"
                )
            if not items:
                return
            page = Page()
            for number, item in enumerate(items, start=since + 1):
                try:
                    change = bounded(Change.from_json(item))
                except Exception as error:  # whatever a change holds, it never fails its page
                    page.quarantined.append(Quarantined(
                        f"change {number} (after version {since})",
                        f"not a change: {error}",
                        json.dumps(item, default=str)[:EXCERPT],
                    ))  # fmt: skip
                    continue
                record: Record = change
                page.records.append(record)
                page.checkpoint_at = _moment(change.at) or page.checkpoint_at
            since += len(items)
            page.checkpoint = {"version": since}
            yield page
            if since >= version:
                return

    def send_feedback(self, item: FeedbackItem) -> None:
        raise NotImplementedError("a hashguard origin takes no feedback")


class Feed:
    """A list's change feed on a hashguard service (a hashguard.lists.mirror.ChangeFeed), for
    ``hashguard lists follow``: failures are MirrorErrors."""

    def __init__(self, base: str, name: str, key: str, timeout: float = 60.0) -> None:
        self.name = name
        try:
            http = Http(base, _ANYWHERE, timeout)
        except ValueError as error:
            raise MirrorError(f"--from {base}: {error}") from None
        self.client = _Origin(http, key)
        self.origin = http.base_url

    def acknowledge(self, version: int) -> None:
        """Tell the origin the list's ``version`` is applied here (a receipt: a victim's case
        shows how many followers applied a withdrawal). Raises MirrorError if it is refused."""
        try:
            self.client.post(f"/v1/lists/{self.name}/acknowledgements", {"version": version})
        except ExchangeUnavailable as error:
            raise MirrorError(str(error)) from None

    def about(self) -> ListAbout:
        """How the origin describes the list (to create the local list like it)."""
        try:
            document = self.client.get(f"/v1/lists/{self.name}")
        except ExchangeUnavailable as error:
            raise MirrorError(str(error)) from None
        return about_page(self.name, document)

    def page(self, since: int) -> tuple[int, list[Change]]:
        """The origin's version and its changes after ``since`` (at most a page)."""
        try:
            document = self.client.get(_changes_path(self.name),
                                       {"since": str(since), "limit": str(PAGE)})  # fmt: skip
        except ExchangeUnavailable as error:
            raise MirrorError(str(error)) from None
        return feed_page(self.name, document)


def feed_page(name: str, document: Any) -> tuple[int, list[Change]]:
    """A page of list ``name``'s change feed as the origin answered it (parsed JSON): the
    origin's version and the changes. Raises MirrorError naming what is malformed."""
    try:
        changes = [bounded(Change.from_json(item)) for item in document["changes"]]
        return int(document["version"]), changes
    # A change or its provenance that is not an object (AttributeError); a number too large
    # for an integer (OverflowError: 1e400 reads as infinity).
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise MirrorError(f"{name}: a malformed change in the feed ({error})") from None


class _Odd(Invalid):
    """A field of the origin's description that is not what the service answers (said as a
    MirrorError naming the list)."""


def about_page(name: str, document: Any) -> ListAbout:
    """List ``name`` as the origin described it (``GET /v1/lists/{name}``, parsed JSON), every
    field checked for its type and length; a policy field an older origin does not send takes
    its default. Raises MirrorError naming the field."""
    try:
        if not isinstance(document, Mapping):
            raise _Odd(f"expected an object, got {_json_kind(document)}")
        jurisdictions = _field(document, "jurisdictions", list)
        if len(jurisdictions) > limits.JURISDICTIONS:
            raise _Odd(f"jurisdictions: {len(jurisdictions)}; the limit is {limits.JURISDICTIONS}")
        category = _field(document, "category", str)
        if category not in {c.value for c in Category}:
            raise _Odd(f"category {category[:40]!r}: expected one of {', '.join(Category)}")
        return ListAbout(
            _text(_field(document, "owner", str), "owner", _OWNER_CHARS),
            Category(category),
            tuple(_text(_kind(j, "jurisdiction", str), "jurisdiction", limits.NAME)
                  for j in jurisdictions),
            _text(_field(document, "legal_basis", str), "legal_basis", limits.LEGAL_BASIS),
            _policy(_field(document, "policy", Mapping)),
        )  # fmt: skip
    except _Odd as error:
        raise MirrorError(f"{name}: the origin described the list oddly ({error})") from None


_OWNER_CHARS: Final = 200  # what the lists table keeps of an owner (and the API takes)
_DEFAULT: Final = ListPolicy()


def _policy(data: Mapping[str, Any]) -> ListPolicy:
    thresholds = _field(data, "thresholds", Mapping, {})
    variants = _field(data, "variants", list, sorted(_DEFAULT.variants))
    for variant in variants:
        if variant not in VARIANT_FAMILIES:
            raise _Odd(f"policy variant {str(variant)[:40]!r}: expected one of "
                       f"{', '.join(VARIANT_FAMILIES)}")  # fmt: skip
    return ListPolicy(
        {
            _text(signal, "signal", limits.NAME): _number(thresholds, signal)
            for signal in thresholds
        },
        _field(data, "negative", bool, _DEFAULT.negative),
        _field(data, "two_sources", bool, _DEFAULT.two_sources),
        _number(data, "enabled_ratio", _DEFAULT.enabled_ratio),
        _field(data, "four_eyes", bool, _DEFAULT.four_eyes),
        frozenset(variants),
    )


def _json_kind(value: Any) -> str:
    """What JSON calls the type of ``value`` (parsed JSON, or a type the checks expect)."""
    for kind, name in ((bool, "true or false"), (str, "a string"), (int | float, "a number"),
                       (Mapping, "an object"), (list, "a list")):  # fmt: skip
        if value is kind or (not isinstance(value, type) and isinstance(value, kind)):
            return name
    return "null"


_REQUIRED: Final = object()


def _field(data: Mapping[str, Any], field: str, kind: type, default: Any = _REQUIRED) -> Any:
    """``data[field]`` if it is of ``kind``; ``default`` when the field is absent (if given)."""
    if field not in data:
        if default is _REQUIRED:
            raise _Odd(f"{field}: missing")
        return default
    return _kind(data[field], field, kind)


def _kind(value: Any, field: str, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _Odd(f"{field}: expected {_json_kind(kind)}, got {_json_kind(value)}")
    return value


def _text(text: str, field: str, limit: int) -> str:
    if len(text) > limit:
        raise _Odd(f"{field} of {len(text):,} characters; the limit is {limit:,}")
    return text


def _number(data: Mapping[str, Any], field: str, default: float | None = None) -> float:
    if field not in data and default is not None:
        return default
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Odd(f"{str(field)[:40]}: expected a number, got {_json_kind(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise _Odd(f"{str(field)[:40]}: a number out of range") from None
    if not math.isfinite(number):
        raise _Odd(f"{str(field)[:40]}: a number out of range")
    return number
