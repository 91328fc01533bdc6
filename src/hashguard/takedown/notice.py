"""A notice as it is sent: a XARF v4 ``content/csam`` report with the fields of the Digital
Services Act's Art 16 and hashguard's extensions (per item its hashes, PDQ and vPDQ included,
and its labels), validated against XARF's published schema and signed with the hotline's key;
the e-mail that carries it (English, then Dutch: the same facts in plain words, the signed
document attached as ``notice.json``); the body POSTed to a hoster's API; and what an API
answers (``parse_reply``). Never any content: URLs, hashes and labels only (docs/formats.md,
"Takedown notices (XARF v4)").

The analysts' labels map to XARF's ``classification`` as follows: an item's industry category
(``A1``, ``A2``, ``B1``, ``B2``) is its classification; else ``iccam: baseline`` is
``baseline``; else (illegal under national law only, such as drawn material) the item has none.
The notice's classification is the most severe of its items' (A1, A2, B1, B2, baseline in that
order); ``baseline`` when no item has one, since XARF requires a value (``hashguard_items``
says which items were classified and how).
"""

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from xarf import schema_validator

from hashguard.errors import Invalid
from hashguard.store.tables import utc
from hashguard.takedown import signing
from hashguard.takedown.model import DeliveryPurpose, NoticeKind

XARF_VERSION: Final = "4.0.0"
HASHES: Final = ("pdq", "vpdq", "md5", "sha1", "sha256")  # the signals a notice names
XARF_HASHES: Final = ("md5", "sha1", "sha256")  # those XARF's hash_values knows
SEVERITY: Final = ("A1", "A2", "B1", "B2", "baseline")  # most severe first
INDUSTRY: Final = {
    "A1": "a prepubescent child, a sexual act",
    "A2": "a prepubescent child, a lascivious exhibition",
    "B1": "a pubescent child, a sexual act",
    "B2": "a pubescent child, a lascivious exhibition",
}
INDUSTRY_NL: Final = {
    "A1": "een kind voor de puberteit, een seksuele handeling",
    "A2": "een kind voor de puberteit, een seksueel getinte afbeelding",
    "B1": "een kind in de puberteit, een seksuele handeling",
    "B2": "een kind in de puberteit, een seksueel getinte afbeelding",
}
EXEMPTION: Final = (
    "omitted: not required for information about the offences of Articles 3 to 7 of Directive "
    "2011/93/EU (Regulation (EU) 2022/2065, Art 16(2)(c))"
)
MAX_REPLY_FIELD: Final = 200  # characters of a ticket an API's answer may name
MAX_DESCRIPTION: Final = 1000  # XARF's limit

_DOMAIN = re.compile(r"([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}")  # XARF's domain pattern
_COUNTRY = re.compile(r"[A-Z]{2}")
_TICKET = re.compile(r"[\x21-\x7e][\x20-\x7e]*")


class NoticeInvalid(Invalid):
    """A document XARF's schema refuses; the message names each field and why."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sends the notices: the hotline (its name, the address replies go to, its domain,
    its country)."""

    name: str
    email: str
    domain: str
    country: str
    public_url: str = ""  # the service as hosters reach it; "": https://DOMAIN

    @property
    def base(self) -> str:
        """The service's address (scheme, host, port, path) without a trailing slash."""
        return self.public_url.rstrip("/") if self.public_url else f"https://{self.domain}"

    @property
    def portal(self) -> str:
        """Where hosters see and answer their notices."""
        return f"{self.base}/hosters"

    @property
    def api(self) -> str:
        return f"{self.base}/v1/takedown/notices"


@dataclass(frozen=True, slots=True)
class Reply:
    """What a hoster's or CDN's API answered: its ticket, the origin address a CDN named, or
    why the answer could not be read (the delivery itself still counts)."""

    ticket: str | None = None
    origin: str | None = None
    error: str | None = None


