"""NCMEC hash-sharing XML (API v2): entries of member organisations with their fingerprints.

A document is a ``queryResult`` (a page of ``GET /v2/entries``) holding ``images`` and
``videos``. A live entry (``image`` or ``video``) has ``member`` (its ``id`` attribute and name),
``id`` (unique per member), ``timestamp``, an optional ``classification`` (e.g. A1, B2) and
``fingerprints``; ``deletedImage`` and ``deletedVideo`` carry only the member, the id and the
time. The namespace (``https://hashsharing.ncmec.org/hashsharing/v2``) may be present or not.

How entries become list records:

- Each supported fingerprint (md5, sha1, pdq) is one submission with the classification as its
  label, sourced from the member under the reference ``ncmec:MEMBER:image|video:ID``.
- An entry is the member's whole current record: when it comes again (reclassified, or with
  other fingerprints), values it no longer lists lose that source, and its classification
  replaces the old one on entries only that member holds.
- A deleted entry withdraws that reference: values no other source holds are deleted.
- Other fingerprints (PhotoDNA ``pdna``, ``netclean``) and the large ones NCMEC serves by URL
  (``tmk-pdqf``, ``videntifier``, ``ssvh-*``; an element with ``href`` and no text) cannot be
  matched by hashguard: they are counted in ``skipped`` and reported, never silently dropped.

The file is parsed as a stream (bounded memory whatever its size) by defusedxml: a DTD or an
entity declaration is refused. A file with an entry that cannot be read is refused whole
(``read``); a page fetched from NCMEC's API (``parse_page``, for ``hashguard.exchanges.ncmec``)
keeps the records of its readable entries and names each unreadable one (a ``BadEntry``); a
page is held whole, and one in UTF-8 without a DTD is built by expat's C tree builder (any
other goes through defusedxml, with its refusals and messages).
Export writes a list as such a document, one entry per value, published by the list's owner.
"""

import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from shutil import copyfileobj
from tempfile import SpooledTemporaryFile
from typing import Final, TextIO
from xml.etree.ElementTree import Element, ParseError, XMLParser, tostring
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring, iterparse

from hashguard.lists import limits
from hashguard.lists.formats import ListFormatError
from hashguard.lists.model import Entry, EntryStatus, Provenance, Source
from hashguard.lists.records import (
    InvalidRecord,
    Record,
    Submission,
    Withdrawal,
    bounded,
    canonical,
)
from hashguard.signals import registry

NAMESPACE: Final = "https://hashsharing.ncmec.org/hashsharing/v2"
# Fingerprint elements hashguard matches, and the list signal each becomes.
SIGNALS: Final = {"md5": "md5", "sha1": "sha1", "pdq": "pdq"}
EXCERPT: Final = 2000  # characters of an unreadable entry kept
# A member's id and an entry's id, each a part of the entry's reference.
_ID: Final = (limits.REFERENCE - len("ncmec::video:")) // 2
_ENTRIES: Final = {
    "image": ("image", False),
    "deletedImage": ("image", True),
    "video": ("video", False),
    "deletedVideo": ("video", True),
}


def reference(member_id: str, media: str, entry_id: str) -> str:
    """The source reference of member ``member_id``'s ``media`` entry ``entry_id``."""
    return f"ncmec:{member_id}:{media}:{entry_id}"


@dataclass(frozen=True, slots=True)
class BadEntry:
    """An entry of a page that cannot be read: its number in the page (1-based), where it is
    (``<image> 3 (member 7, id e1)``), why, and its XML (at most ``EXCERPT`` characters)."""

    number: int
    where: str
    reason: str
    excerpt: str


@dataclass(slots=True)
class EntriesPage:
    """One page of ``GET /v2/entries``: the records of its readable entries, the entries that
    could not be read, how many entries it held, and its ``paging/next`` link ("" on the last
    page)."""

    records: list[Record] = field(default_factory=list)
    bad: list[BadEntry] = field(default_factory=list)
    entries: int = 0
    next: str = ""


class MalformedPage(InvalidRecord):
    """A page that is not an NCMEC entries document at all (not XML, refused XML, another root
    element); the message says which."""


class _BadEntry(Exception):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def read(path: Path, skipped: Counter[str] | None = None) -> Iterator[Record]:
    """Submissions and withdrawals from an NCMEC entries document, streamed.

    Raises ListFormatError naming the line (XML syntax) or the entry (its number in the file,
    member and id) and what was wrong."""
    path = Path(path)
    skipped = skipped if skipped is not None else Counter()
    try:
        for number, tag, element in _entries(str(path)):
            try:
                yield from _entry(number, tag, element, skipped)
            except _BadEntry as error:
                raise ListFormatError(path, None, str(error)) from None
    except _NotEntries as error:
        raise ListFormatError(path, error.line, str(error)) from None
    except OSError as error:
        raise ListFormatError(path, None, f"cannot read: {error.strerror or error}") from None


