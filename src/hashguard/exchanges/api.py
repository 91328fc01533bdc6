"""What every exchange plug-in is: the interface NCMEC, StopNCII, ThreatExchange and another
hashguard implement alike (HMA's ``SignalExchangeAPI`` is the model).

A plug-in is a class registered by its ``name``. It declares the settings an exchange of its
kind takes (``config_schema``: HMA's ``/c/exchanges/api/{name}/schema`` and the CLI's options
both come from it) and the credentials it needs (``credentials_schema``; None: it needs none).
Built with an exchange's checked settings, its credentials and an ``ExchangeHttp`` bound to the
exchange's base URL, it fetches pages from a checkpoint: each page holds the list records it
read (submissions, tombstones, withdrawals: ``hashguard.lists.records``), the records it could
not read (``Quarantined``: named, with an excerpt, never stalling the ones after them), and the
checkpoint to resume from after it. A plug-in never touches the database: ``sync`` applies its
pages and stores the checkpoint in one transaction.
"""

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal, Protocol

from hashguard.errors import Invalid, Unavailable
from hashguard.lists.model import Category
from hashguard.lists.records import Record

FieldType = Literal["string", "number", "boolean", "list"]
EXCERPT: Final = 2000  # characters of a quarantined record kept
# Seconds an exchange's clock may be ahead of ours: no checkpoint or record time beyond now + this.
CLOCK_SKEW: Final = 300
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The plug-ins' default clock."""
    return datetime.now(UTC)


class ExchangeConfigError(Invalid):
    """An exchange's settings or credentials are not what its API takes; the message names the
    field and what was expected."""


class ExchangeUnavailable(Unavailable):
    """The exchange could not be read now (network, refused credentials, a server error, a page
    that stayed unreadable after retries); the message says which and why. The fetch is tried
    again later with backoff; nothing of it was applied."""


@dataclass(frozen=True, slots=True)
class Field:
    """One setting or credential: HMA's schema field descriptor."""

    name: str
    type: FieldType
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False  # never shown back, never logged

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices) or None,
        }


@dataclass(frozen=True, slots=True)
class Schema:
    fields: tuple[Field, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"fields": [f.as_json() for f in self.fields]}


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record, or a whole page, the plug-in could not read: where (``position``, e.g.
    ``page 3, record 17`` or ``page after checkpoint 1700000000``), why, and what it held (at
    most EXCERPT characters)."""

    position: str
    reason: str
    excerpt: str = ""


@dataclass(slots=True)
class Page:
    """What one request to the exchange gave."""

    records: list[Record] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    # Where to resume after this page (JSON-able); None: the checkpoint does not move.
    checkpoint: dict[str, Any] | None = None
    # The time the exchange's data is complete to once this page is applied (HMA's
    # checkpoint_ts), when the plug-in knows it.
    checkpoint_at: datetime | None = None
    # What was read but cannot be held (PhotoDNA, TMK, text...), by kind: counted, reported.
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str]  # lower-case names


class ExchangeHttp(Protocol):
    """HTTP to one exchange's base URL only, through the SSRF-safe fetcher
    (``hashguard.exchanges.http``). ``path`` is relative to the base URL, or an absolute URL
    that must lie under it (a page's ``next`` link); anything else is refused. Network
    failures and timeouts raise ExchangeUnavailable; every status is returned as an Answer."""

    base_url: str

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "",
    ) -> Answer: ...


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """Feedback owed to an exchange about one of its hashes."""

    signal: str
    value: str
    reference: str  # the exchange's own id for it ("" when it has none)
    feedback: str  # StopNCII's words: Blocked, NotBlocked, PendingReview
    tags: tuple[str, ...] = ()


class ExchangeApi(Protocol):
    """An exchange plug-in (a class; see ``hashguard.exchanges.registry``)."""

    name: ClassVar[str]  # "ncmec", "stopncii", "fb_threatexchange", "hashguard"
    title: ClassVar[str]  # for people: "NCMEC hash sharing"
    category: ClassVar[Category]  # the category of the list an exchange of this kind fills
    config_schema: ClassVar[Schema]  # besides base_url, which every exchange has
    credentials_schema: ClassVar[Schema | None]
    default_base_url: ClassVar[str]  # "" when there is none
    supports_feedback: ClassVar[bool]
    # True for a plug-in that reaches no host (the sample exchange): an exchange of it needs
    # no base URL. Every other plug-in declares False.
    local: ClassVar[bool]

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The settings with defaults filled in; raises ExchangeConfigError naming the field."""
        ...

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """Raises ExchangeConfigError naming the field (never echoing a secret's value)."""
        ...

    def __init__(
        self,
        config: Mapping[str, Any],
        credentials: Mapping[str, Any] | None,
        http: ExchangeHttp,
    ) -> None: ...

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        """The pages after ``checkpoint`` (None: from the beginning), in order, until the
        exchange has nothing newer. Raises ExchangeUnavailable (nothing of the fetch applied,
        the checkpoint kept); a record it cannot read is a Quarantined in its page, never an
        exception."""
        ...

    def send_feedback(self, item: FeedbackItem) -> None:
        """Tell the exchange (supports_feedback only). Raises ExchangeUnavailable when it was
        not taken."""
        ...
