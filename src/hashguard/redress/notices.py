"""Statements of reasons: what a user is told when a service acts on their upload or account.

Every statement names what was done and why (the item matched a list of known material and a
person confirmed it), the legal basis, and the three redress routes of Regulation 2021/1232
Art 3(1)(g)(vi): an internal complaint (a link that works for the profile's complaint period,
decided by someone other than the first reviewer), a complaint to the data protection
authority, and a court. The wording accuses no one: matching says what a file is, not who made
or knew of it. English and Dutch; the service delivers the text (hashguard holds no contact
details): it is sent through the webhook.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Engine, insert, select

from hashguard.legal.profiles import profile
from hashguard.review import actions, webhook
from hashguard.review.model import PERMANENT, Action, ActionKind, NotFound, ReviewError
from hashguard.store import audit
from hashguard.store.tables import NoticeRow, ReviewVoteRow, ServiceRow, utc

LANGUAGES: Final = ("en", "nl")

_DONE: Final = {
    "en": {
        ActionKind.REMOVE: "removed the file you uploaded",
        ActionKind.DISABLE: "disabled access to the file you uploaded",
        ActionKind.SUSPEND: "suspended your account",
    },
    "nl": {
        ActionKind.REMOVE: "het bestand dat u uploadde verwijderd",
        ActionKind.DISABLE: "de toegang tot het bestand dat u uploadde geblokkeerd",
        ActionKind.SUSPEND: "uw account geschorst",
    },
}

_TEXT: Final = {
    "en": """Statement of reasons

On {date}, {service} {done}.

Why: {why} This decision is about the file; it does not say that you made it or knew what it \
was.

Legal basis: {legal_basis}.

What you can do:
1. Complain to {service}: {complaint_url} (until {complaint_until}). Someone other than the \
person who made this decision will look at it again. If they find it was wrong, it is reversed.
2. Complain to the data protection authority: {dpa}.
3. Go to court: {court}.

Reference: {reference}
""",
    "nl": """Verklaring van redenen

Op {date} heeft {service} {done}.

Waarom: {why} Dit besluit gaat over het bestand; het zegt niet dat u het gemaakt hebt of wist \
wat het was.

Rechtsgrond: {legal_basis}.

Wat u kunt doen:
1. Een klacht indienen bij {service}: {complaint_url} (tot {complaint_until}). Iemand anders \
dan degene die dit besluit nam, bekijkt het opnieuw. Blijkt het onjuist, dan wordt het \
teruggedraaid.
2. Een klacht indienen bij de toezichthouder op de bescherming van persoonsgegevens: {dpa}.
3. Naar de rechter stappen: {court}.