_KEY_ACTOR = re.compile(r"key:\d+(?: \((?P<name>.*)\))?", re.DOTALL)


def issuer(row: Mapping[str, Any], sender: Sender) -> str:
    """Who issued the notice, as its hoster may read it: the hotline's name, or for a removal
    order "authority: NAME" (the authority's key's name), never a key's number or a person."""
    if row.get("kind") != NoticeKind.ORDER.value:
        return sender.name
    found = _KEY_ACTOR.fullmatch(str(row.get("issued_by") or ""))
    name = (found.group("name") or "") if found else str(row.get("issued_by") or "")
    return f"authority: {name}" if name else "authority"


def stamp(moment: datetime) -> str:
    """A time as XARF writes it: UTC, seconds, ``Z``."""
    return utc(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spoken(text: str) -> str:
    """A document's time for people: ``2025-03-01 14:00 UTC``."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d %H:%M UTC")


def classification(labels: Mapping[str, Any]) -> str | None:
    """An item's XARF classification from its labels (None: illegal under national law only)."""
    industry = labels.get("industry")
    if industry in INDUSTRY:
        return str(industry)
    return "baseline" if labels.get("iccam") == "baseline" else None


def _items(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = []
    for item in row["items"] or ():
        hashes = item.get("hashes") or {}
        labels = dict(item.get("labels") or {})
        items.append({"url": str(item.get("url", "")), "kind": str(item.get("kind", "")),
                      "classification": classification(labels), "labels": labels,
                      "hashes": {s: str(hashes[s]) for s in HASHES if hashes.get(s)}})  # fmt: skip
    return items


def _reasons(items: Sequence[Mapping[str, Any]], kind: NoticeKind, sender: Sender,
             legal_basis: str) -> str:  # fmt: skip
    """Art 16(2)(a): why the content is illegal, in a sentence or two."""
    if kind is NoticeKind.ORDER:
        return (f"A removal order under {legal_basis or 'the applicable law'}: the content at "
                "these addresses is child sexual abuse material and must be removed or "
                "disabled.")  # fmt: skip
    found = sorted({c for c in (i["classification"] for i in items) if c},
                   key=SEVERITY.index)  # fmt: skip
    described = "; ".join(f"{c} ({INDUSTRY[c]})" if c in INDUSTRY else
                          "INTERPOL's baseline (a real child under 13, sexual)"
                          for c in found)  # fmt: skip
    return (f"Trained analysts of {sender.name} assessed the files at these addresses as child "
            "sexual abuse material, illegal under Directive 2011/93/EU and the law of "
            f"{sender.country}"
            + (f"; classification: {described}." if described else "."))  # fmt: skip


def compose(row: Mapping[str, Any], sender: Sender, key: Ed25519PrivateKey,
            at: datetime) -> dict[str, Any]:  # fmt: skip
    """The signed notice for a ``takedown_notices`` row (``row._mapping``, its deadline set),
    composed at ``at``: a XARF v4 ``content/csam`` report with the DSA Art 16 fields and the
    items' hashes and labels. Raises NoticeInvalid when XARF's schema refuses it (a row without
    URLs or deadline, a sender whose address is not one)."""
    kind = NoticeKind(row["kind"])
    urls = [str(url) for url in row["urls"] or ()]
    if not urls:
        raise NoticeInvalid("urls: a notice names at least one URL")
    if row["deadline_at"] is None:
        raise NoticeInvalid("deadline_at: the notice has no deadline yet")
    items = _items(row)
    found = [c for c in (i["classification"] for i in items) if c]
    kinds = {i["kind"] for i in items if i["kind"] in ("image", "video")}
    first = next((i for i in items if i["url"] == urls[0]), items[0] if items else None)
    host = urlsplit(urls[0]).hostname or ""
    contact = {"org": sender.name, "contact": sender.email, "domain": sender.domain}
    legal_basis = str(row["legal_basis"] or "")
    document: dict[str, Any] = {
        "xarf_version": XARF_VERSION,
        "report_id": str(row["report_id"]),
        "timestamp": stamp(row["reported_at"]),
        "reporter": contact,
        "sender": dict(contact),
        "source_identifier": host,
        "category": "content",
        "type": "csam",
        "url": urls[0],
        "evidence_source": "user_report",  # a report to the hotline, assessed by its analysts
        "classification": min(found, key=SEVERITY.index) if found else "baseline",
        "detection_method": "manual_review",
        "verification_method": "manual",
        "confidence": 1.0,
        "description": _description(kind, len(urls), sender)[:MAX_DESCRIPTION],
        "content_removed": False,
        "urls": urls,
        "hashguard_items": items,
        "dsa_art16": {
            "reasons": _reasons(items, kind, sender, legal_basis),
            "exact_locations": urls,
            "notifier_identity": EXEMPTION,
            "good_faith_statement": (
                f"{sender.name} states in good faith that the information and allegations in "
                "this notice are accurate and complete."
            ),
        },
        "hashguard_notice": {
            "id": row["id"],
            "kind": kind.value,
            "reference": str(row["reference"] or ""),
            "issued_by": issuer(row, sender),
            "legal_basis": legal_basis,
            "hoster": str(row["hoster"] or ""),
            "composed_at": stamp(at),
            "deadline": stamp(row["deadline_at"]),
            "no_content_attached": True,
            "reply": {"portal": sender.portal, "api": f"{sender.api}/{row['id']}"},
        },
    }
    if kinds:
        document["media_type"] = kinds.pop() if len(kinds) == 1 else "mixed"
    if first is not None:
        xarf_hashes = {s: first["hashes"][s] for s in XARF_HASHES if s in first["hashes"]}
        if xarf_hashes:
            document["hash_values"] = xarf_hashes
    if _DOMAIN.fullmatch(host):
        document["domain"] = host
    if row["hoster"]:
        document["hosting_provider"] = str(row["hoster"])
    if row["country"] and _COUNTRY.fullmatch(str(row["country"])):
        document["country_code"] = str(row["country"])
    validate(document)
    return signing.sign(document, key)


def _description(kind: NoticeKind, count: int, sender: Sender) -> str:
    where = f"{count} URL{'s' if count != 1 else ''}"
    if kind is NoticeKind.CDN:
        return (f"Child sexual abuse material at {where} served through your network. Please "
                "name the origin server's IP address, so that its hoster can remove "
                "it.")  # fmt: skip
    if kind is NoticeKind.ORDER:
        return f"A removal order for child sexual abuse material at {where}, sent by {sender.name}."
    return (f"Child sexual abuse material at {where} on your network, assessed by {sender.name}. "
            "Please remove it before the deadline.")  # fmt: skip


def validate(document: Mapping[str, Any]) -> None:
    """Check ``document`` against XARF v4's schema (its category's and type's too). Raises
    NoticeInvalid naming each field refused and why."""
    errors = schema_validator.validate(dict(document))
    if errors:
        raise NoticeInvalid("not a valid XARF v4 report: " + "; ".join(
            f"{e.field or '(the report)'}: {e.message}" for e in errors[:10]))  # fmt: skip


# --- the e-mail and the API's body --------------------------------------------------------

_SUBJECT: Final = {
    DeliveryPurpose.NOTICE: "Notice: child sexual abuse material on your network",
    DeliveryPurpose.RENOTICE: "Re-notice {renotice}: child sexual abuse material still online",
    DeliveryPurpose.ESCALATION: "Escalation ({step}): child sexual abuse material still online",
    DeliveryPurpose.REMINDER: "Reminder: removal order not yet carried out",
    DeliveryPurpose.STATUS: "Takedown status",
}

_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "notice": "We found child sexual abuse material at the web addresses below, on a "
        "network you run. Please remove it, or disable access to it, before the deadline.",
        "cdn": "The web addresses below serve child sexual abuse material through your "
        "network. Please tell us the IP address of the origin server that holds it, so that "
        "its hoster can remove it, and stop serving it yourself.",
        "order": "This is a removal order: {issued} orders the removal of the child sexual "
        "abuse material at the web addresses below under {basis} (reference {reference}). "
        "Please carry it out before the deadline and confirm it, or tell us why you cannot.",
        "renotice": "This is re-notice number {renotice}: when we checked again, the "
        "material was still online after the deadline.",
        "escalation": "This is an escalation ({step}): the hoster did not remove the "
        "material below after our notice and its deadline. Please act on it.",
        "reminder": "This is a reminder: the removal order below has not yet been confirmed.",
        "status": "This is the takedown status of the web addresses below.",
        "reference": "Notice reference: {report_id} (our reference {reference})",
        "deadline": "Deadline: {deadline}",
        "addresses": "Web addresses:",
        "files": "The files, by hash (fingerprints; we never send the files themselves):",
        "reasons": "Why: {reasons}",
        "evidence": "What we found when we checked again:",
        "todo": "What to do: remove the files at these addresses and make sure they cannot be "
        "uploaded again (you can check new uploads against our hashes). Do not download, "
        "copy or forward the files. We check the addresses again ourselves after you answer "
        "and at the deadline: a removal counts when we see it.",
        "reply": "How to answer: in the hoster portal at {portal} or with the API at {api} "
        "(acknowledge, say it is removed, or dispute with a reason); or reply to this e-mail "
        "quoting the notice reference.",
        "attached": "Attached: notice.json, this notice as a XARF v4 report, signed by "
        "{sender} (Ed25519). No content is attached.",
        "good_faith": "{sender} states in good faith that the information in this notice is "
        "accurate and complete.",
    },
    "nl": {
        "notice": "We hebben materiaal van seksueel misbruik van kinderen gevonden op de "
        "webadressen hieronder, op een netwerk dat u beheert. Verwijder het, of maak het "
        "ontoegankelijk, voor de deadline.",
        "cdn": "De webadressen hieronder tonen materiaal van seksueel misbruik van kinderen "
        "via uw netwerk. Laat ons het IP-adres weten van de server waar het staat, zodat de "
        "hoster het kan verwijderen, en stop zelf met het doorgeven ervan.",
        "order": "Dit is een verwijderingsbevel: {issued} beveelt de verwijdering van het "
        "materiaal van seksueel misbruik van kinderen op de webadressen hieronder op grond "
        "van {basis} (kenmerk {reference}). Voer het uit voor de deadline en bevestig dat, of "
        "laat ons weten waarom het niet kan.",
        "renotice": "Dit is herhaalde melding nummer {renotice}: toen we opnieuw keken, stond "
        "het materiaal na de deadline nog online.",
        "escalation": "Dit is een escalatie ({step}): de hoster heeft het materiaal hieronder "
        "na onze melding en de deadline niet verwijderd. Onderneem alstublieft actie.",
        "reminder": "Dit is een herinnering: het verwijderingsbevel hieronder is nog niet "
        "bevestigd.",
        "status": "Dit is de stand van de verwijdering van de webadressen hieronder.",
        "reference": "Kenmerk van de melding: {report_id} (ons kenmerk {reference})",
        "deadline": "Deadline: {deadline}",
        "addresses": "Webadressen:",
        "files": "De bestanden, als hash (vingerafdrukken; de bestanden zelf sturen we nooit):",
        "reasons": "Waarom: {reasons}",
        "evidence": "Wat we vonden toen we opnieuw keken:",
        "todo": "Wat u moet doen: verwijder de bestanden op deze adressen en zorg dat ze niet "
        "opnieuw geüpload kunnen worden (u kunt nieuwe uploads met onze hashes vergelijken). "
        "Download, kopieer of stuur de bestanden niet door. We kijken zelf opnieuw na uw "
        "antwoord en bij de deadline: een verwijdering telt als wij die zien.",
        "reply": "Hoe u antwoordt: in het portaal voor hosters op {portal} of met de API op "
        "{api} (bevestig ontvangst, meld dat het verwijderd is, of maak bezwaar met een "
        "reden); of beantwoord deze e-mail met het kenmerk van de melding.",
        "attached": "Bijlage: notice.json, deze melding als XARF v4-rapport, ondertekend door "
        "{sender} (Ed25519). Er is geen inhoud bijgevoegd.",
        "good_faith": "{sender} verklaart te goeder trouw dat de informatie in deze melding "
        "juist en volledig is.",
    },
}


