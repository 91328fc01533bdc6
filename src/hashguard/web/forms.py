"""What reviewers post from a detection's page: a decision, an action and its reversal, a
provider report, a list entry reinstated.

Each form needs the session's CSRF token. Actions, reversals and reports ask for confirmation:
posted without ``confirmed=yes`` they answer a page that says what will happen, with the same
form to confirm (the desk's script asks in a dialog instead, where it runs). They call the same
domain functions as the API (``api.safeguards``, ``review``, ``reports``), so they are refused,
allowed and audited alike; a refusal is said at the top of the detection's page, with the
status of its kind.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from hashguard.api import safeguards
from hashguard.api.auth import actor
from hashguard.api.errors import status_of
from hashguard.api.matching import service_of
from hashguard.api.service import Service
from hashguard.errors import Forbidden, HashguardError
from hashguard.lists.model import ChangeKind
from hashguard.reports.eu import Circumstances
from hashguard.reports.submit import RECIPIENTS
from hashguard.review import actions
from hashguard.review.model import ActionKind, Decision, NotFound
from hashguard.store.api_keys import ApiKey
from hashguard.web import sessions
from hashguard.web.form_bodies import FormRoute
from hashguard.web.pages import (
    ACTION_CONSEQUENCES,
    ACTION_WORDS,
    RECIPIENT_WORDS,
    numbered,
    page,
)
from hashguard.web.views import detection_page, false_positive_evidence

router = APIRouter(include_in_schema=False, route_class=FormRoute)
Text = Annotated[str, Form(max_length=2000)]
Short = Annotated[str, Form(max_length=200)]


def _gone(key: ApiKey, csrf: str, error: HashguardError) -> HTMLResponse:
    return page("gone.html", 404, error=str(error), reviewer=actor(key), csrf=csrf)


def _carry_out(
    service: Service, key: ApiKey, csrf: str, ident: int, work: Callable[[], object], anchor: str
) -> Response:
    """Do ``work`` on detection ``ident`` if ``key`` may see it; the detection's page again
    (at ``anchor``), or that page saying why ``work`` was refused."""
    if not numbered(ident):
        return _gone(key, csrf, NotFound(f"no detection {ident}"))
    try:
        service.review.visible(ident, key.lists)
    except NotFound as error:
        return _gone(key, csrf, error)
    try:
        work()
    except HashguardError as error:
        try:
            return detection_page(service, key, csrf, ident, str(error), status_of(error))
        except NotFound as gone:
            return _gone(key, csrf, gone)
    return RedirectResponse(f"/desk/detections/{ident}" + (f"#{anchor}" if anchor else ""), 303)


def _refuse(service: Service, key: ApiKey, csrf: str, ident: int, error: str) -> Response:
    """The detection's page saying that a form was filled in wrongly (400)."""
    if not numbered(ident):
        return _gone(key, csrf, NotFound(f"no detection {ident}"))
    try:
        return detection_page(service, key, csrf, ident, error, 400)
    except NotFound as gone:
        return _gone(key, csrf, gone)


def _confirm(
    key: ApiKey, csrf: str, ident: int, target: str, title: str, button: str,
    consequences: list[str], fields: dict[str, Any],
) -> HTMLResponse:  # fmt: skip
    """The page that asks to confirm a form: what will happen, and the form again."""
    return page("confirm.html", reviewer=actor(key), csrf=csrf, ident=ident, target=target,
                title=title, button=button, consequences=consequences,
                fields={k: v for k, v in fields.items() if v not in ("", None)})  # fmt: skip


@router.post("/desk/detections/{ident}/decide")
async def decide(
    request: Request, ident: int, csrf: Short, decision: Short = "", reason: Text = ""
) -> Response:
    caller = await sessions.form_caller(request, csrf)
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    service = service_of(request)
    if decision not in {d.value for d in Decision}:
        return await run_in_threadpool(_refuse, service, key, expected, ident,
                                       "choose confirm or false positive")  # fmt: skip

    def work() -> None:
        service.review.decide(ident, actor(key), Decision(decision), reason)

    return await run_in_threadpool(_carry_out, service, key, expected, ident, work, "")


@router.post("/desk/detections/{ident}/actions")
async def act(
    request: Request,
    ident: int,
    csrf: Short,
    kind: Short = "",
    reason: Text = "",
    language: Short = "en",
    country: Short = "",
    confirmed: Short = "",
) -> Response:
    """Ask the service to act on the item (after a confirmation step)."""
    caller = await sessions.form_caller(request, csrf)
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    service = service_of(request)
    problem = ""
    if kind not in {k.value for k in ActionKind}:
        problem = "choose an action: quarantine, remove, disable or suspend"
    elif not reason.strip():
        problem = "an action needs a reason (it goes into the statement of reasons)"
    elif language not in ("en", "nl") or (country and not country.isalpha()):
        problem = "the statement's language is en or nl, the country two letters (NL) or empty"
    if problem:
        return await run_in_threadpool(_refuse, service, key, expected, ident, problem)
    chosen = ActionKind(kind)
    if confirmed != "yes":
        consequences = [ACTION_CONSEQUENCES[chosen], "It can be reversed from this page."]
        return _confirm(key, expected, ident, f"/desk/detections/{ident}/actions",
                        f"{ACTION_WORDS[chosen]}: detection {ident}",
                        f"{ACTION_WORDS[chosen]}", consequences,
                        {"kind": kind, "reason": reason, "language": language,
                         "country": country.upper()})  # fmt: skip

    def work() -> None:
        found = service.review.visible(ident, key.lists)
        safeguards.act(service, found, chosen, actor(key), reason, language, country.upper())

    return await run_in_threadpool(_carry_out, service, key, expected, ident, work, "actions")


