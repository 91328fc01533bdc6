"""StopNCII's hash exchange (``https://api.stopncii.org/v1``): hashes people submitted of their
own intimate images, fetched into an ncii list, and feedback on matches sent back.

``GET FetchHashes?startTimestamp=S&pageSize=P`` answers the hash records last modified since
S, a page at a time (``nextPageToken`` while ``hasMoreRecords``); ``nextSetTimestamp`` is where
the next fetch starts. Records are snapshots (a hash's latest status replaces the earlier one)
and are read by ``lists.formats.stopncii.record_of``: Withdrawn and Deleted are tombstones (HMA
keeps them matching), an unknown status never activates a hash, signal types lists cannot hold
are counted as skipped, and a record that is not one is quarantined without stopping the page.

A page that is not what FetchHashes answers (ThreatExchange issue #2004: HTTP 200 with broken
JSON stalled HMA's fetch for 40+ hours) is asked for ``page_attempts`` times. If it stays
unreadable, the fetch reads again from the last page's time without the page token (nothing
lost when that reads), else looks for the nearest start time after it whose page reads (a step of
``skip_seconds``, doubled until a page reads, then halved back towards the broken one) and goes
on from there: the records last modified in between are not read. The page is quarantined
naming that span and the checkpoint that fetches it again.

The checkpoint never passes the time the fetch began (``CLOCK_SKEW`` allowed for): a
``nextSetTimestamp`` later than that is taken as that time (what was read is read again next
time, harmlessly: records are snapshots) and named in a quarantined note, and no start time
after it is probed; a checkpoint in the future would pass every record modified until then.

Each request carries the endpoint's function key (``x-functions-key``) and the subscription
key (``Ocp-Apim-Subscription-Key``); neither appears in any message.
"""

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from hashguard.errors import Invalid
from hashguard.exchanges.api import (
    CLOCK_SKEW,
    EXCERPT,
    Answer,
    Clock,
    ExchangeConfigError,
    ExchangeHttp,
    ExchangeUnavailable,
    FeedbackItem,
    Field,
    Page,
    Quarantined,
    Schema,
    utc_now,
)
from hashguard.exchanges.fields import check_start
from hashguard.exchanges.registry import register
from hashguard.lists.formats.stopncii import SIGNALS, record_of
from hashguard.lists.model import Category
from hashguard.lists.records import InvalidRecord, Record

FETCH: Final = "FetchHashes"
FEEDBACK: Final = "SubmitFeedback"
FEEDBACK_VALUES: Final = ("Blocked", "NotBlocked", "PendingReview")
# The start of a first fetch as pytx has it (the API may read 0 as "not given").
FIRST_START: Final = 10
_PROBES: Final = 64  # start times tried past an unreadable page before giving up
_CASE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SETTINGS: Final = {
    # name: (default, smallest, largest)
    "page_size": (800, 1, 10_000),
    "start_timestamp": (FIRST_START, 0, 2**40),
    "page_attempts": (3, 1, 10),
    "skip_seconds": (600, 1, 86_400 * 30),
}


class _Unreadable(Invalid):
    """A FetchHashes answer that is not a page (what was wrong, and the body)."""

    def __init__(self, problem: str, body: bytes) -> None:
        super().__init__(problem)
        self.problem = problem
        self.body = body


class _TokenRefused(Exception):
    """FetchHashes refused a page token (tokens do not last)."""


@dataclass(frozen=True, slots=True)
class _Envelope:
    records: list[Any]
    next_set: int
    more: bool
    token: str | None


