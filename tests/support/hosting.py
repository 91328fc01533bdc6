"""Simulated hosters for the takedown tests: each a real HTTP server on its own loopback address
(``support.website``), serving a gallery page and benign generated images (``support.media``),
with an abuse API (``POST /abuse/notices``) that keeps every notice it receives (headers, body,
the JSON) and answers what the test sets (a ticket by default; a malformed answer on request).
Notices by e-mail reach a hoster through ``Hosting.take_mail`` (the test hands it what its SMTP
server received).

What a hoster does with a notice is its ``Behaviour``, timed by the TEST's clock (``MovingClock``:
the test moves it; nothing sleeps): ``removes_after(hours)`` serves 404 for the noticed paths
once the clock passes the first notice + hours; ``never_removes()``; ``claims_but_keeps()`` (its
API answer says removed, and the test claims removal on its behalf, yet the content stays);
``removes_then_reuploads(after_days)`` (gone an hour after the notice, back ``after_days`` after
it; a notice after that removes it again); ``Hosting.changes()`` lists the moments what they
serve changes (where a test moves its clock to). A ``CdnFront`` serves its origin's content on
its own address and answers its API with the origin's address (``{"origin": "127.x.y.z"}``). A
``Network`` is an upstream (transit) a hoster names as its ``upstream``: where the ladder's
first escalation goes.

    with hosting(clock) as world:
        quick = world.hoster("Quick Hosting", removes_after(1))
        origin = world.hoster("Origin Hosting", removes_after(2))
        edge = world.cdn("Edge CDN", origin)
        transit = world.network("Transit Net")
        world.hoster("Slow Hosting", never_removes(), upstream=transit)
        (tmp_path / "hosters.toml").write_text(world.registry())
        with DnsServer(world.zone()) as dns: ...

Addresses are 127.77.N.10 (N the hoster's number), AS 65000 + N; host names ``www.SLUG.test``
(behind a CDN: a CNAME to ``SLUG.edge.CDNSLUG.test``, the CDN's address)."""

import email
import email.policy
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from support.media import jpeg
from support.website import Page, Website

API_PATH = "/abuse/notices"
URL = re.compile(r"https?://[^\s\"'<>\\\])]+")