def _facts(document: Mapping[str, Any]) -> dict[str, Any]:
    notice = document.get("hashguard_notice") or {}
    return {"report_id": document.get("report_id", ""), "reference": notice.get("reference", ""),
            "deadline": _spoken(notice["deadline"]) if notice.get("deadline") else "",
            "kind": notice.get("kind", NoticeKind.NOTICE.value),
            "issued": notice.get("issued_by", "") or "the authority",
            "basis": notice.get("legal_basis", "") or "the applicable law",
            "reply": notice.get("reply") or {}}  # fmt: skip


def _body(document: Mapping[str, Any], purpose: DeliveryPurpose, language: str, sender: Sender,
          renotice: int, step: str, evidence: Mapping[str, Any] | None) -> list[str]:  # fmt: skip
    words, facts = _WORDS[language], _facts(document)
    values = {**facts, "renotice": renotice, "step": step, "sender": sender.name,
              "portal": facts["reply"].get("portal", ""),
              "api": facts["reply"].get("api", "")}  # fmt: skip
    lines = []
    if purpose is not DeliveryPurpose.NOTICE:
        lines.append(words[purpose.value].format(**values))
    if purpose is not DeliveryPurpose.STATUS:
        lines.append(words[facts["kind"] if facts["kind"] in ("cdn", "order") else "notice"]
                     .format(**values))  # fmt: skip
    lines += ["", words["reference"].format(**values)]
    if facts["deadline"]:
        lines.append(words["deadline"].format(**values))
    lines += ["", words["addresses"], *(f"  {url}" for url in document.get("urls") or ())]
    items = document.get("hashguard_items") or ()
    if any(item.get("hashes") for item in items):
        lines += ["", words["files"]]
        for item in items:
            lines.append(f"  {item.get('url', '')}")
            lines += [f"    {signal}: {value}" for signal, value in item.get("hashes", {}).items()]
    if language == "en":
        reasons = (document.get("dsa_art16") or {}).get("reasons", "")
    else:
        reasons = _reasons_nl(document, sender)
    lines += ["", words["reasons"].format(reasons=reasons)]
    if evidence:
        lines += ["", words["evidence"],
                  *(f"  {name}: {value}" for name, value in evidence.items())]  # fmt: skip
    if purpose is not DeliveryPurpose.STATUS:
        lines += ["", words["todo"], "", words["reply"].format(**values)]
    lines += ["", words["attached"].format(**values), words["good_faith"].format(**values)]
    return lines