Kenmerk: {reference}
""",
}

# Why, as it happened: a reviewed match, an exact copy confirmed by the legal profile alone,
# or a flag (a user's or a classifier's) that a person reviewed.
_WHY: Final = {
    ("en", "reviewed"): "the file matched an entry of a list of known child sexual abuse "
    "material ({list_owner}), by {technology}. A person at {service} reviewed the match and "
    "confirmed it on {decided}.",
    ("en", "exact"): "the file is an exact copy of a file on a list of known child sexual abuse "
    "material ({list_owner}), found by {technology} on {decided}.",
    ("en", "flag"): "the file was flagged ({technology}), and a person at {service} reviewed it "
    "and confirmed on {decided} that it is child sexual abuse material.",
    ("nl", "reviewed"): "het bestand kwam overeen met een vermelding op een lijst van bekend "
    "materiaal van seksueel misbruik van kinderen ({list_owner}), via {technology}. Een "
    "medewerker van {service} heeft de overeenkomst op {decided} bekeken en bevestigd.",
    ("nl", "exact"): "het bestand is een exacte kopie van een bestand op een lijst van bekend "
    "materiaal van seksueel misbruik van kinderen ({list_owner}), gevonden via {technology} op "
    "{decided}.",
    ("nl", "flag"): "het bestand werd gemeld ({technology}), en een medewerker van {service} "
    "heeft het bekeken en op {decided} bevestigd dat het materiaal van seksueel misbruik van "
    "kinderen is.",
}
REDACTED: Final = "[your personal link]"  # the stored text: the link goes only to the user

_DPA: Final = {
    ("en", "NL"): "the Autoriteit Persoonsgegevens, autoriteitpersoonsgegevens.nl",
    ("nl", "NL"): "de Autoriteit Persoonsgegevens, autoriteitpersoonsgegevens.nl",
    ("en", ""): "the data protection authority of your country (listed at edpb.europa.eu)",
    ("nl", ""): "de toezichthouder in uw land (te vinden via edpb.europa.eu)",
}
_COURT: Final = {
    "en": "the court of the country where you live",
    "nl": "de rechter (in Nederland: de rechtbank van uw woonplaats)",
}


@dataclass(frozen=True)
class Notice:
    id: int
    detection_id: int
    language: str
    text: str
    created_at: datetime
    complaint_until: datetime


def act(
    engine: Engine,
    detection_id: int,
    kind: ActionKind,
    actor: str,
    reason: str,
    complaint_url: str,
    language: str = "en",
    country: str = "",
    list_owner: str = "",
) -> tuple[Action, Notice, str]:
    """Take a permanent action on a confirmed detection and issue its statement of reasons, in
    one transaction. ``complaint_url`` gets the complaint token appended; the text with the
    link goes to the user through the service's webhook, the stored text has the link
    redacted, and only the token's hash is kept. Returns the action, the notice (stored text)
    and the token. Raises ReviewError as ``actions.take`` does, or for a language hashguard has
    no text in."""
    if kind not in PERMANENT:
        raise ReviewError(f"{kind.value} is not a decision a user is notified of")
    if language not in LANGUAGES:
        raise ReviewError(f"language {language!r}: statements exist in {', '.join(LANGUAGES)}")
    token = secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    with engine.begin() as connection:  # the action and its statement: both or neither
        action = actions.take_in(connection, detection_id, kind, actor, reason)
        row = actions.locked(connection, detection_id)
        service = connection.execute(
            select(ServiceRow.__table__).where(ServiceRow.__table__.c.id == row["service_id"])
        ).one()
        legal = profile(service.legal_profile)
        until = now + timedelta(days=legal.complaint_days)
        votes = ReviewVoteRow.__table__
        reviewed = connection.execute(
            select(votes.c.id).where(votes.c.detection_id == detection_id).limit(1)
        ).first()
        how = "flag" if row["source"] != "match" else ("reviewed" if reviewed else "exact")
        facts = {
            "service": service.name,
            "list_owner": list_owner or row["list"] or "-",
            "technology": row["technology"],
            "decided": utc(row["decided_at"]).date().isoformat() if row["decided_at"] else "-",
        }
        link = f"{complaint_url.rstrip('/')}/{token}"

        def text_with(url: str) -> str:
            return _TEXT[language].format(
                date=now.date().isoformat(),
                done=_DONE[language][kind],
                why=_WHY[(language, how)].format(**facts),
                legal_basis=legal.legal_basis,
                complaint_url=url,
                complaint_until=until.date().isoformat(),
                dpa=_DPA.get((language, country.upper()), _DPA[(language, "")]),
                court=_COURT[language],
                reference=f"{service.name}-{detection_id}-{action.id}",
                **facts,
            )

        kept = text_with(REDACTED)  # the token is the user's: only its hash is stored
        key = connection.execute(
            insert(NoticeRow).values(detection_id=detection_id, language=language, text=kept,
                                     created_at=now, token_hash=token_hash(token),
                                     complaint_until=until)
        ).inserted_primary_key  # fmt: skip
        assert key is not None
        notice = Notice(int(key[0]), detection_id, language, kept, now, until)
        webhook.enqueue(
            connection, row["service_id"], "notice",
            {"notice": notice.id, "detection": detection_id, "action": action.id,
             "account_ref": row["account_ref"], "content_ref": row["content_ref"],
             "language": language, "text": text_with(link), "complaint_url": link},
            f"notice-{notice.id}", until + actions.DELIVERY_KEPT, detection_id=detection_id,
        )  # fmt: skip
        audit.append(connection, actor, "notice.issue", f"detection:{detection_id}",
                     {"notice": notice.id, "action": action.id, "language": language})  # fmt: skip
    return action, notice, token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def notices(engine: Engine, detection_id: int) -> list[Notice]:
    table = NoticeRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(table).where(table.c.detection_id == detection_id).order_by(table.c.id)
        ).all()
    return [_notice(r) for r in rows]


def by_token(engine: Engine, token: str) -> Notice:
    """The notice a complaint link belongs to. Raises NotFound (also once it is purged)."""
    table = NoticeRow.__table__
    with engine.connect() as connection:
        row = connection.execute(
            select(table).where(table.c.token_hash == token_hash(token))
        ).one_or_none()
    if row is None:
        raise NotFound("no decision belongs to this link (it may have been deleted)")
    return _notice(row)


def _notice(r: object) -> Notice:
    m = r._mapping  # type: ignore[attr-defined]
    return Notice(m["id"], m["detection_id"], m["language"], m["text"], utc(m["created_at"]),
                  utc(m["complaint_until"]))  # fmt: skip