class MovingClock:
    """The test's clock: starts at ``start``, moves only when the test moves it (a Clock)."""

    def __init__(self, start: datetime = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock keeps timezone-aware times")
        self.at = start
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            return self.at

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by ``delta`` (or ``hours=``, ``days=``...); the new time."""
        step = delta if delta is not None else timedelta(**parts)
        if step < timedelta(0):
            raise ValueError("the clock does not go back")
        with self.lock:
            self.at += step
            return self.at

    def set(self, at: datetime) -> datetime:
        with self.lock:
            if at < self.at:
                raise ValueError("the clock does not go back")
            self.at = at
            return self.at


@dataclass(frozen=True)
class Behaviour:
    """What a hoster does with noticed content."""

    name: str
    removal: timedelta | None  # after the first notice; None: never removed
    back: timedelta | None = None  # re-uploaded this long after the first notice
    claims: bool = False  # says it removed the content (its API answer, the portal) but keeps it


def removes_after(hours: float) -> Behaviour:
    return Behaviour(f"removes after {hours:g} h", timedelta(hours=hours))


def never_removes() -> Behaviour:
    return Behaviour("never removes", None)


def claims_but_keeps() -> Behaviour:
    return Behaviour("claims but keeps", None, claims=True)


def removes_then_reuploads(after_days: float, hours: float = 1) -> Behaviour:
    if timedelta(days=after_days) <= timedelta(hours=hours):
        raise ValueError("the re-upload comes after the removal")
    return Behaviour(f"removes after {hours:g} h, re-uploads after {after_days:g} days",
                     timedelta(hours=hours), timedelta(days=after_days))  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """What the abuse API answers: ``body`` bytes as they are, anything else as JSON."""

    status: int = 200
    body: Any = field(default_factory=dict)
    content_type: str = "application/json"

    def page(self) -> Page:
        data = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        return Page(data, self.content_type, self.status)


# Answers no abuse desk should give: the code that reads them must say so, not fail.
MALFORMED: Mapping[str, Answer] = {
    "not json": Answer(200, b'{"ticket": "T-1", '),
    "a list": Answer(200, b'["removed"]'),
    "html": Answer(200, b"<html><body>Thanks!</body></html>", "text/html"),
    "bad origin": Answer(200, {"origin": "not-an-address"}),
    "server error": Answer(500, b"Internal Server Error", "text/plain"),
    "refused": Answer(403, {"error": "unknown reporter"}),
    "huge": Answer(200, {"ticket": "T" * 50_000}),
}  # fmt: skip


@dataclass(frozen=True)
class Received:
    """A notice as a hoster received it."""

    at: datetime  # the test's clock
    channel: str  # "api" or "smtp"
    headers: Mapping[str, str]
    body: bytes  # the request body, or the whole e-mail
    document: Any  # the API body's JSON, the e-mail's notice.json (None: not readable)
    attachments: Mapping[str, bytes]  # an e-mail's, by file name
    text: str  # the e-mail's text parts, or the API body decoded
    paths: tuple[str, ...]  # the hoster's own paths it names


Reply = Answer | Callable[[Received], Answer] | None


class _Desk:
    """An abuse desk on its own loopback address: receives notices, answers its API."""

    def __init__(self, name: str, number: int, clock: MovingClock, country: str | None,
                 api: bool, mail: bool, reply: Reply,
                 upstream: "_Desk | None" = None) -> None:  # fmt: skip
        self.name = name
        self.upstream = upstream
        self.number = number
        self.slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.address = f"127.77.{number}.10"
        self.asn = 65000 + number
        self.country = country
        self.clock = clock
        self.reply = reply
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        self.site = Website(self.page, self.address, self.posted)
        self.port = self.site.port
        self.abuse_api = f"http://{self.address}:{self.port}{API_PATH}" if api else None
        self.abuse_email = f"abuse@{self.slug}.test" if mail else None
        self.host = f"www.{self.slug}.test"

    cdn = False

    # --- serving ------------------------------------------------------------------------------

    def page(self, path: str) -> Page | None:
        raise NotImplementedError

    def own(self, path: str) -> bool:
        """Whether ``path`` is content this desk's notices are about."""
        raise NotImplementedError

    def posted(self, path: str, headers: dict[str, str], body: bytes) -> Page:
        if path != API_PATH or self.abuse_api is None:
            return Page(b"not found", "text/plain", 404)
        text = body.decode("utf-8", "replace")
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        received = self._record("api", headers, body, document, {}, text)
        return self.answer(received).page()

    def answer(self, received: Received) -> Answer:
        if callable(self.reply):
            return self.reply(received)
        if self.reply is not None:
            return self.reply
        return Answer(200, {"ticket": f"{self.slug}-{len(self.received)}"})

    # --- receiving ----------------------------------------------------------------------------

    def take_mail(self, data: bytes) -> Received:
        """A notice by e-mail (the whole message as the SMTP server received it)."""
        message = email.message_from_bytes(data, policy=email.policy.default)
        texts: list[str] = []
        attachments: dict[str, bytes] = {}
        for part in message.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename:
                attachments[filename] = payload
            elif part.get_content_maintype() == "text":
                texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
        document = None
        if "notice.json" in attachments:
            try:
                document = json.loads(attachments["notice.json"])
            except ValueError:
                document = None
        headers = {name: str(value) for name, value in message.items()}
        text = "\n".join(texts)
        scanned = "\n".join([text, *(a.decode("utf-8", "replace") for a in attachments.values())])
        return self._record("smtp", headers, data, document, attachments, scanned)

    def _record(self, channel: str, headers: Mapping[str, str], body: bytes, document: Any,
                attachments: Mapping[str, bytes], text: str) -> Received:  # fmt: skip
        found = (urlsplit(url.rstrip(".,;:!?")) for url in URL.findall(text))  # a sentence's end
        named = dict.fromkeys(u.path + (f"?{u.query}" if u.query else "") for u in found)
        received = Received(self.clock(), channel, dict(headers), body, document, attachments,
                            text, tuple(p for p in named if self.own(p)))  # fmt: skip
        with self.arrived:
            self.received.append(received)
            self.noticed(received)
            self.arrived.notify_all()
        return received

    def noticed(self, received: Received) -> None:
        pass

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Whether ``count`` notices have arrived (within ``timeout`` seconds)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.received) >= count, timeout)

    # --- describing -------------------------------------------------------------------------

    def entry(self) -> dict[str, Any]:
        """Its table in the hosters registry (hotline/hosters.py)."""
        entry: dict[str, Any] = {"name": self.name}
        if self.country:
            entry["country"] = self.country
        entry["asns"] = [self.asn]
        entry["networks"] = [f"{self.address}/32"]
        if self.abuse_email:
            entry["abuse_email"] = self.abuse_email
        if self.abuse_api:
            entry["abuse_api"] = self.abuse_api
        entry["cdn"] = self.cdn
        if self.upstream is not None:
            entry["upstream"] = self.upstream.name
        return entry

    def close(self) -> None:
        self.site.close()


