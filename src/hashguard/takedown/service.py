"""Notice and takedown put together: one object the service, the pages and the CLI use.

``TakedownSettings`` is what an operator sets (``hashguard serve``'s takedown section, as plain
values); ``Takedown`` reads what they name (the signing key, made on first start with its public
key beside it; the legal profile; the escalation ladder: each error names its file and line,
before anything starts) and builds the parts over the hotline's (its registry of hosters, its
crawler and tracer): the deliveries (e-mail and hosters' APIs), the notices, the scheduler that
drives them and the monitor that measures them. ``start()`` runs the scheduler.
"""

import difflib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select

from hashguard import durable
from hashguard.errors import Invalid
from hashguard.hotline.hosters import HosterRegistry
from hashguard.hotline.service import Hotline
from hashguard.legal.profiles import DEFAULT, profile
from hashguard.net.fetch import Network
from hashguard.store.tables import TakedownCheckRow, TakedownNoticeRow
from hashguard.takedown import ladder, outcomes, xarf
from hashguard.takedown.delivery import Deliveries, SmtpSettings
from hashguard.takedown.model import REMOVED_OUTCOMES, Clock, NoticeKind, NoticeState, Timing, now
from hashguard.takedown.monitor import Monitor
from hashguard.takedown.notice import Sender
from hashguard.takedown.notices import NoticeDetail, Notices, NoticeView, UnknownNotice
from hashguard.takedown.scheduler import Scheduler, partner_status
from hashguard.transparency import keys


@dataclass(frozen=True, slots=True)
class TakedownSettings:
    key: Path  # the Ed25519 key notices are signed with (made when missing)
    name: str = "hashguard hotline"  # the sender's name: the hotline's
    country: str = ""  # the hotline's country
    profile: str = DEFAULT  # the legal profile whose deadlines apply
    notice_hours: int = 0  # 0: the profile's
    order_hours: int = 0  # 0: the profile's
    renotice_hours: int = 24
    recheck_days: tuple[int, ...] = (1, 7, 30)
    escalation: Path | None = None  # the ladder file
    smtp: str = ""  # host:port; "": e-mail waits
    sender_email: str = ""  # "": notices@DOMAIN
    domain: str = ""  # "": the public URL's host
    public_url: str = ""  # the service as hosters reach it (the portal, /hosters)
    networks: tuple[Network, ...] = ()  # private networks hosters' APIs may be on (tests)
    timeout: float = 10.0


def timing(settings: TakedownSettings) -> Timing:
    """The deadlines, intervals and ladder ``settings`` name. Raises UnknownProfile,
    LadderError (file and line)."""
    law = profile(settings.profile)
    steps = (ladder.load(settings.escalation, settings.networks)
             if settings.escalation is not None else ())  # fmt: skip
    return Timing(
        notice=timedelta(hours=settings.notice_hours or law.removal_hours),
        order=timedelta(hours=settings.order_hours or law.order_hours),
        renotice=timedelta(hours=settings.renotice_hours),
        rechecks=tuple(timedelta(days=days) for days in settings.recheck_days),
        ladder=steps,
    )


def smtp(address: str, timeout: float) -> SmtpSettings | None:
    """The mail server ``host:port`` names (None for ""). Raises Invalid for another form."""
    if not address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise Invalid(f"takedown_smtp {address!r}: expected host:port")
    return SmtpSettings(host.strip("[]"), int(port), timeout=timeout)


def sender(settings: TakedownSettings) -> Sender:
    """Who notices say they are from: the hotline, its address and domain."""
    domain = settings.domain or urlsplit(settings.public_url).hostname or "localhost"
    return Sender(settings.name, settings.sender_email or f"notices@{domain}", domain,
                  settings.country, settings.public_url)  # fmt: skip


def check_hoster(registry: HosterRegistry, name: str) -> None:
    """Raise Invalid when the registry of hosters does not name ``name`` (a hoster key's
    hoster), with the closest name it has as a hint."""
    if registry.named(name) is not None:
        return
    near = difflib.get_close_matches(name, [hoster.name for hoster in registry], n=1,
                                     cutoff=0.6)  # fmt: skip
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise Invalid(f"hoster {name!r} is not in the registry of hosters{hint}")


class NoKey(Invalid):
    """A command that signs, without the takedown key (``hashguard serve`` makes it)."""


def signing_key(path: Path, make: bool = True) -> Ed25519PrivateKey | None:
    """The key in ``path``, made (with ``path.pub`` beside it) when there is none; without
    ``make`` None then (nothing is written). Raises KeyFileError naming the file."""
    path = Path(path)
    if not make and not path.exists():
        return None
    if not path.exists():
        try:
            keys.generate(path)
        except keys.KeyFileError:
            if not path.exists():  # else another instance made it meanwhile: read that
                raise
    key = keys.load(path)
    public = path.with_name(path.name + ".pub")
    if not public.exists():  # a key made elsewhere: its public half for hosters to fetch
        durable.write(public, (keys.public_hex(key) + "\n").encode())
    return key


