"""A real SMTP server (aiosmtpd) on a loopback port for tests: what a hoster's abuse desk
receives. Every message accepted is kept, parsed, with its envelope; answers can be scripted
(``refusals``: the next messages are refused with these replies, such as ``451 ...``)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, cast

from aiosmtpd.controller import Controller

from support.waiting import eventually


@dataclass
class Mailbox:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)  # accepted, in order
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # (mail from, rcpt to)
    refusals: list[str] = field(default_factory=list)  # replies to the next DATA commands

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Whether ``count`` messages have been accepted (within ``timeout`` seconds)."""
        return bool(eventually(lambda: len(self.messages) >= count, timeout))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(cast(EmailMessage, message))
        return "250 Message accepted"


class _Controller(Controller):
    """aiosmtpd's controller on a port the system chooses (``port=0``)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 until the block ends; its host, port and what it received."""
    mailbox = Mailbox()
    controller = _Controller(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    mailbox.port = controller.port
    try:
        yield mailbox
    finally:
        controller.stop()