@router.post("/desk/detections/{ident}/actions/{action}/reverse")
async def reverse(
    request: Request, ident: int, action: int, csrf: Short, reason: Text = "", confirmed: Short = ""
) -> Response:
    """Undo one action on the detection (after a confirmation step)."""
    caller = await sessions.form_caller(request, csrf)
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    service = service_of(request)
    if not reason.strip():
        return await run_in_threadpool(_refuse, service, key, expected, ident,
                                       "a reversal needs a reason")  # fmt: skip
    if confirmed != "yes":
        return _confirm(key, expected, ident, f"/desk/detections/{ident}/actions/{action}/reverse",
                        f"Reverse action {action}: detection {ident}", "Reverse it",
                        ["The service is told to undo the action."],
                        {"reason": reason})  # fmt: skip

    def work() -> None:
        if not numbered(action) or actions.detection_of(service.engine, action) != ident:
            raise NotFound(f"detection {ident} has no action number {action}")
        actions.reverse(service.engine, action, actor(key), reason)

    return await run_in_threadpool(_carry_out, service, key, expected, ident, work, "actions")


@router.post("/desk/detections/{ident}/reports")
async def report(
    request: Request,
    ident: int,
    csrf: Short,
    recipient: Short = "",
    removed: Short = "",
    urgent: Short = "",
    urgency_reason: Text = "",
    third_country: Short = "",
    third_country_reference: Short = "",
    confirmed: Short = "",
) -> Response:
    """Make (and send, when its recipient is configured) the provider report of a confirmed
    detection (after a confirmation step)."""
    caller = await sessions.form_caller(request, csrf)
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    service = service_of(request)
    problem = ""
    if recipient not in RECIPIENTS:
        problem = "choose who the report is for: the EU Centre or NCMEC"
    elif urgent and not urgency_reason.strip():
        problem = "an urgent report needs the reason it is urgent"
    if problem:
        return await run_in_threadpool(_refuse, service, key, expected, ident, problem)
    circumstances = Circumstances(
        removed == "yes",
        urgent == "yes",
        urgency_reason.strip(),
        third_country.strip(),
        third_country_reference.strip(),
    )
    if confirmed != "yes":
        sent = {"eu-centre": service.settings.eu_centre_url,
                "ncmec": service.settings.ncmec_url}[recipient]  # fmt: skip
        said = [f"A report of detection {ident} is made for the {RECIPIENT_WORDS[recipient]}, "
                "signed with the service's report key, and "
                + ("sent now." if sent else "kept to send later (the service has no address "
                                            "for it).")]  # fmt: skip
        said.append("The item " + ("has been" if circumstances.removed else "has not been")
                    + " removed" + (f"; urgent: {circumstances.urgency_reason}"
                                    if circumstances.urgent else "."))  # fmt: skip
        return _confirm(key, expected, ident, f"/desk/detections/{ident}/reports",
                        f"Report detection {ident}", "Make the report", said,
                        {"recipient": recipient, "removed": removed, "urgent": urgent,
                         "urgency_reason": urgency_reason, "third_country": third_country,
                         "third_country_reference": third_country_reference})  # fmt: skip

    def work() -> None:
        safeguards.report(service, ident, recipient, circumstances, actor(key))

    return await run_in_threadpool(_carry_out, service, key, expected, ident, work, "reports")


@router.post("/desk/detections/{ident}/reinstate")
async def reinstate(
    request: Request,
    ident: int,
    csrf: Short,
    list_name: Annotated[str, Form(alias="list", max_length=100)] = "",
    entry: Short = "",
    reason: Text = "",
) -> Response:
    """The list's curator reinstates an entry this false positive contested (audited; the
    service's Matcher matches it again before the answer)."""
    caller = await sessions.form_caller(request, csrf)
    if isinstance(caller, Response):
        return caller
    key, expected = caller
    service = service_of(request)

    def work() -> None:
        contested = false_positive_evidence(service, key, ident)
        chosen = next((c for c in contested if (c["list"], str(c["entry"])) == (list_name, entry)),
                      None)  # fmt: skip
        if chosen is None or not chosen["reinstate"]:
            raise NotReinstatable(f"entry {entry} of list {list_name} is not one this key may "
                                  f"reinstate from detection {ident}")  # fmt: skip
        service.lists.change(list_name, ChangeKind.REINSTATE, chosen["signal"], chosen["value"],
                             reason, actor(key))  # fmt: skip

    return await run_in_threadpool(_carry_out, service, key, expected, ident, work, "contested")


class NotReinstatable(Forbidden):
    """A reinstatement the key may not make from this detection."""