def _reasons_nl(document: Mapping[str, Any], sender: Sender) -> str:
    notice = document.get("hashguard_notice") or {}
    if notice.get("kind") == NoticeKind.ORDER.value:
        return (f"een verwijderingsbevel op grond van {notice.get('legal_basis') or 'de wet'}: "
                "de inhoud op deze adressen is materiaal van seksueel misbruik van "
                "kinderen.")  # fmt: skip
    found = sorted({str(i["classification"]) for i in document.get("hashguard_items") or ()
                    if i.get("classification")}, key=SEVERITY.index)  # fmt: skip
    described = "; ".join(f"{c} ({INDUSTRY_NL[c]})" if c in INDUSTRY_NL else
                          "de basisnorm van INTERPOL (een echt kind onder 13, seksueel)"
                          for c in found)  # fmt: skip
    return (f"getrainde analisten van {sender.name} hebben de bestanden op deze adressen "
            "beoordeeld als materiaal van seksueel misbruik van kinderen, strafbaar volgens "
            f"Richtlijn 2011/93/EU en de wet van {sender.country}"
            + (f"; classificatie: {described}." if described else "."))  # fmt: skip


def email(
    document: Mapping[str, Any],
    purpose: DeliveryPurpose,
    *,
    to: str,
    sender: Sender,
    renotice: int = 0,
    step: str = "",
    evidence: Mapping[str, Any] | None = None,
) -> EmailMessage:
    """The e-mail carrying ``document`` (a signed notice) for ``purpose``: the facts in plain
    English, then the same in Dutch, the signed document attached as ``notice.json``. Its
    subject names the purpose, the reference and the deadline."""
    facts = _facts(document)
    subject = _SUBJECT[purpose].format(renotice=renotice, step=step)
    subject += f" [{facts['reference'] or facts['report_id']}]"
    if facts["deadline"] and purpose is not DeliveryPurpose.STATUS:
        subject += f", deadline {facts['deadline']}"
    message = EmailMessage()
    message["From"] = formataddr((sender.name, sender.email))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["X-Hashguard-Notice"] = str(facts["report_id"])
    english = _body(document, purpose, "en", sender, renotice, step, evidence)
    dutch = _body(document, purpose, "nl", sender, renotice, step, evidence)
    message.set_content("\n".join([*english, "", "-" * 72, "(Nederlands)", "", *dutch, ""]))
    message.add_attachment(signing.dumps(document).encode(), maintype="application",
                           subtype="json", filename="notice.json")  # fmt: skip
    return message