@register
class StopNcii:
    """The StopNCII hash exchange (an ``api.ExchangeApi``)."""

    name: ClassVar[str] = "stopncii"
    title: ClassVar[str] = "StopNCII hash exchange"
    category: ClassVar[Category] = Category.NCII
    config_schema: ClassVar[Schema] = Schema(
        (
            Field("page_size", "number", default=800, help="records asked for per page (1-10000)"),
            Field(
                "start_timestamp",
                "number",
                default=FIRST_START,
                help="unix time the first fetch starts from (records last modified since)",
            ),
            Field(
                "page_attempts",
                "number",
                default=3,
                help="times an unreadable page is asked for before it is quarantined (1-10)",
            ),
            Field(
                "skip_seconds",
                "number",
                default=600,
                help="first step past a page that stays unreadable, in seconds",
            ),
        )
    )
    credentials_schema: ClassVar[Schema | None] = Schema(
        (
            Field(
                "fetch_function_key",
                "string",
                required=True,
                secret=True,
                help="the FetchHashes function key (x-functions-key)",
            ),
            Field(
                "subscription_key",
                "string",
                required=True,
                secret=True,
                help="the API Management subscription key (Ocp-Apim-Subscription-Key)",
            ),
            Field(
                "feedback_function_key",
                "string",
                secret=True,
                help="the SubmitFeedback function key (default: the FetchHashes key)",
            ),
        )
    )
    default_base_url: ClassVar[str] = "https://api.stopncii.org/v1"
    supports_feedback: ClassVar[bool] = True
    local: ClassVar[bool] = False

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The settings with defaults filled in (``base_url`` passed through); raises
        ExchangeConfigError naming the field."""
        unknown = sorted(set(config) - set(_SETTINGS) - {"base_url"})
        if unknown:
            raise ExchangeConfigError(
                f"{unknown[0][:60]}: not a StopNCII setting (settings: {', '.join(_SETTINGS)})"
            )
        checked: dict[str, Any] = {k: v for k, v in config.items() if k == "base_url"}
        for name, (default, least, most) in _SETTINGS.items():
            value = config.get(name, default)
            if value is None:
                value = default
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ExchangeConfigError(f"{name}: expected a whole number, not {value!r:.40}")
            if not least <= value <= most:
                raise ExchangeConfigError(f"{name}: {value} is not from {least} to {most}")
            if name == "start_timestamp":
                check_start(name, value)
            checked[name] = value
        return checked

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """The credentials (an empty feedback key left out); raises ExchangeConfigError naming
        the field, never its value."""
        fields = {f.name: f for f in (cls.credentials_schema or Schema()).fields}
        unknown = sorted(set(credentials) - set(fields))
        if unknown:
            raise ExchangeConfigError(
                f"credentials: {unknown[0][:60]!r} is not a StopNCII credential "
                f"(credentials: {', '.join(fields)})"
            )
        checked: dict[str, Any] = {}
        for name, described in fields.items():
            value = credentials.get(name)
            if value is None or value == "":
                if described.required:
                    raise ExchangeConfigError(f"credentials: {name} is required ({described.help})")
                continue
            if not isinstance(value, str) or not value.strip() or not value.isprintable():
                raise ExchangeConfigError(f"credentials: {name} must be a non-empty line of text")
            checked[name] = value.strip()
        return checked

    @classmethod
    def check_checkpoint(cls, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """A checkpoint an operator sets (``{"nextSetTimestamp": unix time}``, at most now):
        as ``fetch`` reads it. Raises ExchangeConfigError saying what is expected."""
        if set(checkpoint) != {"nextSetTimestamp"}:
            raise ExchangeConfigError(
                'checkpoint: expected {"nextSetTimestamp": unix time} (the time records are '
                "fetched again from), not "
                f"{json.dumps(dict(checkpoint), default=str)[:120]}"
            )
        at, _, _ = _resume(checkpoint, FIRST_START)
        if not 0 <= at <= int(utc_now().timestamp()) + CLOCK_SKEW:
            raise ExchangeConfigError(
                f"checkpoint: nextSetTimestamp {at} is not a unix time from 0 to now"
            )
        return {"nextSetTimestamp": at}

    def __init__(
        self,
        config: Mapping[str, Any],
        credentials: Mapping[str, Any] | None,
        http: ExchangeHttp,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.config = self.check_config(config)
        self.credentials = self.check_credentials(credentials or {})
        self.http = http
        self.clock = clock
        self._began = int(clock().timestamp())  # set again by each fetch

    # --- fetching ------------------------------------------------------------------------------

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        """The pages after ``checkpoint`` (``{"nextSetTimestamp": T}``, with
        ``startTimestamp`` and ``nextPageToken`` while a fetch was between pages; None: from
        ``start_timestamp``). Raises ExchangeUnavailable when StopNCII cannot be read (the
        network, refused keys, an error status, or no readable page at all after the
        checkpoint); a record it cannot read, or a page that stays unreadable, is
        quarantined instead."""
        start, token, resume_at = _resume(checkpoint, self.config["start_timestamp"])
        self._began = int(self.clock().timestamp())
        number = 0
        tokens: set[str] = set()
        realigned: int | None = None  # the time a broken page was last read again from
        while True:
            number += 1
            try:
                try:
                    envelope = self._page_with_attempts(start, token)
                except _TokenRefused:
                    # A token kept in a checkpoint may have expired: read again from its time.
                    start, token = resume_at, None
                    envelope = self._page_with_attempts(start, None)
            except _Unreadable as unreadable:
                realign = token is not None and resume_at != realigned
                good, envelope, skip = self._past(
                    number, start, token, resume_at, unreadable, realign
                )
                if skip is None:  # read again from the last page's time: nothing lost
                    realigned = good
                else:
                    yield skip
                    number += 1
                start, token, resume_at = good, None, good
            yield self._read(number, start, envelope)
            next_set = min(envelope.next_set, self._began)
            if envelope.more and envelope.token and envelope.token not in tokens:
                tokens.add(envelope.token)
                token, resume_at = envelope.token, next_set
            elif envelope.more and next_set > start:
                # More, but no new token to ask for it with: go on from the page's time.
                start, token, resume_at = next_set, None, next_set
            else:
                return

    def _read(self, number: int, start: int, envelope: _Envelope) -> Page:
        """The page's records, its unreadable ones quarantined, and where to resume."""
        where = f"page {number} (startTimestamp {start})"
        records: list[Record] = []
        quarantined: list[Quarantined] = []
        skipped: Counter[str] = Counter()
        for index, item in enumerate(envelope.records, start=1):
            try:
                record = record_of(item, f"{where}, record {index}", skipped)
            except InvalidRecord as error:
                quarantined.append(
                    Quarantined(f"{where}, record {index}", str(error), _excerpt(item))
                )
                continue
            except Exception as error:  # whatever a record holds, it never fails its page
                quarantined.append(Quarantined(
                    f"{where}, record {index}",
                    f"{where}, record {index}: unreadable ({type(error).__name__}: {error})",
                    _excerpt(item),
                ))  # fmt: skip
                continue
            if record is not None:
                records.append(record)
        next_set = envelope.next_set
        if next_set > self._began + CLOCK_SKEW:
            quarantined.append(Quarantined(
                f"{where}: nextSetTimestamp {next_set}",
                f"StopNCII named a time after this fetch began ({self._began}, "
                f"{_moment(self._began):%Y-%m-%d %H:%M:%S} UTC) as where the next fetch starts; "
                f"the checkpoint stays at {self._began} (records from then on are read again)",
            ))  # fmt: skip
            next_set = self._began
        checkpoint: dict[str, Any] = {"nextSetTimestamp": next_set}
        if envelope.more and envelope.token:
            checkpoint |= {"startTimestamp": min(start, self._began),
                           "nextPageToken": envelope.token}  # fmt: skip
        return Page(records, quarantined, checkpoint, _moment(next_set), skipped)

    def _page_with_attempts(self, start: int, token: str | None) -> _Envelope:
        """The page at ``start`` (after ``token``), asked for up to ``page_attempts`` times
        while its body is unreadable. Raises _Unreadable (the last attempt's), _TokenRefused,
        ExchangeUnavailable."""
        attempts = self.config["page_attempts"]
        for attempt in range(1, attempts + 1):
            try:
                return self._page(start, token)
            except _Unreadable:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _page(self, start: int, token: str | None) -> _Envelope:
        params = {"startTimestamp": str(start), "pageSize": str(self.config["page_size"])}
        if token:
            params["nextPageToken"] = token
        answer = self.http.request("GET", FETCH, params=params, headers=self._keys(FETCH))
        if answer.status == 400 and token:
            raise _TokenRefused()
        self._check(answer, FETCH)
        return _envelope(answer.body)

    def _past(
        self,
        number: int,
        start: int,
        token: str | None,
        resume_at: int,
        unreadable: _Unreadable,
        realign: bool,
    ) -> tuple[int, _Envelope, Page | None]:
        """Where to go on after a page that stays unreadable: the start time, its page, and a
        page quarantining the records not read (None when none were). With ``realign``, the
        last page's time is tried first, without the token; then the nearest later start time
        whose page reads. Raises ExchangeUnavailable when no later start time reads."""
        # Within a run of pages, records were read up to the last page's time: start there.
        lost_from = resume_at if token else start
        if realign and (again := self._probe(lost_from)) is not None:
            return lost_from, again, None
        # Doubling steps until a page reads, then halving back towards the broken one; never
        # past the time the fetch began (the checkpoint would skip what is modified until then).
        found: _Envelope | None = None
        good = bad = lost_from
        step, limit = self.config["skip_seconds"], self._began
        for _ in range(_PROBES):
            if found is not None and good - bad <= 1:
                break
            if found is None and bad >= limit:
                break
            at = (bad + good) // 2 if found is not None else min(bad + step, limit)
            envelope = self._probe(at)
            if envelope is not None:
                good, found = at, envelope
            else:
                bad, step = at, step * 2
        if found is None:
            raise ExchangeUnavailable(
                f"StopNCII {FETCH}: no page from startTimestamp {lost_from} on could be read "
                f"({unreadable.problem}); the checkpoint stays there"
            )
        after = " after a page token" if token else ""
        stayed = (
            f"the page stayed unreadable after {self.config['page_attempts']} attempts "
            f"({unreadable.problem})"
        )
        position = (
            f"page {number} (startTimestamp {start}{after}): records last modified from "
            f"{lost_from} ({_moment(lost_from):%Y-%m-%d %H:%M:%S} UTC) to before {good} "
            f"({_moment(good):%Y-%m-%d %H:%M:%S} UTC)"
        )
        reason = (
            f"{stayed}; those records were not read, the fetch went on from "
            f"startTimestamp {good}. To fetch them again, set the checkpoint to "
            f'{{"nextSetTimestamp": {lost_from}}}'
        )
        excerpt = _CASE.sub("[case]", unreadable.body[:EXCERPT].decode("utf-8", "replace"))
        skip = Page(quarantined=[Quarantined(position, reason, excerpt)],
                    checkpoint={"nextSetTimestamp": good})  # fmt: skip
        return good, found, skip

    def _probe(self, start: int) -> _Envelope | None:
        """The page at ``start`` (no token, asked once), or None when it is unreadable."""
        try:
            return self._page(start, None)
        except _Unreadable:
            return None

    # --- feedback ------------------------------------------------------------------------------

    def send_feedback(self, item: FeedbackItem) -> None:
        """POST SubmitFeedback for one hash: ``{"count": 1, "hashFeedbacks": [{"hashValue",
        "feedbackValue", "tags"}]}``. Raises ExchangeConfigError for feedback StopNCII does
        not take, ExchangeUnavailable when it was not taken."""
        if item.feedback not in FEEDBACK_VALUES:
            raise ExchangeConfigError(
                f"feedback: {item.feedback[:40]!r} is not one of {', '.join(FEEDBACK_VALUES)}"
            )
        if item.signal not in SIGNALS.values():
            raise ExchangeConfigError(
                f"feedback: StopNCII holds pdq and md5 hashes, not {item.signal[:40]!r}"
            )
        feedback = {"hashValue": item.value, "feedbackValue": item.feedback,
                    "tags": list(item.tags)}  # fmt: skip
        body = json.dumps({"count": 1, "hashFeedbacks": [feedback]}).encode()
        answer = self.http.request(
            "POST", FEEDBACK, headers=self._keys(FEEDBACK), body=body,
            content_type="application/json",
        )  # fmt: skip
        self._check(answer, FEEDBACK)

    # --- both ----------------------------------------------------------------------------------

    def _keys(self, endpoint: str) -> dict[str, str]:
        function_key = self.credentials["fetch_function_key"]
        if endpoint == FEEDBACK:
            function_key = self.credentials.get("feedback_function_key", function_key)
        return {
            "x-functions-key": function_key,
            "Ocp-Apim-Subscription-Key": self.credentials["subscription_key"],
        }

    def _check(self, answer: Answer, endpoint: str) -> None:
        """Raises ExchangeUnavailable unless ``answer`` is a success."""
        if 200 <= answer.status < 300:
            return
        said = self._said(answer)
        if answer.status in (401, 403):
            key = "feedback_function_key" if endpoint == FEEDBACK else "fetch_function_key"
            raise ExchangeUnavailable(
                f"StopNCII refused the keys on {endpoint} ({answer.status}): check the "
                f"credentials {key} and subscription_key{said}"
            )
        raise ExchangeUnavailable(f"StopNCII {endpoint} answered {answer.status}{said}")

    def _said(self, answer: Answer) -> str:
        """What the server said (its ``message``, or the start of its body), secrets left
        out; "" when nothing."""
        try:
            document = json.loads(answer.body)
            text = str(document.get("message", "")) if isinstance(document, dict) else ""
        except (ValueError, RecursionError):
            text = answer.body[:200].decode("utf-8", "replace")
        for secret in self.credentials.values():
            text = text.replace(secret, "[a credential]")
        text = " ".join(text.split())[:200]
        return f": {text}" if text else ""


