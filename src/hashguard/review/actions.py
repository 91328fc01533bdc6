"""Actions on a detected item, sent to its service through the webhook outbox.

Before a human confirms, the only action there can be is a quarantine, and only where the
service's legal profile allows it; remove, disable and suspend need a confirmed detection.
Every action can be reversed; a false positive reverses them all at once.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update

from hashguard.legal.profiles import profile
from hashguard.review import webhook
from hashguard.review.model import (
    CONFIRMED_STATES,
    OPEN,
    PERMANENT,
    Action,
    ActionKind,
    NotFound,
    ReviewError,
    State,
)
from hashguard.store import audit
from hashguard.store.counts import bump
from hashguard.store.database import for_update
from hashguard.store.tables import ActionRow, DetectionRow, ServiceRow, utc

DELIVERY_KEPT: Final = timedelta(days=30)  # an outbox call after it was made: for its receipt


def take(engine: Engine, detection_id: int, kind: ActionKind, actor: str, reason: str) -> Action:
    """Ask the service to act on a detection. Raises ReviewError unless a human confirmed it
    (a quarantine needs only an open detection and a profile that allows it) or when the same
    action is in force."""
    with engine.begin() as connection:
        return take_in(connection, detection_id, kind, actor, reason)


def take_in(
    connection: Connection, detection_id: int, kind: ActionKind, actor: str, reason: str
) -> Action:
    """``take`` in the caller's transaction."""
    if not reason.strip():
        raise ReviewError("an action needs a reason (it goes into the statement of reasons)")
    detection = locked(connection, detection_id)
    state = State(detection["state"])
    if kind in PERMANENT and state not in CONFIRMED_STATES:
        raise ReviewError(
            f"detection {detection_id} is {state.value}: {kind.value} needs a reviewer's "
            "confirmation first (until then only a reversible quarantine is possible)"
        )
    if kind is ActionKind.QUARANTINE:
        if state not in OPEN:
            raise ReviewError(f"detection {detection_id} is {state.value}: quarantine is for "
                              "items awaiting review")  # fmt: skip
        service_profile = profile(_service(connection, detection["service_id"]).legal_profile)
        if not service_profile.quarantine:
            raise ReviewError(f"the legal profile {service_profile.name} does not allow quarantine")
    in_force = [a for a in _actions(connection, detection_id) if a.reversed_at is None]
    if any(a.kind is kind for a in in_force):
        raise ReviewError(f"detection {detection_id}: {kind.value} is already in force")
    return record(connection, detection, kind, actor, reason)


def reverse(engine: Engine, action_id: int, actor: str, reason: str) -> Action:
    """Undo one action. Raises NotFound, or ReviewError if it was undone already."""
    with engine.begin() as connection:
        row = connection.execute(
            select(ActionRow.__table__).where(ActionRow.__table__.c.id == action_id)
        ).one_or_none()
        if row is None:
            raise NotFound(f"no action number {action_id}")
        # Whether it is still in force is read under the detection's lock: another reviewer
        # may reverse it between the read above and the lock.
        undone = reverse_all(connection, locked(connection, row.detection_id), actor, reason,
                             only=[action_id])  # fmt: skip
        if not undone:
            raise ReviewError(f"action {action_id} was reversed already")
    return undone[0]


