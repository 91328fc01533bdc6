"""NCMEC hash sharing (API v2): members' entries, their updates and deletions, fetched by time
window; feedback on an entry's fingerprint sent back.

``GET /v2/entries?from=&to=`` (UTC) answers the entries changed in that window, a page at a time
(``paging/next``, a link under the base URL). NCMEC does not answer a window's entries in time
order, so the time the list is complete to moves only once a whole window is read; within a
window each page's checkpoint keeps the ``next`` link, so a fetch cut short resumes where it
stopped (NCMEC asks that such links are not kept long: one older than 12 hours starts its window
again, which is harmless, as entries restate their member's record). Windows adapt to the data:
one whose first page says it holds more than ``MAX_WINDOW_ENTRIES`` (100,000) is cut to a
quarter before anything of it is applied; a window that held little doubles the next.

Entries become list records exactly as ``hashguard lists import --format ncmec`` makes them
(``hashguard.lists.formats.ncmec``); an entry that cannot be read is quarantined with its page
and position, and the rest of the page is applied. A page that is not an entries document at all
is asked for again a few times, then the fetch stops (ExchangeUnavailable naming the page):
NCMEC's pages cannot be skipped safely, since the window's checkpoint would pass over entries
never read.
"""

import base64
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from hashguard.exchanges.api import (
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
from hashguard.exchanges.fields import MAX_NUMBER, check_start
from hashguard.exchanges.registry import register
from hashguard.lists.formats import ncmec as entries
from hashguard.lists.model import Category

# NCMEC's databases (pytx's environments); the test ones mirror them for integration.
ENVIRONMENTS: Final = {
    "Industry": "https://report.cybertip.org/hashsharing",
    "Industry_Exploitative": "https://report.cybertip.org/exploitative-hashsharing",
    "LawEnforcement": "https://lesp.ncmec.org/csam-hashsharing",
    "NGO": "https://hashsharing.ncmec.org/npo",
    "Exploitative": "https://hashsharing.ncmec.org/exploitative",
    "NGO_Generative_AI": "https://hashsharing.ncmec.org/generative-ai-csam",
    "NGO_Generative_AI_Exploitative": "https://hashsharing.ncmec.org/generative-ai-exploitative",
    "test_Industry": "https://exttest.cybertip.org/hashsharing",
    "test_Industry_Exploitative": "https://exttest.cybertip.org/exploitative-hashsharing",
    "test_LawEnforcement": "https://betalesp.ncmec.org/csam-hashsharing",
    "test_NGO": "https://hashsharing-test.ncmec.org/npo",
    "test_Exploitative": "https://hashsharing-test.ncmec.org/exploitative",
    "test_NGO_Generative_AI": "https://hashsharing-test.ncmec.org/generative-ai-csam",
    "test_NGO_Generative_AI_Exploitative": (
        "https://hashsharing-test.ncmec.org/generative-ai-exploitative"
    ),
}
# The fingerprint type NCMEC names in feedback URLs, by list signal.
FINGERPRINT_TYPES: Final = {"md5": "MD5", "sha1": "SHA1", "pdq": "PDQ"}
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
SMALL_WINDOW: Final = 2_000  # a window with fewer entries doubles the next one
NEXT_LINK_LIFE: Final = timedelta(hours=12)  # NCMEC: paging links are not for keeping
SETTLE: Final = timedelta(seconds=5)  # the newest seconds may still be written at NCMEC


@register
class NcmecExchange:
    """NCMEC's hash sharing API as an exchange (an ``ExchangeApi``)."""

    name: ClassVar[str] = "ncmec"
    title: ClassVar[str] = "NCMEC hash sharing"
    category: ClassVar[Category] = Category.KNOWN_CSAM
    config_schema: ClassVar[Schema] = Schema(
        (
            Field(
                "environment",
                "string",
                default="Industry",
                help="which NCMEC database to read (sets base_url unless base_url is given)",
                choices=tuple(ENVIRONMENTS),
            ),
            Field(
                "only_esp_ids",
                "list",
                default=[],
                help="take only entries of these members (ESP ids); empty: every member",
            ),
            Field(
                "start_time",
                "string",
                default="",
                help="the first fetch takes entries changed since this time (ISO 8601, UTC, "
                "or Unix seconds); empty: all",
            ),
            Field(
                "negative_reason",
                "string",
                default="",
                help="the reason (name or GUID) sent with negative feedback when NCMEC offers "
                "more than one",
            ),
        )
    )
    credentials_schema: ClassVar[Schema | None] = Schema(
        (
            Field("username", "string", required=True, help="NCMEC hash sharing user name"),
            Field("password", "string", required=True, secret=True, help="its password"),
        )
    )
    default_base_url: ClassVar[str] = ENVIRONMENTS["Industry"]
    local: ClassVar[bool] = False
    supports_feedback: ClassVar[bool] = True
    RETRY_PAUSES: ClassVar[tuple[float, ...]] = (0.25, 1.0)  # a page is tried 3 times
    MAX_WINDOW_ENTRIES: ClassVar[int] = 100_000  # a bigger window is cut before it is read

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The settings with defaults filled in (``base_url`` from ``environment`` when not
        given); raises ExchangeConfigError naming the field."""
        unknown = set(config) - {f.name for f in cls.config_schema.fields} - {"base_url"}
        if unknown:
            raise ExchangeConfigError(
                f"ncmec: unknown setting(s) {', '.join(sorted(unknown))}; expected "
                f"{', '.join(f.name for f in cls.config_schema.fields)} or base_url"
            )
        environment = config.get("environment") or "Industry"
        if environment not in ENVIRONMENTS:
            raise ExchangeConfigError(
                f"ncmec: environment {str(environment)[:60]!r}; expected one of "
                f"{', '.join(ENVIRONMENTS)}"
            )
        base_url = config.get("base_url") or ENVIRONMENTS[environment]
        if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
            raise ExchangeConfigError("ncmec: base_url must be an http(s) URL")
        members = config.get("only_esp_ids") or []
        if not isinstance(members, list | tuple):
            raise ExchangeConfigError("ncmec: only_esp_ids must be a list of member ids")
        ids: list[int] = []
        for member in members:
            try:
                if isinstance(member, bool) or not 0 <= int(member) <= MAX_NUMBER:
                    raise ValueError
                ids.append(int(member))
            except (TypeError, ValueError, OverflowError):
                raise ExchangeConfigError(
                    f"ncmec: only_esp_ids: {str(member)[:40]!r} is not a member id (a number)"
                ) from None
        start_time = config.get("start_time") or ""
        _start(start_time)
        reason = config.get("negative_reason") or ""
        if not isinstance(reason, str):
            raise ExchangeConfigError("ncmec: negative_reason must be a string")
        return {
            "base_url": base_url.rstrip("/"),
            "environment": environment,
            "only_esp_ids": sorted(set(ids)),
            "start_time": str(start_time),
            "negative_reason": reason,
        }

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """``username`` and ``password``, both non-empty strings; raises ExchangeConfigError
        naming the field (never its value)."""
        checked = {}
        for name in ("username", "password"):
            value = credentials.get(name)
            if not isinstance(value, str) or not value:
                raise ExchangeConfigError(f"ncmec: credentials need a non-empty {name}")
            checked[name] = value
        if ":" in checked["username"]:
            raise ExchangeConfigError("ncmec: the username cannot hold ':' (HTTP Basic)")
        return checked

    @classmethod
    def check_checkpoint(cls, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """A checkpoint an operator sets (``{"from": unix seconds}``, at most now; ``window``,
        the seconds a request asks for, optional). Raises ExchangeConfigError."""
        checked: dict[str, Any] = {}
        for key, least, most in (("from", 0, int(utc_now().timestamp())), ("window", 1, None)):
            value = checkpoint.get(key)
            if value is None and key == "window":
                continue
            if (not isinstance(value, int) or isinstance(value, bool) or value < least
                    or (most is not None and value > most)):  # fmt: skip
                checked = {}
                break
            checked[key] = value
        if not checked or not set(checkpoint) <= {"from", "window"}:
            raise ExchangeConfigError(
                'ncmec: checkpoint: expected {"from": unix seconds from 0 to now} (entries '
                'changed since then are fetched again; "window": seconds per request, '
                "optional)"
            )
        return checked

    def __init__(
        self,
        config: Mapping[str, Any],
        credentials: Mapping[str, Any] | None,
        http: ExchangeHttp,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.config = self.check_config(config)
        login = self.check_credentials(credentials or {})
        token = base64.b64encode(f"{login['username']}:{login['password']}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/xml"}
        self.http = http
        self.clock = clock
        self._members = (
            frozenset(str(m) for m in self.config["only_esp_ids"])
            if self.config["only_esp_ids"]
            else None
        )
        self._reasons: dict[str, dict[str, str]] = {}  # fingerprint type -> guid -> name

    # --- fetching ---------------------------------------------------------------------------

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        """The pages of the windows after ``checkpoint`` up to a few seconds ago. Raises
        ExchangeUnavailable (refused credentials, an error status, a page still unreadable after
        retries); nothing of the page that failed is yielded."""
        now = self.clock()
        end = int((now - SETTLE).timestamp())
        start = int(checkpoint["from"]) if checkpoint else _start(self.config["start_time"])
        window = int(checkpoint.get("window", 0)) if checkpoint else 0
        window = window if window > 0 else max(1, end - start)
        resume: tuple[int, str] | None = None
        if checkpoint and checkpoint.get("next"):
            kept = datetime.fromtimestamp(int(checkpoint.get("next_at", 0)), UTC)
            if now - kept <= NEXT_LINK_LIFE:
                resume = int(checkpoint["to"]), str(checkpoint["next"])
        while start < end:
            if resume is not None:
                window_end, link = resume
                resume = None
                resumed = True
            else:
                window_end = min(end, start + window)
                link = "/v2/entries?" + urlencode(
                    {"from": _format(start), "to": _format(window_end)}
                )
                resumed = False
            read = 0
            first = True
            while link:
                page, parsed = self._page(link)
                if first and not resumed and window_end - start > 1 and parsed.next:
                    estimate = _estimate(parsed)
                    if estimate is not None and estimate > self.MAX_WINDOW_ENTRIES:
                        window = max(1, min(window, window_end - start) // 4)
                        break  # nothing of this window applied: it is read again, smaller
                first = False
                read += parsed.entries
                if parsed.next:
                    page.checkpoint = {
                        "from": start,
                        "to": window_end,
                        "next": parsed.next,
                        "next_at": int(self.clock().timestamp()),
                        "window": window,
                    }
                    page.checkpoint_at = datetime.fromtimestamp(start, UTC)
                else:
                    if read < SMALL_WINDOW:
                        window *= 2
                    elif read > self.MAX_WINDOW_ENTRIES // 2:
                        window = max(1, window // 2)
                    page.checkpoint = {"from": window_end, "window": window}
                    page.checkpoint_at = datetime.fromtimestamp(window_end, UTC)
                    start = window_end
                yield page
                link = parsed.next

    def _page(self, link: str) -> tuple[Page, entries.EntriesPage]:
        """One page of entries (``link``: a path with its query under the base URL), tried
        again while it is unreadable or the server failed."""
        # A next link is a path from the base URL; exchanges.http refuses one leading elsewhere.
        path = link
        problem = ""
        for pause in (*self.RETRY_PAUSES, None):
            answer = self._get(path)
            if answer.status == 200:
                page = Page()
                try:
                    parsed = entries.parse_page(answer.body, page.skipped, self._members)
                except entries.MalformedPage as error:
                    problem = f"not an NCMEC entries page ({error})"
                else:
                    page.records = parsed.records
                    page.quarantined = [
                        Quarantined(f"GET {path}, {bad.where}", bad.reason, bad.excerpt)
                        for bad in parsed.bad
                    ]
                    return page, parsed
            elif answer.status in (401, 403):
                raise _refused(answer, f"GET {path}")
            elif answer.status == 429 or answer.status >= 500:
                problem = f"HTTP {answer.status}"
            else:
                raise ExchangeUnavailable(
                    f"ncmec: GET {path} answered HTTP {answer.status}: {_said(answer)}"
                )
            if pause is not None:
                time.sleep(pause)
        raise ExchangeUnavailable(
            f"ncmec: the page GET {path} stayed unreadable after "
            f"{len(self.RETRY_PAUSES) + 1} tries: {problem}; NCMEC's pages cannot be skipped "
            "(its window's entries would be passed over), so the fetch stops here and resumes "
            "from this page"
        )

    def _get(self, path: str) -> Answer:
        return self.http.request("GET", path, headers=self._headers)

    # --- feedback ---------------------------------------------------------------------------

    def send_feedback(self, item: FeedbackItem) -> None:
        """PUT NCMEC's feedback on the fingerprint of the entry ``item.reference`` names
        (``ncmec:MEMBER:image|video:ID``): affirmative for Blocked, negative with a reason for
        NotBlocked. Items NCMEC has no place for (no NCMEC reference, a signal NCMEC has no
        fingerprint type for, PendingReview: not a verdict) are not sent. Raises
        ExchangeUnavailable when NCMEC did not take it."""
        member, _, entry_id = _parse_reference(item.reference)
        kind = FINGERPRINT_TYPES.get(item.signal)
        if not member or kind is None or item.feedback not in ("Blocked", "NotBlocked"):
            return
        namespace = entries.NAMESPACE
        if item.feedback == "Blocked":
            verdict = "<affirmative/>"
        else:
            guid = self._negative_reason(kind, item.tags)
            verdict = f"<negative><reasonIds><guid>{escape(guid)}</guid></reasonIds></negative>"
        body = f'<feedbackSubmission xmlns="{namespace}">{verdict}</feedbackSubmission>'
        path = f"/v2/entries/{quote(member, safe='')}/{quote(entry_id, safe='')}/{kind}/feedback"
        answer = self.http.request(
            "PUT",
            path,
            headers=self._headers,
            body=body.encode(),
            content_type="application/xml; charset=utf-8",
        )
        if answer.status in (401, 403):
            raise _refused(answer, f"PUT {path}")
        if not 200 <= answer.status < 300:
            raise ExchangeUnavailable(
                f"ncmec: PUT {path} answered HTTP {answer.status}: {_said(answer)}"
            )

    def _negative_reason(self, kind: str, tags: tuple[str, ...]) -> str:
        """The GUID of the reason for negative feedback on ``kind``: the one the item's tags or
        the ``negative_reason`` setting name, or NCMEC's only one."""
        reasons = self._reasons.get(kind)
        if reasons is None:
            path = f"/v2/feedback/{kind}/reasons"
            answer = self._get(path)
            if answer.status in (401, 403):
                raise _refused(answer, f"GET {path}")
            if answer.status != 200:
                raise ExchangeUnavailable(
                    f"ncmec: GET {path} answered HTTP {answer.status}: {_said(answer)}"
                )
            reasons = self._reasons[kind] = _parse_reasons(answer.body, path)
        wanted = [*tags, self.config["negative_reason"]]
        for name in wanted:
            for guid, reason in reasons.items():
                if name and name.casefold() in (guid.casefold(), reason.casefold()):
                    return guid
        if len(reasons) == 1:
            return next(iter(reasons))
        offered = ", ".join(sorted(reasons.values())) or "none"
        raise ExchangeUnavailable(
            f"ncmec: negative feedback on {kind} needs a reason; NCMEC offers: {offered} "
            "(set the exchange's negative_reason)"
        )


def _start(value: Any) -> int:
    """A start time setting as Unix seconds, no later than a day from now; raises
    ExchangeConfigError."""
    if value in ("", None):
        return 0
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        # beyond 12 digits (the year 33658) it is no time to start from: not even read
        seconds = int(text) if len(text) <= 12 else 10**12
        return check_start("ncmec: start_time", seconds, text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExchangeConfigError(
            f"ncmec: start_time {text[:40]!r}; expected ISO 8601 (e.g. 2024-01-01T00:00:00Z) "
            "or Unix seconds"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return check_start("ncmec: start_time", max(0, int(moment.timestamp())), text)


def _format(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(TIME_FORMAT)


def _estimate(parsed: entries.EntriesPage) -> int | None:
    """The entries of a window, from its first page's ``next`` link (``start``, ``max``)."""
    query = parse_qs(urlsplit(parsed.next).query)
    try:
        return int(query["max"][0]) - int(query["start"][0]) + 1 + parsed.entries
    except (KeyError, IndexError, ValueError):
        return None


def _parse_reference(reference: str) -> tuple[str, str, str]:
    """(member, media, entry id) of an NCMEC source reference, or empty strings."""
    scheme, _, rest = reference.partition(":")
    member, _, rest = rest.partition(":")
    media, _, entry_id = rest.partition(":")
    if scheme != "ncmec" or not member or media not in ("image", "video") or not entry_id:
        return "", "", ""
    return member, media, entry_id


def _parse_reasons(body: bytes, path: str) -> dict[str, str]:
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as error:
        raise ExchangeUnavailable(f"ncmec: GET {path}: not XML ({error})") from None
    return {
        reason.get("guid", ""): reason.get("name", "")
        for reason in root.iter()
        if reason.tag.rpartition("}")[2] == "reason" and reason.get("guid")
    }


def _refused(answer: Answer, request: str) -> ExchangeUnavailable:
    return ExchangeUnavailable(
        f"ncmec: NCMEC refused the credentials (HTTP {answer.status}) at {request}: check the "
        "exchange's username and password"
    )


def _said(answer: Answer) -> str:
    """The start of an error answer's body, on one line."""
    text = answer.body[:200].decode("utf-8", "replace")
    return " ".join(text.split()) or "(no body)"