class SimulatedHoster(_Desk):
    """A hoster serving one gallery (a page and its images) at ``www.SLUG.test``."""

    def __init__(self, name: str, number: int, clock: MovingClock, behaviour: Behaviour, *,
                 country: str | None = "NL", images: int = 2, seeds: Sequence[int] = (),
                 api: bool = True, mail: bool = True, reply: Reply = None,
                 upstream: "_Desk | None" = None) -> None:  # fmt: skip
        super().__init__(name, number, clock, country, api, mail, reply, upstream)
        self.behaviour = behaviour
        self.front: CdnFront | None = None
        seeds = tuple(seeds) or tuple(1000 + 10 * number + k for k in range(images))
        self.images = {f"/{self.slug}/{k}.jpg": jpeg(seed) for k, seed in enumerate(seeds)}
        self.page_path = f"/{self.slug}/gallery.html"
        tags = "".join(f'<img src="{path}">' for path in self.images)
        self.gallery = f"<html><body><h1>{name}</h1>{tags}</body></html>".encode()
        self.notices: dict[str, list[datetime]] = {}  # path -> when notices named it

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.page_path, *self.images)

    def url(self, path: str) -> str:
        """The public URL of ``path`` (through the CDN when fronted)."""
        port = self.front.port if self.front is not None else self.port
        return f"http://{self.host}:{port}{path}"

    @property
    def page_url(self) -> str:
        return self.url(self.page_path)

    @property
    def image_urls(self) -> list[str]:
        return [self.url(path) for path in self.images]

    def own(self, path: str) -> bool:
        return path in self.paths

    def noticed(self, received: Received) -> None:
        for path in received.paths:
            self.notices.setdefault(path, []).append(received.at)

    def answer(self, received: Received) -> Answer:
        if self.reply is None and self.behaviour.claims:
            return Answer(200, {"ticket": f"{self.slug}-{len(self.received)}",
                                "status": "removed"})  # fmt: skip
        return super().answer(received)

    def serves(self, path: str, at: datetime | None = None) -> bool:
        """Whether ``path`` is served at ``at`` (the clock's now), as the behaviour says."""
        if not self.own(path):
            return False
        at = at or self.clock()
        with self.arrived:
            times = sorted(t for t in self.notices.get(path, ()) if t <= at)
        removal, back = self.behaviour.removal, self.behaviour.back
        if not times or removal is None or at < times[0] + removal:
            return True
        if back is None or at < times[0] + back:
            return False
        again = [t for t in times if t >= times[0] + back]  # noticed after the re-upload
        return not again or at < again[0] + removal

    def changes(self) -> list[datetime]:
        """The moments, from the notices received so far, at which what this hoster serves
        changes (a removal, a re-upload, a removal after a notice of the re-upload)."""
        removal, back = self.behaviour.removal, self.behaviour.back
        if removal is None:
            return []
        with self.arrived:
            noticed = [sorted(times) for times in self.notices.values()]
        moments = []
        for times in noticed:
            moments.append(times[0] + removal)
            if back is not None:
                moments.append(times[0] + back)
                moments.extend(t + removal for t in times if t >= times[0] + back)
        return moments

    def removed_at(self, path: str) -> datetime | None:
        """When ``path`` first stopped being served (None: not yet noticed or never removed)."""
        times = self.notices.get(path)
        if not times or self.behaviour.removal is None:
            return None
        return min(times) + self.behaviour.removal

    def page(self, path: str) -> Page | None:
        if not self.serves(path):
            return None  # 404
        if path == self.page_path:
            return Page(self.gallery)
        return Page(self.images[path], "image/jpeg")


class CdnFront(_Desk):
    """A CDN in front of ``origin``: serves what the origin serves, on the CDN's address, and
    answers its abuse API with the origin's address."""

    cdn = True

    def __init__(self, name: str, number: int, clock: MovingClock, origin: SimulatedHoster, *,
                 country: str | None = None, api: bool = True, mail: bool = True,
                 reply: Reply = None) -> None:  # fmt: skip
        super().__init__(name, number, clock, country, api, mail, reply)
        if origin.front is not None:
            raise ValueError(f"{origin.name} is already behind {origin.front.name}")
        self.origin = origin
        origin.front = self

    def own(self, path: str) -> bool:
        return self.origin.own(path)

    def answer(self, received: Received) -> Answer:
        if self.reply is None:
            return Answer(200, {"ticket": f"{self.slug}-{len(self.received)}",
                                "origin": self.origin.address})  # fmt: skip
        return super().answer(received)

    def page(self, path: str) -> Page | None:
        return self.origin.page(path)

    @property
    def edge(self) -> str:
        """The name the origin's host is a CNAME to."""
        return f"{self.origin.slug}.edge.{self.slug}.test"