class Takedown:
    def __init__(
        self,
        engine: Engine,
        hotline: Hotline,
        settings: TakedownSettings,
        clock: Clock = now,
        make_key: bool = True,
    ) -> None:
        """``make_key``: make the signing key when it is missing (the service); else (the
        CLI) read it when it is there, and without it sign nothing (``export`` refuses)."""
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.hosters = hotline.hosters
        self.timing = timing(settings)
        self.key = signing_key(settings.key, make_key)
        self.public_key = "" if self.key is None else keys.public_hex(self.key)
        self.sender = sender(settings)
        self.deliveries = Deliveries(
            engine, smtp(settings.smtp, settings.timeout), settings.networks, clock=clock,
            on_reply=self._replied, timeout=settings.timeout,
        )  # fmt: skip
        self.notices = Notices(engine, self.timing, hotline.hosters, self.sender, self.key,
                               self.deliveries, clock=clock, trace=hotline.trace)  # fmt: skip
        self.scheduler = Scheduler(engine, self.notices, self.deliveries, hotline.crawl,
                                   self.timing, hotline.hosters, clock=clock,
                                   status=None if self.key is None
                                   else partner_status(self.key))  # fmt: skip
        self.monitor = Monitor(engine, clock=clock)

    def _replied(self, notice_id: int, text: str) -> None:
        """A hoster's or CDN's API answered a delivery (the scheduler reads a CDN's origin)."""
        self.scheduler.reply(notice_id, text)

    # --- what the edges call beyond the parts ------------------------------------------------

    def orders(self, issuer: str | None, limit: int = 100,
               before: int | None = None) -> list[NoticeView]:  # fmt: skip
        """Removal orders newest first: those ``issuer`` issued (an authority), else every one."""
        if issuer is None:
            return self.notices.list(kind=NoticeKind.ORDER.value, limit=limit, before=before)
        table = TakedownNoticeRow.__table__
        query = (select(table.c.id).where(table.c.kind == NoticeKind.ORDER.value,
                                          table.c.issued_by == issuer)
                 .order_by(table.c.id.desc()).limit(limit))  # fmt: skip
        if before is not None:
            query = query.where(table.c.id < before)
        with self.engine.connect() as connection:
            found = list(connection.execute(query).scalars())
        return [self.notices.get(ident).notice for ident in found]

    def order(self, notice_id: int, issuer: str | None) -> NoticeDetail:
        """A removal order (to an ``issuer``, only one it issued). Raises UnknownNotice."""
        table = TakedownNoticeRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table.c.kind, table.c.issued_by)
                                     .where(table.c.id == notice_id)).one_or_none()  # fmt: skip
        if (row is None or row.kind != NoticeKind.ORDER.value
                or (issuer is not None and row.issued_by != issuer)):  # fmt: skip
            raise UnknownNotice(f"no order {notice_id}")
        return self.notices.get(notice_id)

    def export(self, limit: int = 1000, before: int | None = None) -> list[dict[str, Any]]:
        """Composed notices newest first as XARF, each verified removal followed by its outcome
        report (with the re-checks that found it gone, signed). Raises NoKey when there is an
        outcome to sign and no key (read-only use)."""
        table, checks = TakedownNoticeRow.__table__, TakedownCheckRow.__table__
        query = (select(table).where(table.c.document != "").order_by(table.c.id.desc())
                 .limit(limit))  # fmt: skip
        if before is not None:
            query = query.where(table.c.id < before)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            removed = [row.id for row in rows if row.state == NoticeState.REMOVED.value]
            if removed and self.key is None:
                raise NoKey(f"no takedown key at {self.settings.key}: the export signs its "
                            "outcome reports with it (`hashguard serve` makes it on first "
                            "start)")  # fmt: skip
            evidence: dict[int, list[dict[str, Any]]] = {}
            for check in connection.execute(
                select(checks).where(checks.c.notice_id.in_(removed),
                                     checks.c.outcome.in_([o.value for o in REMOVED_OUTCOMES]))
                .order_by(checks.c.id)
            ):  # fmt: skip
                evidence.setdefault(check.notice_id, []).append(dict(check._mapping))
        return list(xarf.export_notices(rows, evidence, self.key))

    def import_reports(self, text: str, source: str, actor: str) -> tuple[int, int]:
        """XARF reports of takedown outcomes from ``source`` kept; (kept, linked to a case).
        Raises ReportsInvalid naming the line and field; nothing is kept then."""
        found = xarf.read_reports(text, source)
        kept = [outcomes.Outcome(report.url or "", report.status, report.at, report.report_id,
                                 {"reporter": report.reporter, "category": report.category,
                                  "type": report.type, "hashes": list(report.hashes)})
                for report in found]  # fmt: skip
        return outcomes.keep(self.engine, source, kept, actor, self.settings.networks,
                             self.clock)  # fmt: skip

    def receive_status(self, partner: str, referral: str, body: Any) -> outcomes.Received:
        """A partner hotline's takedown status of a case referred to it (outcomes.py)."""
        return outcomes.receive_status(self.engine, partner, referral, body, self.clock)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.deliveries.close()
