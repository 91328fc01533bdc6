"""The console's match tester: an uploaded file (hashed in memory, never stored) or a pasted
hash, matched against the lists a key may use with the service's own Matcher, and each match
explained: which entry of which list, at what distance against which threshold ("PDQ distance
12 <= 31"). Hashes that cannot match say why (a PDQ of too little detail).

Unlike the match routes, a test records no match in the match log and opens no detection: it
is a question to the lists, not a check of an upload. So it is for operators' keys only: a key
bound to a service (whose uploads the match routes check, log and review) is refused the
tester, and a test runs the match routes' admission all the same (``Review.admit``: an
end-to-end-encrypted service its profile may not scan), so it never answers what they refuse.
The audit log notes that a key ran one (the signals and how many entries matched; never a
hash).

The functions block (hashing, the database): run them in the thread pool.
"""

from dataclasses import dataclass
from typing import Final

from hashguard.api import decoding
from hashguard.api.auth import actor
from hashguard.api.service import Service
from hashguard.errors import Forbidden, Invalid
from hashguard.matching import Match, Matcher
from hashguard.matching.query import Hashed, Query, parse
from hashguard.media.errors import LimitExceeded, MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.signals import registry
from hashguard.signals.base import IndexKind, InvalidSignalValue
from hashguard.signals.batch import NotApplicable
from hashguard.signals.pdq_variants import ORIGINAL
from hashguard.store import audit
from hashguard.store.api_keys import ApiKey

SIGNAL_WORDS: Final = {"pdq": "PDQ", "vpdq": "vPDQ", "md5": "MD5", "sha1": "SHA-1",
                       "sha256": "SHA-256", "canonical_sha256": "canonical SHA-256"}  # fmt: skip


class Untestable(Invalid):
    """What the tester cannot test; the message says what to do instead."""


class ServiceKey(Forbidden):
    """A key bound to a service: its uploads are checked through the match routes."""


def check_tester_key(key: ApiKey) -> None:
    """Raise ServiceKey for a key bound to a service (the message says where it matches)."""
    if key.service is not None:
        raise ServiceKey(
            f"This key belongs to the service {key.service}: a service's uploads are checked "
            "through the API (POST /v1/match/...), where every match is logged and reviewed. "
            "The tester is for operators: sign in with a key bound to no service."
        )


def signal_words(name: str) -> str:
    """A signal as people write it: "PDQ", "SHA-256"."""
    return SIGNAL_WORDS.get(name, name)


@dataclass(frozen=True, slots=True)
class Finding:
    """One listed entry the test matched, and why it matches."""

    list: str
    entry: int
    signal: str
    value: str
    labels: tuple[str, ...]
    distance: float
    threshold: float
    why: str


@dataclass(frozen=True, slots=True)
class Computed:
    """A hash the test matched with; ``note``: why it could not match, if so."""

    signal: str
    text: str
    quality: int | None
    note: str


@dataclass(frozen=True, slots=True)
class Tested:
    given: str  # what was tested, in words: "a PNG image", "a pasted PDQ hash"
    hashes: tuple[Computed, ...]
    findings: tuple[Finding, ...]
    lists: tuple[str, ...]  # the lists searched
    unreadable: str  # why the media could not be decoded (only its digests were taken)


async def upload_query(service: Service, matcher: Matcher, data: bytes) -> tuple[Query, str]:
    """The hashes of an uploaded file, computed in memory with every signal the lists hold
    that applies to it (an image with the query variants the lists allow), within the server's
    decode budget (``api.decoding``, as the API's media routes), and why the media could not be
    decoded when only its digests were taken (else ""). Raises Untestable saying what is wrong
    with the file; DecodeBusy when the server's decode budget stayed full."""
    if not data:
        raise Untestable("No file came with the form: choose an image (or paste a hash).")
    signals = [registry.get(name) for name in matcher.signals()]
    if not signals:
        raise Untestable("The lists hold no entries yet: there is nothing to test against.")
    try:
        found = await decoding.hashed(
            service.decodes,
            data,
            signals,
            service.settings.media_limits,
            matcher.variant_families(),
        )
    except NotApplicable as error:
        raise Untestable(f"The file is {error.kind}, and the lists hold no hash of that kind "
                          f"of file ({error}).") from None  # fmt: skip
    except LimitExceeded as error:
        raise Untestable(f"The file is over the service's media limits: {error}.") from None
    except MediaError as error:
        raise Untestable(f"The file cannot be read as media: {error}.") from None
    unreadable = "" if found.undecodable is None else str(found.undecodable)
    return Query.of((signal.name, value) for signal, value in found.values), unreadable