def _resume(checkpoint: Mapping[str, Any] | None, first: int) -> tuple[int, str | None, int]:
    """(start, page token, the time to fall back to) from a checkpoint. Raises
    ExchangeConfigError for one this plug-in did not write."""
    if not checkpoint:
        return first, None, first
    try:
        at = checkpoint["nextSetTimestamp"]
        start = checkpoint.get("startTimestamp", at)
        token = checkpoint.get("nextPageToken")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (at, start)):
            raise TypeError
        if token is not None and not isinstance(token, str):
            raise TypeError
    except (KeyError, TypeError, AttributeError):
        raise ExchangeConfigError(
            'checkpoint: expected {"nextSetTimestamp": unix time} (with "startTimestamp" and '
            f'"nextPageToken" between pages), not {json.dumps(checkpoint, default=str)[:120]}'
        ) from None
    return (start, token, at) if token else (at, None, at)


def _envelope(body: bytes) -> _Envelope:
    """A FetchHashes page's parts; raises _Unreadable saying what is wrong."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise _Unreadable(f"not JSON: {error}", body) from None
    if not isinstance(document, dict):
        raise _Unreadable("not a FetchHashes page (a JSON object)", body)
    records = document.get("hashRecords", [])
    next_set = document.get("nextSetTimestamp")
    more = document.get("hasMoreRecords")
    token = document.get("nextPageToken")
    if not isinstance(records, list):
        raise _Unreadable("hashRecords is not a list", body)
    if not isinstance(next_set, int) or isinstance(next_set, bool):
        raise _Unreadable("nextSetTimestamp is not a unix time", body)
    if not isinstance(more, bool):
        raise _Unreadable("hasMoreRecords is not true or false", body)
    if token is not None and not isinstance(token, str):
        raise _Unreadable("nextPageToken is not a string", body)
    return _Envelope(records, next_set, more, token or None)


def _excerpt(item: Any) -> str:
    """A quarantined record as kept: its JSON, case numbers left out (the list needs the
    hash, not the victim's case)."""
    try:
        text = json.dumps(item, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(item)
    return _CASE.sub("[case]", text)[:EXCERPT]


def _moment(unix: int) -> datetime:
    try:
        return datetime.fromtimestamp(unix, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC)
