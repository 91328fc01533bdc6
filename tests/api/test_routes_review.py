"""Nothing fails silently, through a real ``hashguard serve``: a service whose webhook answers
500 (a real receiver on loopback) and one whose webhook's name does not resolve
(``nothing.invalid``). Each failure is in the server's log with its reason, counted in
``/metrics`` (attempts by outcome, what is pending and for how long), and shown on the
detection, which says ``quarantined`` only once its service took the quarantine. Benign test
hashes only."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.review.services import ServiceStore
from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.lists import ListStore

from support.loopback import Loopback
from support.metrics import sample
from support.server import Server, running
from support.waiting import eventually

KNOWN = "f" * 32 + "0" * 32


@pytest.fixture
def receiver() -> Iterator[Loopback]:
    """A service's webhook endpoint, down (500) until its answer is replaced."""
    made = Loopback(lambda path, headers, body: (500, "text/plain", b"down for maintenance"))
    yield made
    made.close()


@pytest.fixture
def world(engine: Engine, database_url: str, receiver: Loopback) -> Iterator[tuple]:
    lists = ListStore(engine)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("known", [Submission("pdq", KNOWN, frozenset({"A1"}))])
    services = ServiceStore(engine)
    services.create("photos", webhook_url=receiver.url + "/hook")
    services.create("videos", webhook_url="http://nothing.invalid/hook")
    keys = ApiKeyStore(engine)
    tokens = {name: keys.create(Role.MATCHER, name=f"{name} upload check", service=name)[1]
              for name in ("photos", "videos")}  # fmt: skip
    with running(database_url) as server:
        yield server, tokens


def detected(server: Server, token: str, ref: str) -> int:
    answer = server.post("/v1/match/hashes", None, headers={"Authorization": f"Bearer {token}"},
                         json={"hashes": [{"signal": "pdq", "value": KNOWN,
                                           "content_ref": ref}]})  # fmt: skip
    assert answer.status_code == 200 and answer.json()["matched"] == 1, answer.text
    [found] = [d for d in server.get("/v1/detections", "reviewer").json()["detections"]
               if d["content_ref"] == ref]  # fmt: skip
    return int(found["id"])


def metric(server: Server, name: str, **labels: str) -> float | None:
    return sample(server.get("/metrics", "auditor").text, name, **labels)


def test_failed_webhook_calls_are_logged_counted_and_shown_on_the_detection(
    world, receiver: Loopback
) -> None:
    server, tokens = world
    photo = detected(server, tokens["photos"], "photo-1")
    video = detected(server, tokens["videos"], "video-1")
    # The log says why, naming the call, the detection and the service.
    assert server.wait_for_log(f"about detection {photo}) to service photos failed: "
                               "HTTP 500 Internal Server Error"), "".join(server.log)  # fmt: skip
    assert server.wait_for_log(f"about detection {video}) to service videos failed: "
                               "cannot resolve nothing.invalid"), "".join(server.log)  # fmt: skip
    # The detection: asked, not taken; the call pending with its attempts and last error.
    shown = server.get(f"/v1/detections/{photo}", "reviewer").json()
    assert shown["quarantined"] is False and shown["quarantine_requested"] is True
    [call] = shown["deliveries"]
    assert call["kind"] == "webhook" and call["event"] == "action.taken"
    assert call["state"] == "pending" and call["attempts"] >= 1
    assert call["last_error"] == "HTTP 500 Internal Server Error"
    assert call["delivered_at"] is None and call["next_attempt_at"] is not None
    [unresolved] = server.get(f"/v1/detections/{video}", "reviewer").json()["deliveries"]
    assert unresolved["last_error"].startswith("cannot resolve nothing.invalid")
    queue = {d["id"]: d for d in server.get("/v1/detections", "reviewer").json()["detections"]}
    assert not queue[photo]["quarantined"] and not queue[video]["quarantined"]
    # Counted: failures, two calls pending, the oldest waiting.
    assert (metric(server, "hashguard_deliveries_total", kind="webhook", outcome="failure")
            or 0) >= 2  # fmt: skip
    assert eventually(lambda: metric(server, "hashguard_deliveries_pending", kind="webhook") == 2)
    assert (metric(server, "hashguard_deliveries_oldest_pending_seconds", kind="webhook")
            or 0) > 0  # fmt: skip
    assert metric(server, "hashguard_deliveries_pending", kind="report") == 0
    # The service is back: the quarantine is delivered at its next attempt, and only then shown.
    receiver.answer = lambda path, headers, body: (204, "text/plain", b"")
    taken = eventually(lambda: server.get(f"/v1/detections/{photo}", "reviewer").json()
                       ["quarantined"])  # fmt: skip
    assert taken is True
    [call] = server.get(f"/v1/detections/{photo}", "reviewer").json()["deliveries"]
    assert call["state"] == "delivered" and call["last_error"] == ""
    assert (metric(server, "hashguard_deliveries_total", kind="webhook", outcome="success")
            or 0) == 1  # fmt: skip
    assert eventually(lambda: metric(server, "hashguard_deliveries_pending", kind="webhook") == 1)