def pasted_query(signal: str, text: str) -> Query:
    """A query of one pasted hash. Raises Untestable naming what was expected."""
    text = text.strip()
    if not text:
        raise Untestable("Paste a hash, or choose a file.")
    try:
        return parse(signal, text)
    except registry.UnknownSignal:
        raise Untestable(f"There is no signal called {signal!r}: choose one.") from None
    except InvalidSignalValue as error:
        raise Untestable(f"That is not a {signal_words(signal)} hash: {error}") from None


def described(data: bytes) -> str:
    """What an uploaded file is, in words: "an image (png)"."""
    try:
        found = sniff(data[:SNIFF_BYTES])
    except MediaError:
        return "a file that is not an image or a video"
    article = "an" if found.kind is MediaKind.IMAGE else "a"
    return f"{article} {found.kind.value} ({found.name})"


def run_test(
    service: Service,
    matcher: Matcher,
    key: ApiKey,
    query: Query,
    lists: list[str],
    given: str,
    unreadable: str = "",
) -> Tested:
    """``query`` matched within ``lists``, each match explained; audited, never logged as a
    match. Raises ServiceKey for a key bound to a service, after the match routes' admission
    (ScanningForbidden for an end-to-end-encrypted service its profile may not scan)."""
    if key.service is not None:
        service.review.admit(service.review.services.get(key.service))
    check_tester_key(key)
    found = matcher.match_all([query], lists)[0]
    held = {hash_list.name: hash_list for hash_list in matcher.lists}
    findings = tuple(_finding(m, Matcher.threshold(held[m.list], m.signal)) for m in found)
    hashes = tuple(_computed(hashed, matcher) for hashed in query if hashed.signal.listable)
    with service.engine.begin() as connection:
        audit.append(connection, actor(key), "console.match_test", "lists",
                     {"signals": [h.signal for h in hashes], "matches": len(findings),
                      "lists": sorted({f.list for f in findings})})  # fmt: skip
    return Tested(given, hashes, findings, tuple(lists), unreadable)


def _computed(hashed: Hashed, matcher: Matcher) -> Computed:
    quality = hashed.quality
    note = ""
    if hashed.signal.too_low(quality, matcher.min_quality):
        floor = hashed.signal.min_quality if matcher.min_quality is None else matcher.min_quality
        note = (f"quality {quality} is below {floor}: too little detail to match, so it is "
                "not matched")  # fmt: skip
    text = hashed.text
    if hashed.signal.index is IndexKind.FRAMES:
        frames = len(hashed.value.frames)
        text = f"{frames} frame{'s' if frames != 1 else ''}"
    return Computed(hashed.name, text, quality, note)


def _finding(match: Match, threshold: float) -> Finding:
    name = signal_words(match.signal)
    kind = registry.get(match.signal)
    if kind.exact:
        why = f"{name} identical"
    elif match.shares is not None:
        query_share, listed_share = match.shares
        why = (
            f"{name}: {query_share:.0f} % of the frames found in the listed video and "
            f"{listed_share:.0f} % of its frames found here; {100 - threshold:g} % needed"
        )
    else:
        why = f"{name} distance {match.distance:g} <= {threshold:g}"
    if match.variant != ORIGINAL:
        why += f", matched as {match.variant}"
    value = match.value
    if kind.index is IndexKind.FRAMES:
        value = "a listed video"
    return Finding(match.list, match.entry, match.signal, value, tuple(sorted(match.labels)),
                   match.distance, threshold, why)  # fmt: skip
