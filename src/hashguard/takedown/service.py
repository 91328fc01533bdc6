"""Notice and takedown put together: one object the service, the pages and the CLI use.

``TakedownSettings`` is what an operator sets (``hashguard serve``'s takedown section, as plain
values); ``Takedown`` reads what they name (the signing key, made on first start with its public
key beside it; the legal profile; the escalation ladder: each error names its file and line,
before anything starts) and builds the parts over the hotline's (its registry of hosters, its
crawler and tracer): the deliveries (e-mail and hosters' APIs), the notices, the scheduler that
drives them and the monitor that measures them. ``start()`` runs the scheduler.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from hashguard import durable
from hashguard.errors import HashguardError, Invalid
from hashguard.hotline.service import Hotline
from hashguard.legal.profiles import DEFAULT, profile
from hashguard.net.fetch import Network
from hashguard.takedown import ladder
from hashguard.takedown.delivery import Deliveries, SmtpSettings
from hashguard.takedown.model import Clock, Timing, now
from hashguard.takedown.monitor import Monitor
from hashguard.takedown.notice import Sender, parse_reply
from hashguard.takedown.notices import Notices
from hashguard.takedown.scheduler import Scheduler
from hashguard.transparency import keys

log = logging.getLogger("hashguard.takedown")

CDN_ACTOR: Final = "cdn api"  # who names an origin read from a CDN's API reply


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
                  settings.country)  # fmt: skip


def signing_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``, made (with ``path.pub`` beside it) when there is none. Raises
    KeyFileError naming the file."""
    path = Path(path)
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
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.hosters = hotline.hosters
        self.timing = timing(settings)
        self.key = signing_key(settings.key)
        self.public_key = keys.public_hex(self.key)
        self.sender = sender(settings)
        self.deliveries = Deliveries(
            engine, smtp(settings.smtp, settings.timeout), settings.networks, clock=clock,
            on_reply=self._replied, timeout=settings.timeout,
        )  # fmt: skip
        self.notices = Notices(engine, self.timing, hotline.hosters, self.sender, self.key,
                               self.deliveries, clock=clock, trace=hotline.trace)  # fmt: skip
        self.scheduler = Scheduler(engine, self.notices, self.deliveries, hotline.crawl,
                                   self.timing, hotline.hosters, clock=clock)  # fmt: skip
        self.monitor = Monitor(engine, clock=clock)

    def _replied(self, notice_id: int, text: str) -> None:
        """A hoster's or CDN's API answered a delivery: a CDN naming the origin sends the
        notice on to the origin's hoster."""
        try:
            reply = parse_reply(text)
            if reply.origin:
                self.notices.origin(notice_id, None, CDN_ACTOR, reply.origin)
        except HashguardError as error:  # a reply that says nothing usable, a notice moved on
            log.info("notice %d: the API's reply was not used: %s", notice_id, error)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