def parse_page(
    body: bytes, skipped: Counter[str], members: Collection[str] | None = None
) -> EntriesPage:
    """The records of one page of NCMEC's entries API held in memory (``body``): an entry that
    cannot be read is a BadEntry of the page, never stopping the ones after it; entries of
    members not in ``members`` (when given) are left out and counted in ``skipped``.

    Raises MalformedPage when the page as a whole is not an entries document."""
    page = EntriesPage()
    root = _page_root(body)
    if _local(root.tag) != "queryResult":
        raise MalformedPage(f"root element <{_local(root.tag)}>; expected an NCMEC <queryResult>")
    for container in root:
        if _local(container.tag) == "paging":
            following = container.find("./{*}next")
            page.next = _text(following)
            continue
        for element in container:
            tag = _local(element.tag)
            if tag not in _ENTRIES:
                continue
            page.entries += 1
            if members is not None:
                member_id = _first_member_id(element)
                if member_id and member_id not in members:
                    skipped["entries of members not followed (only_esp_ids)"] += 1
                    continue
            try:
                page.records.extend(_entry(page.entries, tag, element, skipped))
            except Exception as error:  # whatever an entry holds, it never fails its page
                if isinstance(error, _BadEntry):
                    where, reason = error.where, error.reason
                else:
                    where = f"<{tag}> {page.entries}"
                    reason = f"unreadable ({type(error).__name__}: {error})"
                excerpt = tostring(element, encoding="unicode")[:EXCERPT]
                page.bad.append(BadEntry(page.entries, where, reason, excerpt))
    return page


def _page_root(body: bytes) -> Element:
    """The root of a page held whole in memory (NCMEC serves 1,000 entries a page): a plain
    UTF-8 document without a DTD by expat's C tree builder; any other (and any the C builder
    finds malformed) by defusedxml's, whose Python callbacks took most of a page's time.
    Raises MalformedPage."""
    if _plain(body):
        parser = XMLParser()  # the C builder: without a DTD no entity can be declared
        try:
            parser.feed(body)
            return parser.close()
        except ParseError:
            pass  # the careful parser below says what is wrong, as it always has
    try:
        return fromstring(body, forbid_dtd=True)
    except ParseError as error:
        line = f"line {error.position[0]}: " if error.position else ""
        raise MalformedPage(f"{line}malformed XML: {error}") from None
    except DefusedXmlException as error:
        raise MalformedPage(f"refused XML: {error}") from None
    except (LookupError, ValueError) as error:  # expat's refusal of the declared encoding
        raise MalformedPage(_encoding_refused(error)) from None


def _plain(body: bytes) -> bool:
    """Whether ``body`` is UTF-8 (declared, or by default with no byte order mark) with no
    document type declaration: an encoding where the bytes ``<!DOCTYPE`` are the only way to
    write one."""
    if body.startswith(b"<?xml"):
        declaration = _DECLARATION.match(body)
        if declaration is None:
            return False
        encoding = declaration.group(1)
        if encoding is not None and encoding.lower() != b"utf-8":
            return False
    elif not body.startswith(b"<"):
        return False
    return b"<!DOCTYPE" not in body


_DECLARATION: Final = re.compile(
    rb"<\?xml\s+version\s*=\s*[\"']1\.0[\"']"
    rb"(?:\s+encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'])?"
    rb"(?:\s+standalone\s*=\s*[\"'](?:yes|no)[\"'])?\s*\?>"
)


class _NotEntries(Exception):
    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line = line


def _entries(source: str) -> Iterator[tuple[int, str, Element]]:
    """(number, tag, element) of each entry of a document, streamed. Raises _NotEntries for a
    document that is not an entries document."""
    number = 0
    parents: list[Element] = []
    try:
        for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True):
            tag = _local(element.tag)
            if event == "start":
                if not parents and tag != "queryResult":
                    raise _NotEntries(
                        None, f"root element <{tag}>; expected an NCMEC <queryResult>"
                    )
                parents.append(element)
                continue
            parents.pop()
            if tag not in _ENTRIES or len(parents) != 2:
                continue
            number += 1
            yield number, tag, element
            parents[-1].remove(element)  # done with it: memory stays bounded
    except ParseError as error:
        line = error.position[0] if error.position else None
        raise _NotEntries(line, f"malformed XML: {error}") from None
    except DefusedXmlException as error:
        raise _NotEntries(None, f"refused XML: {error}") from None
    except (LookupError, ValueError) as error:  # expat's refusal of the declared encoding
        raise _NotEntries(1, _encoding_refused(error)) from None


def _encoding_refused(error: Exception) -> str:
    return f"the encoding the XML declaration names cannot be read ({error}); UTF-8 can"