def api_body(
    document: Mapping[str, Any],
    purpose: DeliveryPurpose,
    *,
    renotice: int = 0,
    step: str = "",
    evidence: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What is POSTed (as JSON) to a hoster's API: the purpose, the re-notice's number or the
    escalation's step, the re-check's evidence, and the signed notice itself."""
    return {"purpose": DeliveryPurpose(purpose).value, "report_id": document.get("report_id"),
            "renotice": renotice, "step": step,
            "evidence": dict(evidence) if evidence is not None else None,
            "notice": dict(document)}  # fmt: skip


def parse_reply(text: str) -> Reply:
    """A hoster's or CDN's API answer (JSON): its ``ticket`` (or ``id``), the ``origin`` IP
    address a CDN names, and any ``error`` it states. Never raises: an answer that cannot be
    read gives a Reply whose ``error`` says why (an empty answer is no error)."""
    if not text.strip():
        return Reply()
    try:
        answer = json.loads(text)
    except (ValueError, RecursionError) as error:
        return Reply(error=f"the answer is not JSON ({str(error)[:80]})")
    if not isinstance(answer, dict):
        return Reply(error=f"expected a JSON object, got {type(answer).__name__}")
    problems: list[str] = []
    ticket = answer.get("ticket", answer.get("id"))
    if isinstance(ticket, bool) or not isinstance(ticket, str | int | None):
        problems.append("ticket: expected a string")
        ticket = None
    elif ticket is not None:
        ticket = str(ticket)
        if not _TICKET.fullmatch(ticket) or len(ticket) > MAX_REPLY_FIELD:
            problems.append(f"ticket: expected 1-{MAX_REPLY_FIELD} printable characters")
            ticket = None
    origin = answer.get("origin")
    if origin is not None:
        try:
            origin = str(ipaddress.ip_address(origin)) if isinstance(origin, str) else None
        except ValueError:
            origin = None
        if origin is None:
            problems.append(f"origin: expected an IP address, got {str(answer['origin'])[:80]!r}")
    stated = answer.get("error")
    if isinstance(stated, str) and stated.strip():
        problems.insert(0, f"the API says: {stated.strip()[:MAX_REPLY_FIELD]}")
    return Reply(ticket, origin, "; ".join(problems) or None)
