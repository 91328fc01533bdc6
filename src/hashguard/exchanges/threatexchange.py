"""Meta's ThreatExchange: a privacy group's threat updates (Graph API
``GET /{privacy_group}/threat_updates``), fetched from the last update time seen.

Each update names an indicator (``id``, ``indicator``, ``type``, ``last_updated``, ``tags``);
``should_delete`` makes it a tombstone. Updates become list records as pytx's files do
(``hashguard.lists.formats.pytx``): a hash of a type hashguard matches is a submission labelled
with the update's tags, from the privacy group, under the reference
``fb_threatexchange:GROUP:ID``; a tombstone withdraws that reference (the value is deleted when
no other source holds it). Other indicator types (URLs, text, TMK...) are counted in
``skipped``. An update that cannot be read is quarantined with its page and position, and the
rest of the page applies.

Pages follow ``paging.next`` (under the base URL only). The checkpoint is the newest
``last_updated`` applied; ThreatExchange's ``start_time`` includes it, so an update sharing
that second with the next page is read again rather than lost. An update dated after the fetch
began (beyond ``CLOCK_SKEW``) is quarantined: taken as the checkpoint, it would make every later
fetch ask for updates from the future and find none, tombstones included. A page that is not
a threat updates page is asked for again a few times, then the fetch stops (ExchangeUnavailable
naming it): pages are a cursor and cannot be skipped. The access token travels in a header,
never in a message; ThreatExchange keeps deletions for 90 days, so an exchange not fetched for
longer must be fetched again from the start.
"""

import json
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from hashguard.errors import Unsupported
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
from hashguard.exchanges.fields import MAX_NUMBER
from hashguard.exchanges.registry import register
from hashguard.lists.model import Category, Provenance, Source
from hashguard.lists.records import (
    InvalidRecord,
    Record,
    Submission,
    Withdrawal,
    bounded,
    canonical,
)

# ThreatExchange indicator types hashguard matches, and the list signal each becomes (pytx's
# video_md5 and video_sha256 are digests of the file's bytes, as hashguard's md5 and sha256).
TYPES: Final = {
    "HASH_PDQ": "pdq",
    "HASH_MD5": "md5",
    "HASH_VIDEO_MD5": "md5",
    "VIDEO_HASH_MD5": "md5",
    "HASH_SHA1": "sha1",
    "HASH_SHA256": "sha256",
    "HASH_VIDEO_SHA256": "sha256",
}
FIELDS: Final = "id,indicator,type,last_updated,should_delete,tags"
PAGE_SIZE: Final = 500
_TOKEN: Final = re.compile(r"[0-9]+\|[A-Za-z0-9_\-]+")
# Graph API error codes that mean the token, or its app's access to the group, was refused.
_REFUSED_CODES: Final = frozenset({10, 102, 190, 200})


class _BadUpdate(Exception):
    pass