def _entry(number: int, tag: str, element: Element, skipped: Counter[str]) -> list[Record]:
    """The records of one entry; raises _BadEntry saying where and what is wrong."""
    media, deleted = _ENTRIES[tag]
    # One pass over the children (a million entries a fetch): the last of each kind counts.
    member = identifier = fingerprints = None
    classifications: list[str] = []
    for child in element:
        name = child.tag.rpartition("}")[2]
        if name == "member":
            member = child
        elif name == "id":
            identifier = child
        elif name == "fingerprints":
            fingerprints = child
        elif name == "classification":
            text = (child.text or "").strip()
            if text:
                classifications.append(text)
    entry_id = _text(identifier)
    member_id = (member.get("id") or "").strip() if member is not None else ""
    for name, text in (("<member id=...>", member_id), ("<id>", entry_id)):
        if len(text) > _ID:
            raise _BadEntry(
                f"<{tag}> {number}", f"{name} of {len(text):,} characters; the limit is {_ID}"
            )
    if member is None or not member_id or not entry_id:
        where = f"<{tag}> {number}" + (f" (member {member_id}, id {entry_id})" if entry_id else "")
        missing = "no <member id=...>" if member is None or not member_id else "no <id>"
        raise _BadEntry(where, missing)
    ref = reference(member_id, media, entry_id)
    where = f"<{tag}> {number} (member {member_id}, id {entry_id})"
    if deleted:
        return [Withdrawal(ref, None, f"NCMEC: member {member_id} deleted {media} {entry_id}")]
    organisation = _text(member) or f"NCMEC member {member_id}"
    provenance = Provenance(organisation, "", (Source(organisation, "", ref),))
    labels = frozenset(classifications)
    values: dict[tuple[str, str], None] = {}
    unread: Counter[str] | None = None  # counted only once the entry is known to be readable
    for fingerprint in fingerprints if fingerprints is not None else ():
        name = fingerprint.tag.rpartition("}")[2]
        text = (fingerprint.text or "").strip()
        signal = SIGNALS.get(name)
        if signal is None or not text:
            large = fingerprint.get("href") is not None and not text
            why = "served by URL, not fetched" if large else "not supported"
            unread = unread if unread is not None else Counter()
            unread[f"{name} fingerprints ({why})"] += 1
            continue
        try:
            value = text if _canonical_already(signal, text) else canonical(signal, text)
        except InvalidRecord as error:
            raise _BadEntry(where, str(error)) from None
        values[(signal, value)] = None
    if unread is not None:
        skipped.update(unread)
    if not values:
        skipped[f"{media} entries with no md5, sha1 or pdq fingerprint"] += 1
    try:
        records: list[Record] = [
            bounded(Submission(signal, value, labels, provenance, restates=True))
            for signal, value in values
        ]
    except InvalidRecord as error:
        raise _BadEntry(where, str(error)) from None
    # The record is the member's whole entry now: what it no longer lists loses this source.
    records.append(
        Withdrawal(ref, frozenset(values), f"NCMEC: member {member_id} changed {media} {entry_id}")
    )
    return records


@cache
def _canonical_pattern(signal: str) -> re.Pattern[str]:
    digits = registry.listed(signal).hex_digits
    return re.compile(f"[0-9a-f]{{{digits}}}" if digits else "(?!)")


def _canonical_already(signal: str, text: str) -> bool:
    """Whether ``text`` is a hex-digit signal's value in canonical form already (the common
    case, checked by one match instead of ``canonical``'s steps)."""
    return _canonical_pattern(signal).fullmatch(text) is not None


def _first_member_id(element: Element) -> str:
    """The id of an entry's first ``member``, or ""."""
    for child in element:
        if child.tag.rpartition("}")[2] == "member":
            return (child.get("id") or "").strip()
    return ""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def write(entries: Iterable[Entry], out: TextIO, member_id: str, member: str) -> tuple[int, int]:
    """``entries`` as an NCMEC entries document published by ``member``: one entry per value,
    ``id`` the entry id, each label a ``classification``, an entry that is not active as a
    deleted one. An entry is a video when an NCMEC source of it says so, otherwise an image.

    Returns (entries written, entries left out: signals NCMEC has no fingerprint for)."""
    written = left_out = 0
    out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<queryResult xmlns="{NAMESPACE}">\n')
    member_xml = f"<member id={quoteattr(member_id)}>{escape(member)}</member>"
    # Images go out as they come; videos wait in a spooled file (hashes, not media) so the
    # document has one <images> and one <videos> whatever the order of the entries.
    with SpooledTemporaryFile(max_size=1 << 23, mode="w+", encoding="utf-8") as videos:
        out.write("  <images>\n")
        for entry in entries:
            if entry.signal not in SIGNALS:
                left_out += 1
                continue
            video = any(":video:" in source.reference for source in entry.provenance.sources)
            media, deleted = ("video", "deletedVideo") if video else ("image", "deletedImage")
            if entry.status is EntryStatus.ACTIVE:
                classifications = "".join(
                    f"<classification>{escape(label)}</classification>"
                    for label in sorted(entry.labels)
                )
                fingerprint = f"<{entry.signal}>{entry.value}</{entry.signal}>"
                body = (
                    f"<{media}>{member_xml}<id>{entry.id}</id>{classifications}"
                    f"<fingerprints>{fingerprint}</fingerprints></{media}>"
                )
            else:
                body = f"<{deleted}>{member_xml}<id>{entry.id}</id></{deleted}>"
            (videos if video else out).write(f"    {body}\n")
            written += 1
        out.write("  </images>\n  <videos>\n")
        videos.seek(0)
        copyfileobj(videos, out)
    out.write("  </videos>\n</queryResult>\n")
    return written, left_out