class Network(_Desk):
    """An upstream network (transit): an abuse desk with no content of its own; escalations
    to it are kept in ``received``."""

    def own(self, path: str) -> bool:
        return False

    def page(self, path: str) -> Page | None:
        return None


class Hosting:
    """The hosters of a test, their registry, DNS zone and IP database, and the e-mail router."""

    def __init__(self, clock: MovingClock) -> None:
        self.clock = clock
        self.desks: list[_Desk] = []
        self.other_mail: list[tuple[tuple[str, ...], bytes]] = []  # to no hoster's desk

    def hoster(self, name: str, behaviour: Behaviour, **options: Any) -> SimulatedHoster:
        """A hoster (``SimulatedHoster``'s options: country, images, seeds, api, mail, reply)."""
        desk = SimulatedHoster(name, len(self.desks) + 1, self.clock, behaviour, **options)
        self.desks.append(desk)
        return desk

    def network(self, name: str, **options: Any) -> Network:
        """An upstream network (options: country, api, mail, reply) hosters name as theirs."""
        options = {"country": "NL", "api": True, "mail": True, "reply": None, **options}
        desk = Network(name, len(self.desks) + 1, self.clock, **options)
        self.desks.append(desk)
        return desk

    def cdn(self, name: str, origin: SimulatedHoster, **options: Any) -> CdnFront:
        desk = CdnFront(name, len(self.desks) + 1, self.clock, origin, **options)
        self.desks.append(desk)
        return desk

    def named(self, name: str) -> _Desk:
        return next(desk for desk in self.desks if desk.name == name)

    def take_mail(self, recipients: Sequence[str], data: bytes) -> list[Received]:
        """Hand a message the SMTP server received to the desks it is addressed to; one to
        nobody's desk (a regulator, an upstream) is kept in ``other_mail``."""
        to = {recipient.lower() for recipient in recipients}
        taken = [desk.take_mail(data) for desk in self.desks if desk.abuse_email in to]
        if not taken:
            self.other_mail.append((tuple(recipients), data))
        return taken

    def changes(self) -> list[datetime]:
        """When what any hoster serves changes (``SimulatedHoster.changes``), in order."""
        return sorted(moment for desk in self.desks if isinstance(desk, SimulatedHoster)
                      for moment in desk.changes())  # fmt: skip

    def registry(self) -> str:
        """The hosters registry (TOML, hotline/hosters.py's format)."""
        tables = []
        for desk in self.desks:
            lines = ["[[hoster]]"]
            for key, value in desk.entry().items():
                lines.append(f"{key} = {_toml(value)}")
            tables.append("\n".join(lines) + "\n")
        return "\n".join(tables)

    def names(self) -> dict[str, str]:
        """Host name -> the address it resolves to (the CDN's, for a fronted hoster)."""
        names: dict[str, str] = {}
        for desk in self.desks:
            names[desk.host] = desk.address
            if isinstance(desk, SimulatedHoster) and desk.front is not None:
                names[desk.host] = desk.front.address
                names[f"origin.{desk.slug}.test"] = desk.address
        return names

    def zone(self) -> dict[str, list[str]]:
        """The DNS zone (support.dns) of every host name."""
        zone: dict[str, list[str]] = {}
        for desk in self.desks:
            zone[desk.host] = [f"A {desk.address}"]
            if isinstance(desk, CdnFront):
                zone[desk.origin.host] = [f"CNAME {desk.edge}"]
                zone[desk.edge] = [f"A {desk.address}"]
                zone[f"origin.{desk.origin.slug}.test"] = [f"A {desk.origin.address}"]
        return zone

    def ip2asn(self, date: str = "2027-02-01") -> str:
        """An ip2asn file (hotline/ipdb.py) naming each address's AS and country."""
        lines = [f"# date: {date}"]
        for desk in self.desks:
            lines.append(f"{desk.address}\t{desk.address}\t{desk.asn}\t{desk.country or 'None'}"
                         f"\t{desk.slug.upper()}")  # fmt: skip
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Stop every desk's server, all at once (each waits up to half a second for its
        server's loop to notice)."""
        closing = [threading.Thread(target=desk.close) for desk in self.desks]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()


@contextmanager
def hosting(clock: MovingClock) -> Iterator[Hosting]:
    """A world of hosters (added in the block) until the block ends."""
    world = Hosting(clock)
    try:
        yield world
    finally:
        world.close()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for what the tests use
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")
