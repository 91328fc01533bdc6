"""What the hoster portal's first page lists (``web.hosters.listed``), on SQLite and
PostgreSQL: every open notice, overdue ones first, however many newer closed notices there are;
never another hoster's."""

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from hashguard.hotline.hosters import HosterRegistry
from hashguard.takedown.delivery import Deliveries
from hashguard.takedown.model import Timing
from hashguard.takedown.notice import Sender
from hashguard.takedown.notices import Notices
from hashguard.web.hosters import listed

from support.notice_rows import stored_notice

SENDER = Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_open_notices_never_hide_behind_newer_closed_ones(engine: Engine) -> None:
    notices = Notices(engine, Timing(), HosterRegistry([]), SENDER, Ed25519PrivateKey.generate(),
                      Deliveries(engine, None), clock=lambda: NOW)  # fmt: skip
    late = stored_notice(engine, state="open", deadline_at=NOW - timedelta(hours=3)).id
    waiting = stored_notice(engine, state="open", deadline_at=NOW + timedelta(hours=3)).id
    queued = stored_notice(engine, state="queued", deadline_at=None).id
    closed = [stored_notice(engine, state=state, verified_at=NOW).id
              for state in ("removed", "withdrawn", "forwarded", "removed", "removed")]  # fmt: skip
    stored_notice(engine, hoster="Other Hosting", state="open",
                  deadline_at=NOW - timedelta(hours=9))  # fmt: skip
    shown, done = listed(notices, "Files BV", shown=3, closed_shown=2)
    assert [notice.id for notice in shown] == [late, waiting, queued]
    assert shown[0].overdue and not shown[1].overdue
    assert [notice.id for notice in done] == closed[:-3:-1]