def detection_of(engine: Engine, action_id: int) -> int:
    """The detection an action is on. Raises NotFound."""
    table = ActionRow.__table__
    with engine.connect() as connection:
        found = connection.execute(
            select(table.c.detection_id).where(table.c.id == action_id)
        ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no action number {action_id}")
    return int(found)


def actions(engine: Engine, detection_id: int) -> list[Action]:
    with engine.connect() as connection:
        return _actions(connection, detection_id)


def record(
    connection: Connection, d: Mapping[str, Any], kind: ActionKind, actor: str, reason: str
) -> Action:
    """Store an action on detection row ``d`` and its webhook call, in the caller's
    transaction."""
    now = datetime.now(UTC)
    key = connection.execute(
        insert(ActionRow).values(
            detection_id=d["id"],
            kind=kind.value,
            reason=reason,
            actor=actor,
            taken_at=now,
            reversed_at=None,
            reversal_reason="",
        )
    ).inserted_primary_key
    assert key is not None
    action = Action(int(key[0]), d["id"], kind, reason, actor, now, None, "")
    if kind is ActionKind.QUARANTINE:
        connection.execute(
            update(DetectionRow)
            .where(DetectionRow.__table__.c.id == d["id"])
            .values(quarantined=True)
        )
    webhook.enqueue(
        connection, d["service_id"], "action.taken", _payload(d, action), f"action-{action.id}",
        now + DELIVERY_KEPT, detection_id=d["id"],
    )  # fmt: skip
    bump(connection, now, "actions", kind.value)
    audit.append(connection, actor, f"action.{kind.value}", f"detection:{d['id']}",
                 {"action": action.id, "reason": reason})  # fmt: skip
    return action


def reverse_all(
    connection: Connection,
    d: Mapping[str, Any],
    actor: str,
    reason: str,
    only: Sequence[int] | None = None,
) -> list[Action]:
    """Undo every action in force on detection row ``d`` (or those numbered in ``only``), in
    the caller's transaction; the service is told of each."""
    now = datetime.now(UTC)
    undone = []
    for action in _actions(connection, d["id"]):
        if action.reversed_at is not None or (only is not None and action.id not in only):
            continue
        connection.execute(
            update(ActionRow)
            .where(ActionRow.__table__.c.id == action.id)
            .values(reversed_at=now, reversal_reason=reason)
        )
        reversed_action = Action(action.id, action.detection_id, action.kind, action.reason,
                                 action.actor, action.taken_at, now, reason)  # fmt: skip
        webhook.enqueue(
            connection, d["service_id"], "action.reversed", _payload(d, reversed_action),
            f"action-{action.id}-reversed", now + DELIVERY_KEPT, detection_id=d["id"],
        )  # fmt: skip
        bump(connection, now, "actions_reversed", action.kind.value)
        audit.append(connection, actor, f"action.{action.kind.value}.reversed",
                     f"detection:{d['id']}", {"action": action.id, "reason": reason})  # fmt: skip
        undone.append(reversed_action)
    if any(a.kind is ActionKind.QUARANTINE for a in undone):
        connection.execute(
            update(DetectionRow)
            .where(DetectionRow.__table__.c.id == d["id"])
            .values(quarantined=False)
        )
    return undone


def _payload(d: Mapping[str, Any], action: Action) -> dict[str, object]:
    return {
        "action": action.id,
        "kind": action.kind.value,
        "detection": d["id"],
        "content_ref": d["content_ref"],
        "account_ref": d["account_ref"],
        "reason": action.reversal_reason if action.reversed_at else action.reason,
        "at": (action.reversed_at or action.taken_at).isoformat(),
    }


def locked(connection: Connection, detection_id: int) -> Any:
    """Detection row ``detection_id``, locked until the transaction ends (``for_update``), so
    that what is checked on it still holds when the transaction writes. Raises NotFound."""
    table = DetectionRow.__table__
    where = table.c.id == detection_id
    row = connection.execute(for_update(connection, select(table).where(where),
                                        DetectionRow.decision_reason,
                                        where)).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"no detection number {detection_id} (it may have been purged)")
    return row._mapping


def _service(connection: Connection, service_id: int) -> Any:
    table = ServiceRow.__table__
    return connection.execute(select(table).where(table.c.id == service_id)).one()


def _actions(connection: Connection, detection_id: int) -> list[Action]:
    table = ActionRow.__table__
    rows = connection.execute(
        select(table).where(table.c.detection_id == detection_id).order_by(table.c.id)
    ).all()
    return [
        Action(
            r.id,
            r.detection_id,
            ActionKind(r.kind),
            r.reason,
            r.actor,
            utc(r.taken_at),
            utc(r.reversed_at) if r.reversed_at else None,
            r.reversal_reason,
        )
        for r in rows
    ]