@register
class ThreatExchangeExchange:
    """A ThreatExchange privacy group as an exchange (an ``ExchangeApi``)."""

    name: ClassVar[str] = "fb_threatexchange"
    title: ClassVar[str] = "Meta ThreatExchange"
    category: ClassVar[Category] = Category.KNOWN_CSAM
    config_schema: ClassVar[Schema] = Schema(
        (
            Field(
                "privacy_group",
                "number",
                required=True,
                help="ThreatPrivacyGroup ID for this collaboration",
            ),
        )
    )
    credentials_schema: ClassVar[Schema | None] = Schema(
        (
            Field(
                "api_token",
                "string",
                required=True,
                secret=True,
                help="the ThreatExchange app's access token, APP_ID|SECRET",
            ),
        )
    )
    default_base_url: ClassVar[str] = "https://graph.facebook.com/v21.0"
    local: ClassVar[bool] = False
    supports_feedback: ClassVar[bool] = False
    RETRY_PAUSES: ClassVar[tuple[float, ...]] = (0.25, 1.0)  # a page is tried 3 times

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """The settings with defaults filled in; raises ExchangeConfigError naming the field."""
        unknown = set(config) - {"privacy_group", "base_url"}
        if unknown:
            raise ExchangeConfigError(
                f"fb_threatexchange: unknown setting(s) {', '.join(sorted(unknown))}; expected "
                "privacy_group or base_url"
            )
        group = config.get("privacy_group")
        try:
            if isinstance(group, bool) or group is None or int(group) <= 0:
                raise ValueError
            if isinstance(group, float) and not group.is_integer():
                raise ValueError
            number = int(group)
            if number > MAX_NUMBER:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            shown = "missing" if group is None else repr(group)[:40]
            raise ExchangeConfigError(
                f"fb_threatexchange: privacy_group {shown}; expected the privacy group's id "
                f"(a whole number from 1 to {MAX_NUMBER})"
            ) from None
        base_url = config.get("base_url") or cls.default_base_url
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ExchangeConfigError("fb_threatexchange: base_url must be an http(s) URL")
        return {"base_url": base_url.rstrip("/"), "privacy_group": number}

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """``api_token``, APP_ID|SECRET; raises ExchangeConfigError (never echoing it)."""
        token = credentials.get("api_token")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token.strip()):
            raise ExchangeConfigError(
                "fb_threatexchange: api_token must be the app's access token, APP_ID|SECRET"
            )
        return {"api_token": token.strip()}

    @classmethod
    def check_checkpoint(cls, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """A checkpoint an operator sets (``{"update_time": unix seconds}``, at most now).
        Raises ExchangeConfigError saying what is expected."""
        moment = checkpoint.get("update_time")
        latest = int(utc_now().timestamp()) + CLOCK_SKEW
        if (set(checkpoint) != {"update_time"} or not isinstance(moment, int)
                or isinstance(moment, bool) or not 0 <= moment <= latest):  # fmt: skip
            raise ExchangeConfigError(
                'checkpoint: expected {"update_time": unix seconds from 0 to now} (updates are '
                f"fetched from that time on), not {json.dumps(dict(checkpoint), default=str)[:120]}"
            )
        return {"update_time": moment}

    def __init__(
        self,
        config: Mapping[str, Any],
        credentials: Mapping[str, Any] | None,
        http: ExchangeHttp,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.config = self.check_config(config)
        self.clock = clock
        self._token = self.check_credentials(credentials or {})["api_token"]
        self._headers = {"Authorization": f"OAuth {self._token}", "Accept": "application/json"}
        self.http = http
        self.group = self.config["privacy_group"]
        self.organisation = f"ThreatExchange privacy group {self.group}"

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        """The pages of updates from the checkpoint's update time (None: every update).
        Raises ExchangeUnavailable (refused token, an error status, a page still unreadable
        after retries); nothing of the page that failed is yielded."""
        start = int(checkpoint["update_time"]) if checkpoint else None
        highest = start or 0
        latest = int(self.clock().timestamp()) + CLOCK_SKEW  # the newest update time taken
        if highest > latest:  # kept from before updates in the future were refused
            raise ExchangeConfigError(
                f"fb_threatexchange: the checkpoint's update_time {highest} is in the future; "
                "set the exchange's checkpoint to the last update time it surely read "
                '({"update_time": UNIX SECONDS})'
            )
        params: dict[str, str] | None = {"fields": FIELDS, "limit": str(PAGE_SIZE)}
        if start is not None:
            params = {**(params or {}), "start_time": str(start)}
        link = f"/{self.group}/threat_updates"
        number = 0
        while link:
            number += 1
            where = f"page {number} of threat updates since {start or 'the start'}"
            document = self._page(link, params, where)
            params = None  # a next link carries its query
            page = Page()
            for position, update in enumerate(document["data"], 1):
                try:
                    records, updated = self._records(update, page.skipped, latest)
                except Exception as error:  # whatever an update holds, it never fails its page
                    reason = str(error) if isinstance(error, _BadUpdate) else (
                        f"unreadable ({type(error).__name__}: {error})")  # fmt: skip
                    excerpt = json.dumps(update, ensure_ascii=False)[:EXCERPT]
                    named = _id_of(update)
                    page.quarantined.append(
                        Quarantined(f"{where}, update {position}{named}", reason, excerpt)
                    )
                    continue
                page.records.extend(records)
                highest = max(highest, updated)
            page.checkpoint = {"update_time": highest}
            page.checkpoint_at = datetime.fromtimestamp(highest, UTC)
            yield page
            following = document.get("paging", {})
            link = following.get("next", "") if isinstance(following, dict) else ""
            link = link if isinstance(link, str) else ""

    def _records(self, update: Any, skipped: Counter[str], latest: int) -> tuple[list[Record], int]:
        """The records of one update and its time (at most ``latest``); raises _BadUpdate
        saying what is wrong."""
        if not isinstance(update, dict):
            raise _BadUpdate("an update is a JSON object")
        ident = str(update.get("id") or "").strip()
        if not ident.isdigit():
            raise _BadUpdate("no id (the indicator's id, a number)")
        updated = update.get("last_updated")
        try:
            if isinstance(updated, bool):
                raise ValueError
            moment = int(updated)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise _BadUpdate(f"last_updated {updated!r:.40}; expected Unix seconds") from None
        if moment < 0:
            raise _BadUpdate(f"last_updated {moment}; expected Unix seconds (not negative)")
        if moment > latest:
            raise _BadUpdate(
                f"last_updated {str(moment)[:40]} is after this fetch began "
                f"({_shown_time(latest - CLOCK_SKEW)}): an update dated in the future is not "
                "taken (the checkpoint would pass every update made until then)"
            )
        reference = f"fb_threatexchange:{self.group}:{ident}"
        should_delete = update.get("should_delete", False)
        if not isinstance(should_delete, bool):
            raise _BadUpdate(f"should_delete {should_delete!r:.40}; expected true or false")
        if should_delete:
            reason = f"ThreatExchange: indicator {ident} deleted in privacy group {self.group}"
            return [Withdrawal(reference, None, reason)], moment
        kind = update.get("type")
        signal = TYPES.get(kind) if isinstance(kind, str) else None
        if signal is None:
            skipped[f"{str(kind)[:40]} indicators (not supported)"] += 1
            return [], moment
        indicator = update.get("indicator")
        if not isinstance(indicator, str):
            raise _BadUpdate(f"{kind}: no indicator")
        try:
            value = canonical(signal, indicator.strip(), str(kind))
        except InvalidRecord as error:
            raise _BadUpdate(str(error)) from None
        source = Source(self.organisation, "", reference)
        provenance = Provenance(self.organisation, "", (source,))
        labels = _tags(update.get("tags"))
        try:
            return [bounded(Submission(signal, value, labels, provenance, restates=True))], moment
        except InvalidRecord as error:
            raise _BadUpdate(str(error)) from None

    def _page(self, link: str, params: Mapping[str, str] | None, where: str) -> dict[str, Any]:
        problem = ""
        for pause in (*self.RETRY_PAUSES, None):
            answer = self.http.request("GET", link, params=params, headers=self._headers)
            if answer.status == 200:
                try:
                    document = json.loads(answer.body)
                except (ValueError, RecursionError):
                    document = None
                if isinstance(document, dict) and isinstance(document.get("data"), list):
                    return document
                problem = "not a threat updates page (JSON with a data list)"
            elif answer.status == 429 or answer.status >= 500:
                problem = f"HTTP {answer.status}"
            else:
                raise self._refusal(answer, where)
            if pause is not None:
                time.sleep(pause)
        raise ExchangeUnavailable(
            f"fb_threatexchange: {where} stayed unreadable after {len(self.RETRY_PAUSES) + 1} "
            f"tries: {problem}; its pages are a cursor and cannot be skipped, so the fetch stops "
            "here and resumes from the last update time applied"
        )

    def _refusal(self, answer: Answer, where: str) -> ExchangeUnavailable:
        """The error an error answer means (the Graph API's JSON error, when it sent one)."""

        def text(value: Any, default: str, limit: int) -> str:  # the token never shown
            return _masked(value if isinstance(value, str) else default, self._token)[:limit]

        try:
            error = json.loads(answer.body)["error"]
            kind, code, message = (error.get(n) for n in ("type", "code", "message"))
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            body = text(answer.body[:1000].decode("utf-8", "replace"), "", 400)
            said = " ".join(body.split())[:200] or "(no body)"
            code = None
        else:  # each part as the Graph API sends it (text, a number, text), or left out
            code = code if isinstance(code, int) and not isinstance(code, bool) else None
            number = str(code)[:20] if code is not None else "?"
            said = f"{text(kind, 'error', 100)} {number}: {text(message, '', 200)}"
        if answer.status in (401, 403) or code in _REFUSED_CODES:
            return ExchangeUnavailable(
                f"fb_threatexchange: ThreatExchange refused the access token for privacy group "
                f"{self.group} (HTTP {answer.status}, {said}): check the exchange's api_token "
                "and that its app is a member of the group"
            )
        return ExchangeUnavailable(
            f"fb_threatexchange: {where} answered HTTP {answer.status} ({said})"
        )

    def send_feedback(self, item: FeedbackItem) -> None:
        """Not offered: hashguard sends ThreatExchange no reactions. Raises Unsupported."""
        raise Unsupported("fb_threatexchange: hashguard sends ThreatExchange no feedback")


_SHOWN_PIECE: Final = 8  # the shortest piece of the token's secret looked for in a message


def _masked(text: str, token: str) -> str:
    """``text`` with the token's secret (the part after ``|``: what an error page echoing the
    token, percent-encoded or cut short, still shows) and every piece of it of 8 characters or
    more replaced."""
    secret = token.partition("|")[2] or token
    for length in range(len(secret), _SHOWN_PIECE - 1, -1):
        for start in range(len(secret) - length + 1):
            piece = secret[start : start + length]
            if piece in text:
                text = text.replace(piece, "(the token)")
    return text


def _tags(tags: Any) -> frozenset[str]:
    """An update's tags: a list of names, or the Graph API's ``{"data": [{"text": ...}]}``."""
    if isinstance(tags, dict):
        listed = tags.get("data")
        listed = listed if isinstance(listed, list) else []
        tags = [tag.get("text") for tag in listed if isinstance(tag, dict)]
    if not isinstance(tags, list):
        return frozenset()
    return frozenset(tag.strip() for tag in tags if isinstance(tag, str) and tag.strip())


def _shown_time(unix: int) -> str:
    return f"{unix}, {datetime.fromtimestamp(unix, UTC):%Y-%m-%d %H:%M:%S} UTC"


def _id_of(update: Any) -> str:
    ident = update.get("id") if isinstance(update, dict) else None
    return f" (id {ascii(str(ident)[:40])[1:-1]})" if ident else ""
