"""Notice and takedown's routes through a real ``hashguard serve`` process with a hotline (NL),
on SQLite and PostgreSQL, with notices stored as routing leaves them: a hoster key sees and acts
on its own hoster's notices only (another's is answered as one that does not exist), an
authority issues removal orders and sees its own, an analyst withdraws, every key reads the
public key, a hoster's re-upload check learns only which list a hash is on, and a partner's
takedown status of a referral is kept once, its signature checked. Refusals say why."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select

from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from hashguard.store.tables import HotlineCaseRow, HotlineOutboxRow, TakedownOutcomeRow
from hashguard.takedown import signing

from support.database import scratch_database
from support.notice_rows import stored_notice
from support.server import Server, running
from support.waiting import eventually

HOSTERS = """\
[[hoster]]
name = "test hoster"
country = "NL"
networks = ["192.0.2.0/24"]
abuse_email = "abuse@test-hoster.example"

[[hoster]]
name = "Other Hosting"
country = "NL"
networks = ["198.51.100.0/24"]
abuse_email = "abuse@other.example"
"""
MD5 = "0123456789abcdef0123456789abcdef"
REFERRAL = "5f0c2b8e9a7d41c3b6e2f1a0d9c8b7a6"


class Served:
    def __init__(self, server: Server, mine: int, theirs: int, other_hoster: str,
                 other_authority: str) -> None:  # fmt: skip
        self.server = server
        self.mine = mine  # a notice to "test hoster", the server's hoster key's
        self.theirs = theirs  # one to "Other Hosting"
        self.other_hoster = other_hoster  # a key of "Other Hosting"
        self.other_authority = other_authority

    def as_(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # fmt: skip
    directory = tmp_path_factory.mktemp("takedown")
    (directory / "hosters.toml").write_text(HOSTERS)
    with scratch_database(request.param, directory) as url:
        engine = open_engine(url)
        later = datetime.now(UTC) + timedelta(days=300)  # the scheduler leaves them be
        mine = stored_notice(engine, hoster="test hoster", state="open", next_action_at=later)
        theirs = stored_notice(engine, hoster="Other Hosting", state="open",
                               next_action_at=later)  # fmt: skip
        keys = ApiKeyStore(engine)
        other = keys.create(Role.HOSTER, name="other", hoster="Other Hosting")[1]
        authority = keys.create(Role.AUTHORITY, name="another authority")[1]
        with engine.begin() as connection:
            case = connection.execute(insert(HotlineCaseRow).values(
                url="https://site-de.example/gallery", url_key="k" * 64, host="site-de.example",
                state="routed", created_at=datetime.now(UTC), updated_at=datetime.now(UTC),
                attempts=0, last_error="")).inserted_primary_key[0]  # fmt: skip
            connection.execute(insert(HotlineOutboxRow).values(
                case_id=case, kind="referral", target="test partner",
                payload=json.dumps({"referral": REFERRAL, "url": "https://site-de.example/"}),
                idempotency_key="i" * 64, created_at=datetime.now(UTC), attempts=1,
                next_attempt_at=datetime.now(UTC), last_error=""))  # fmt: skip
        engine.dispose()
        options = ("--hotline-country", "NL", "--hotline-hosters", str(directory / "hosters.toml"))
        with running(url, *options) as server:
            yield Served(server, mine.id, theirs.id, other, authority)


def test_a_hoster_sees_its_own_notices_only(served: Served) -> None:
    server = served.server
    listed = server.get("/v1/takedown/notices", "hoster")
    assert listed.status_code == 200, listed.text
    assert [n["id"] for n in listed.json()["notices"]] == [served.mine]
    everything = server.get("/v1/takedown/notices", "analyst").json()["notices"]
    assert {n["id"] for n in everything} >= {served.mine, served.theirs}
    shown = server.get(f"/v1/takedown/notices/{served.mine}", "hoster")
    assert shown.status_code == 200
    assert shown.json()["notice"]["items"][0]["hashes"]["pdq"]
    another = server.get(f"/v1/takedown/notices/{served.theirs}", "hoster")
    missing = server.get("/v1/takedown/notices/999999", "hoster")
    assert another.status_code == missing.status_code == 404
    assert another.json()["error"]["message"] == f"no notice {served.theirs}"
    acted = server.post(f"/v1/takedown/notices/{served.theirs}/acknowledge", "hoster")
    assert acted.status_code == 404
    bad = server.get("/v1/takedown/notices", "hoster", params={"state": "lost"})
    assert bad.status_code == 400 and "state 'lost'" in bad.text


def test_a_hoster_acknowledges_disputes_and_claims_removal(served: Served) -> None:
    server, path = served.server, f"/v1/takedown/notices/{served.mine}"
    acknowledged = server.post(f"{path}/acknowledge", "hoster")
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["acknowledged_at"] is not None
    empty = server.post(f"{path}/dispute", "hoster", json={"reason": ""})
    assert empty.status_code == 422 and "reason" in empty.text
    disputed = server.post(f"{path}/dispute", "hoster", json={"reason": "a medical textbook"})
    assert disputed.json()["dispute_reason"] == "a medical textbook"
    not_cdn = server.post(f"{path}/origin", "hoster", json={"address": "192.0.2.7"})
    assert not_cdn.status_code == 409 and "not a CDN notice" in not_cdn.text
    claimed = server.post(f"{path}/removed", "hoster", json={"note": "deleted"})
    assert claimed.status_code == 200
    assert claimed.json()["claimed_at"] is not None
    assert claimed.json()["verified_at"] is None  # never taken alone: the hotline checks
    assert server.post(f"{path}/dispute", "analyst", json={"reason": "x"}).status_code == 403


@pytest.mark.parametrize(("path", "body"), [
    ("notices/{}/acknowledge", None), ("notices/{}/removed", {"note": "x"}),
    ("notices/{}/dispute", {"reason": "x"}), ("notices/{}/origin", {"address": "192.0.2.7"}),
    ("orders/{}/confirm", None), ("orders/{}/inability", {"reason": "x"}),
])  # fmt: skip
def test_only_the_hosters_own_key_gives_its_answers(
    served: Served, path: str, body: dict[str, str] | None
) -> None:
    before = served.server.get(f"/v1/takedown/notices/{served.mine}", "analyst").json()["events"]
    for role in ("admin", "analyst", "authority"):
        answer = served.server.post(f"/v1/takedown/{path.format(served.mine)}", role, json=body)
        assert answer.status_code == 403, (role, answer.text)
    refused = served.server.post(f"/v1/takedown/{path.format(served.mine)}", "admin", json=body)
    assert "only a hoster key answers a hoster's notices" in refused.json()["error"]["message"]
    after = served.server.get(f"/v1/takedown/notices/{served.mine}", "analyst").json()["events"]
    assert [e for e in after if e["actor"] != "scheduler"] == [
        e for e in before if e["actor"] != "scheduler"
    ]  # nothing by a key (checks go on)


def test_an_order_reference_with_a_line_break_is_refused(served: Served) -> None:
    order = {
        "urls": ["https://files.example/crlf.jpg"],
        "legal_basis": "CSA Regulation Art 14",
        "reference": "ATKM-8\r\nBcc: someone@example.org",
        "hoster": "test hoster",
    }
    refused = served.server.post("/v1/takedown/orders", "authority", json=order)
    assert refused.status_code == 422 and "reference" in refused.text


def test_an_authority_issues_orders_and_sees_its_own(served: Served) -> None:
    server = served.server
    order = {"urls": ["https://files.example/order.jpg"], "legal_basis": "CSA Regulation Art 14",
             "reference": "ATKM-7", "hoster": "test hoster"}  # fmt: skip
    issued = server.post("/v1/takedown/orders", "authority", json=order)
    assert issued.status_code == 201, issued.text
    made = issued.json()
    assert (made["kind"], made["state"], made["reference"]) == ("order", "queued", "ATKM-7")
    mine = server.get("/v1/takedown/orders", "authority").json()["notices"]
    assert [n["id"] for n in mine] == [made["id"]]
    other = served.as_(served.other_authority)
    assert server.get("/v1/takedown/orders", headers=other).json() == {"notices": []}
    assert server.get(f"/v1/takedown/orders/{made['id']}", headers=other).status_code == 404
    assert server.get(f"/v1/takedown/orders/{made['id']}", "auditor").status_code == 200
    unknown = server.post("/v1/takedown/orders", "authority", json={**order, "hoster": "Nobody"})
    assert unknown.status_code == 400 and "unknown hoster 'Nobody'" in unknown.text
    confirmed = server.post(f"/v1/takedown/orders/{made['id']}/confirm", "hoster")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["outcome"] == "confirmed"
    again = server.post(f"/v1/takedown/orders/{made['id']}/confirm", "hoster")
    assert again.status_code == 409 and "has its outcome already" in again.text
    by_other = server.post(
        f"/v1/takedown/orders/{made['id']}/inability",
        headers=served.as_(served.other_hoster),
        json={"reason": "no"},
    )
    assert by_other.status_code == 404


def test_an_analyst_withdraws_and_the_hoster_can_do_no_more(served: Served) -> None:
    server, path = served.server, f"/v1/takedown/notices/{served.theirs}"
    withdrawn = server.post(f"{path}/withdraw", "analyst", json={"reason": "the dispute holds"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    late = server.post(f"{path}/acknowledge", headers=served.as_(served.other_hoster))
    assert late.status_code == 409 and "is withdrawn" in late.text


def test_every_key_reads_the_public_key_notices_are_signed_with(served: Served) -> None:
    answer = served.server.get("/v1/takedown/key", "matcher")
    assert answer.status_code == 200
    public = Path(_key_file(served.server)).read_text().strip()
    assert answer.json() == {"algorithm": "ed25519", "public_key": public}
    assert served.server.get("/v1/takedown/key").status_code == 401


def _key_file(server: Server) -> str:
    import hashlib
    import tempfile

    digest = hashlib.sha256(server.database_url.encode()).hexdigest()[:16]
    return f"{tempfile.gettempdir()}/hashguard-test-takedown-{digest}.key.pub"


def test_a_hosters_re_upload_check_learns_only_the_list(served: Served) -> None:
    server = served.server
    created = server.post(
        "/v1/lists",
        "curator",
        json={"name": "takedown-known", "owner": "Hotline", "category": "test"},
    )
    assert created.status_code == 201, created.text
    imported = server.post(
        "/v1/lists/takedown-known/import",
        "curator",
        content=f"{MD5}\n",
        params={"format": "text", "signal": "md5", "source": "Hotline"},
    )
    assert imported.status_code == 200, imported.text
    asked = {"hashes": [{"signal": "md5", "value": MD5}, {"signal": "md5", "value": "f" * 32}],
             "lists": ["takedown-known"]}  # fmt: skip
    checked = server.post("/v1/match/hashes", "hoster", json=asked)
    assert checked.status_code == 200, checked.text
    assert checked.json() == {"matched": 1, "results": [
        {"matches": [{"list": "takedown-known"}]}, {"matches": []}]}  # fmt: skip
    full = server.post("/v1/match/hashes", "matcher", json=asked).json()
    assert full["results"][0]["matches"][0]["value"] == MD5  # a matcher sees the entry


def test_a_partners_status_of_a_referral_is_kept_once(served: Served) -> None:
    server = served.server
    status = {"referral": REFERRAL, "url": "https://site-de.example/gallery",
              "status": "removed", "verified_at": "2026-03-14T09:26:53+00:00",
              "evidence": {"checks": [1]}}  # fmt: skip
    signed = signing.sign(status, Ed25519PrivateKey.generate())
    path = f"/v1/hotline/referrals/{REFERRAL}/status"
    first = server.post(path, "partner", json=signed)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "removed"
    assert server.post(path, "partner", json=signed).status_code == 200
    tampered = {**signed, "status": "open"}
    refused = server.post(path, "partner", json=tampered)
    assert refused.status_code == 422 and "does not match" in refused.text
    unknown = server.post(f"/v1/hotline/referrals/{'0' * 32}/status", "partner",
                          json={**status, "referral": "0" * 32})  # fmt: skip
    assert unknown.status_code == 404
    wrong = server.post(path, "partner", json={**status, "status": "gone?"})
    assert wrong.status_code == 400 and "status: expected one of" in wrong.text
    key = Ed25519PrivateKey.generate()
    early = signing.sign({**status, "verified_at": "0001-01-01T00:00:00+05:00"}, key)
    for body, said in [(json.dumps(early), "out of range in UTC"),
                       # NaN as Python's json writes it; a signature cannot cover it
                       (json.dumps({**status, "evidence": {"x": float("nan")}}),
                        "evidence: expected JSON numbers")]:  # fmt: skip
        answer = server.post(path, "partner", content=body,
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert answer.status_code == 400 and said in answer.text, answer.text
    engine = open_engine(server.database_url)
    try:
        with engine.connect() as connection:
            kept = connection.execute(select(TakedownOutcomeRow)).all()
    finally:
        engine.dispose()
    assert [(r.source, r.reference, r.status) for r in kept] == [
        ("partner:test partner", REFERRAL, "removed")]  # fmt: skip


def test_a_hoster_reads_its_own_figures(served: Served) -> None:
    figures = served.server.get("/v1/takedown/figures", "hoster")
    assert figures.status_code == 200, figures.text
    [row] = figures.json()["figures"]
    assert row["group"] == "all" and row["notices"] >= 1
    everyone = served.server.get("/v1/takedown/figures", "auditor").json()["figures"]
    assert {"test hoster", "Other Hosting"} <= {row["group"] for row in everyone}
    far = served.server.get("/v1/takedown/figures", "hoster",
                            params={"until": "9999-12-31T23:00:00-05:00"})  # fmt: skip
    assert far.status_code == 400 and "out of range in UTC" in far.json()["error"]["message"]


def test_xarf_reports_from_another_desk_are_imported_and_notices_exported(served: Served) -> None:
    server = served.server
    text = (Path(__file__).resolve().parents[2] / "examples" / "takedown-notices.json").read_text()
    imported = server.post("/v1/takedown/import", "analyst", content=text,
                           params={"source": "Desk Example"},
                           headers={"content-type": "text/plain"})  # fmt: skip
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"imported": 2, "linked": 0}
    as_json = server.post("/v1/takedown/import", "analyst", content=text,
                          params={"source": "Desk JSON"},
                          headers={"content-type": "application/json"})  # fmt: skip
    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == {"imported": 2, "linked": 0}
    broken = server.post("/v1/takedown/import", "analyst", content='{"xarf_version": "4.2.0"}',
                         params={"source": "Desk Example"})  # fmt: skip
    assert broken.status_code == 400 and broken.json()["error"]["message"]
    order = {"urls": ["https://files.example/export.jpg"], "legal_basis": "CSA Regulation Art 14",
             "reference": "ATKM-9", "hoster": "test hoster"}  # fmt: skip
    issued = server.post("/v1/takedown/orders", "authority", json=order).json()
    # the service's scheduler composes and signs it; the export then holds it as sent
    reports = eventually(
        lambda: [
            r
            for r in server.get("/v1/takedown/export", "auditor").json()["reports"]
            if r["report_id"] == issued["report_id"]
        ]
    )
    assert len(reports) == 1
    public = server.get("/v1/takedown/key", "auditor").json()["public_key"]
    assert signing.verify(reports[0]) == public
    assert reports[0]["urls"] == ["https://files.example/export.jpg"]
    assert server.post("/v1/takedown/import", "hoster", content=text,
                       params={"source": "x"}).status_code == 403  # fmt: skip


def test_a_hoster_key_is_made_through_the_keys_api(served: Served) -> None:
    server = served.server
    made = server.post("/v1/keys", "admin", json={"role": "hoster", "hoster": "test hoster"})
    assert made.status_code == 201, made.text
    assert (made.json()["role"], made.json()["hoster"]) == ("hoster", "test hoster")
    listed = server.get("/v1/takedown/notices", headers=served.as_(made.json()["token"]))
    hosters = [n["hoster"] for n in listed.json()["notices"]]
    assert hosters and set(hosters) == {"test hoster"}
    typo = server.post("/v1/keys", "admin", json={"role": "hoster", "hoster": "test hosting"})
    assert typo.status_code == 400
    assert typo.json()["error"]["message"] == (
        "hoster 'test hosting' is not in the registry of hosters; did you mean 'test hoster'?"
    )
    without = server.post("/v1/keys", "admin", json={"role": "hoster"})
    assert without.status_code == 400 and "names its hoster" in without.text
