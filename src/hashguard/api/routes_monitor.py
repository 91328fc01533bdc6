"""The bad-hoster monitor for operators (hashguard.takedown.monitor; docs/takedown.md): the
figures unsuppressed, per hoster, per country or all, as JSON or CSV, and a hoster's signed
evidence bundle for regulators. Analysts and auditors; the public figures are ``/monitor``."""

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import allow
from hashguard.api.errors import ApiError
from hashguard.api.matching import service_of
from hashguard.api.schemas import KEYED, TakedownEvidence, TakedownMonitor, refusals
from hashguard.errors import HashguardError
from hashguard.store.api_keys import ApiKey, Role
from hashguard.takedown.model import now
from hashguard.takedown.monitor import DEFINITION, Monitor, csv, parse_moment

router = APIRouter(prefix="/v1/takedown", tags=["takedown"])
Watcher = Annotated[ApiKey, allow(Role.ANALYST, Role.AUDITOR)]
Moment = Annotated[str, Query(max_length=40, description="A date (YYYY-MM-DD, midnight UTC) "
                              "or an ISO 8601 time; on the notices' reported_at.")]  # fmt: skip
NO_KEY: Final = ("this service has no takedown key to sign evidence with (the takedown "
                 "settings: takedown_key)")  # fmt: skip
NO_STORE: Final = {"Cache-Control": "no-store"}
_CSV: Final = {200: {"content": {"text/csv": {"schema": {"type": "string"}, "example":
               "group,notices,removed,median_hours,...\nexample-hosting,212,201,9.5,...\n"}}}}  # fmt: skip


async def _call(function: Any, *args: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args)
    except HashguardError as error:
        raise ApiError.of(error) from None


@router.get("/monitor", response_model=TakedownMonitor,
            responses={**_CSV, **refusals(400, *KEYED, 422)})  # fmt: skip
async def monitor(
    request: Request,
    key: Watcher,
    by: Annotated[Literal["hoster", "country", "all"], Query()] = "hoster",
    since: Moment = "",
    until: Moment = "",
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """The monitor's figures, unsuppressed: per hoster, per country (where the hoster is) or
    all, for notices reported from ``since`` (included) until ``until`` (not). Time to removal
    is INHOPE's: report received to removal verified by re-fetch; CDN notices are not counted.
    ``format=csv``: the same rows as CSV. 400 names a period bound that is not a time."""
    try:
        period = parse_moment(since, "since"), parse_moment(until, "until")
    except HashguardError as error:
        raise ApiError.of(error) from None
    rows = await _call(Monitor(service_of(request).engine).figures, by, *period)
    if format == "csv":
        return Response(csv(rows), media_type="text/csv; charset=utf-8", headers=NO_STORE)
    return {"by": by, "period": {"since": None if period[0] is None else period[0].isoformat(),
                                 "until": None if period[1] is None else period[1].isoformat()},
            "generated_at": now().isoformat(), "definition": DEFINITION,
            "rows": [row.as_json() for row in rows]}  # fmt: skip


@router.get("/monitor/evidence/{hoster}", response_model=TakedownEvidence,
            responses=refusals(*KEYED, 404, 503))  # fmt: skip
async def evidence(
    request: Request,
    key: Watcher,
    hoster: Annotated[str, Path(max_length=200, description="The hoster's name.")],
) -> Any:
    """A hoster's evidence bundle for a regulator: every notice to it with its times, its
    signed notice, its re-checks (outcome, status, hashes, time), deliveries and events, and
    its figures; signed with the hotline's takedown key (verify with its public key alone).
    404 for a hoster without notices; 503 when the service has no takedown key."""
    signing_key = getattr(request.app.state.service, "takedown_key", None)
    if signing_key is None:
        raise ApiError(503, NO_KEY)
    bundle = await _call(Monitor(service_of(request).engine).evidence, hoster, signing_key)
    # Sent as signed, byte for byte the document the signature covers (no model re-serialising).
    return JSONResponse(bundle, headers=NO_STORE)
