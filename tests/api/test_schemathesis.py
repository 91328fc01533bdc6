"""Schemathesis, a tool nobody on the project wrote, drives a real ``hashguard serve`` from the
service's own ``/openapi.json``: its examples, its coverage cases (each boundary, each
undeclared method, each missing parameter) and its generated data, valid and invalid, with
every check it has. The service must never answer 5xx, and the document and the service must
agree: every status and method answered is declared, valid data is accepted, invalid data
refused, every answer fits its schema.

Each case is sent with a key of a role the operation admits (each in turn); the first cases of
an operation also with a key of each role it does not admit, and without a key: those must be
refused (403, 401), unless the request is refused before the key is looked at.
``make test`` runs a few generated examples per operation; ``make fuzz-api`` many more
(``HASHGUARD_FUZZ_EXAMPLES``)."""

import itertools
import os
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine

from support.database import scratch_database
from support.server import Server, running

# Generated examples per operation (the fuzzing phase); the coverage phase adds its own cases.
EXAMPLES = int(os.environ.get("HASHGUARD_FUZZ_EXAMPLES", "8"))
# How long an answer may take: an import or a release runs as a job below the service's
# priority (api/jobs.py), so on a machine busy with other tests it takes longer than
# Schemathesis's default of 10 s (seen: a two-hash import under three other test runs).
ANSWER_SECONDS = 60
# The stateful phase: scenarios (each a chain of calls along the document's links) and steps.
SCENARIOS = 10 * EXAMPLES
STEPS = 10

# What is answered before the key is looked at: a method the path does not take (routing comes
# first), a body over its route's limit (refused as it streams in), a body that cannot be read at
# all (FastAPI parses it before the route's dependencies; the refusal says so). Anything else
# refused to a role the operation does not admit must be 403 (401 without a key): a 400 or 422
# that says what was wrong with the data (HMA's "no such bank", a value out of range) comes after
# the key, so answering it would show the route let that role in.
BEFORE_THE_KEY = {405, 413}
NOT_HTTP = "Invalid HTTP request received."  # uvicorn's own refusal, before the app
UNREADABLE = ("There was an error parsing the body", "not valid JSON")  # 400, or 422 (HMA: 400)


def accepting(paths: str, statuses: list[str], methods: str = ".*") -> dict[str, Any]:
    """The positive-data check of the operations at ``paths`` (a regular expression), told
    that schema-valid data may also be refused with ``statuses``: data whose validity the
    schema cannot state."""
    expected = ["2xx", "401", "403", "404", "409", "429", *statuses]
    return {
        "include-path-regex": paths,
        "include-method-regex": methods,
        "checks": {"positive_data_acceptance": {"expected-statuses": expected}},
    }


CONFIG: dict[str, Any] = {
    # OpenAPI cannot say that a query takes no other parameters: the service ignores unknown
    # ones, as HTTP services do (a client's cache-buster), so they are not sent as invalid data.
    "generation": {"max-examples": EXAMPLES, "allow-extra-parameters": False},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        # Chains of valid requests along the links the service declares (api/links.py); not
        # inferred ones, which could also revoke the keys this test sends.
        "stateful": {
            "enabled": True,
            "generation": {"mode": "positive"},
            "inference": {"algorithms": []},
        },
    },
    "checks": {"enabled": True},
    "operations": [
        # HMA's routes answer 400 to what they cannot do (no such signal type, bank or exchange
        # API; a bank name not UPPER_WITH_UNDERSCORE; no file uploaded), as HMA does and its
        # clients expect; their parameters are HMA's plain strings.
        accepting("^/(h|m|c)/", ["400", "413", "415"]),
        # A hash value's form depends on its signal (64 hex digits for pdq, 32 for md5, frame
        # lines for vpdq, ...): a string of the right length can still be no hash.
        accepting("^/v1/match/hashes$", ["400", "422"]),
        accepting("^/v1/lists/[^/]+/changes$", ["400", "422"], "POST"),
        accepting("^/v1/victims/cases", ["400", "422"], "POST"),
        # Uploads: any bytes fit the schema, media decodes or not (415); and ``url`` is taken
        # only when the operator allows fetching (off here, as by default): 400 says so.
        accepting("^/v1/(hash|match/media)$", ["400", "415"]),
        # Only a hoster key names a hoster: a rule between two fields.
        accepting("^/v1/keys$", ["400"], "POST"),
        # ``since`` and ``until`` are dates (YYYY-MM-DD) or ISO 8601 times: text to the schema.
        accepting("^/v1/takedown/monitor$", ["400"]),
        # This server runs no hotline: its routes answer 404 (and say so) before they read the
        # request, so a missing header cannot be answered for (it is, with 422, when it runs).
        {
            "include-path": "/v1/hotline/reports/status",
            "checks": {"missing_required_header": {"enabled": False}},
        },
    ],
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with (
        scratch_database("sqlite", tmp_path_factory.mktemp("schemathesis")) as url,
        running(url) as server,
    ):
        yield server
    requests_sent = sum(1 for line in server.log if ' HTTP/1.1" ' in line)
    print(f"schemathesis: {requests_sent} requests")


@pytest.fixture(scope="module")
def api(served: Server) -> Any:
    config = SchemathesisConfig.from_dict(CONFIG)
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json", config=config)


@pytest.fixture(autouse=True)
def node_id(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32's lazy schema reads pytest < 9's ``Function._nodeid`` (to name each
    operation's subtest); pytest 9 keeps the id elsewhere."""
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api")
session = requests.Session()
turns: dict[str, Iterator[int]] = defaultdict(itertools.count)


def admitted(case: Case) -> frozenset[Role] | None:
    """The roles the operation admits (its security scopes); None for a public one."""
    for requirement in case.operation.definition.raw.get("security", []):
        return frozenset(Role(scope) for scope in requirement.get("apiKey", []))
    return None


@pytest.mark.xdist_group("schemathesis")
@schema.parametrize()
def test_the_service_answers_as_its_document_says(case: Case, served: Server) -> None:
    roles = admitted(case)
    if roles is None:
        validated(case)
        return
    turn = next(turns[case.operation.label])
    allowed = sorted(roles)
    others = sorted(set(Role) - roles)
    # Every case with a key the operation admits (each such role in turn); the first cases
    # also with each role it does not admit, and the first without a key.
    calls: list[Role | None] = [allowed[turn % len(allowed)]]
    calls += [others[turn]] if turn < len(others) else []
    calls += [None] if turn == 0 else []
    for role in calls:
        headers = served.headers(role)
        answer = validated(case, headers)
        if not sent(answer, headers):  # one of Schemathesis's own cases without the key
            continue
        if role in roles:
            assert answer.status_code != 401, (role, answer.text)
        else:
            refused = answer.status_code == (403 if role else 401) or before_the_key(answer)
            assert refused, (role, answer.status_code, answer.text)


def validated(case: Case, headers: dict[str, str] | None = None) -> Any:
    """``case`` sent (with ``headers``) and its answer checked, unless the server's HTTP layer
    refused it as no HTTP request (uvicorn's plain-text 400, before the service sees it: what
    no document of the service can describe)."""
    answer = case.call(session=session, headers=headers, timeout=ANSWER_SECONDS)
    if not (answer.status_code == 400 and answer.text == NOT_HTTP):
        case.validate_response(answer)
    return answer


def before_the_key(answer: Any) -> bool:
    """Whether ``answer`` is a refusal given before the key is looked at (``BEFORE_THE_KEY``)."""
    status = answer.status_code
    if status in BEFORE_THE_KEY:
        return True
    if status not in (400, 422):
        return False
    if answer.text == NOT_HTTP:
        return True
    body = answer.json()
    message = body.get("message") or body.get("error", {}).get("message", "")  # HMA's or ours
    return any(words in message for words in UNREADABLE)


def sent(answer: Any, headers: dict[str, str]) -> bool:
    """Whether the request went with exactly the key in ``headers`` (or none)."""
    return answer.request.headers.get("Authorization") == headers.get("Authorization")


@pytest.mark.xdist_group("schemathesis")
def test_what_the_service_creates_can_be_used_until_it_is_removed(api: Any, served: Server) -> None:
    """Schemathesis's stateful phase: chains of calls along the document's links (create a list,
    then read, change, import into, release and remove it; a key, then revoke it; ...), each
    step with every check, among them that what was just created is there
    (ensure_resource_availability) and that what was removed is gone (use_after_free)."""

    started: list[None] = []  # one per scenario
    failures: list[str] = []  # each step's failed checks (or its error), as they happen
    chained: list[str] = []  # the steps that ensure_resource_availability checks
    # Flags come from a service's own key (a matcher key tied to it): they open the detections
    # the review routes then act on.
    made = served.post("/v1/services", "admin", json={"name": "schemathesis-flags"})
    assert made.status_code == 201, made.text
    engine = open_engine(served.database_url)
    flagger = ApiKeyStore(engine).create(Role.MATCHER, service="schemathesis-flags")[1]
    engine.dispose()

    class Workflow(api.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            started.append(None)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            headers = served.headers(caller(case))
            if case.operation.label == "POST /v1/flags":
                headers = {"Authorization": f"Bearer {flagger}"}
            # Schemathesis 4.32 counts the key's header as one of the operation's parameters,
            # and checks that what was just created is there (ensure_resource_availability)
            # only for a step whose every parameter came from the chain: the key does.
            case.headers = {**(case.headers or {}), **headers}
            return {"session": session, "headers": headers, "timeout": ANSWER_SECONDS}

        def call(self, case: Case, **kwargs: Any) -> Any:
            try:
                return super().call(case, **kwargs)
            except Exception as error:  # no answer (a timeout, a reset): noted, as checks are
                failures.append(f"{case.operation.label}: {type(error).__name__}: {error}")
                raise

        def validate_response(self, response: Any, case: Case, *args: Any, **kwargs: Any) -> None:
            if from_the_chain(case):
                chained.append(case.operation.label)
            try:
                super().validate_response(response, case, *args, **kwargs)
            except FailureGroup as failed:
                # Noted as it happens: Hypothesis then replays the chain to report it, and
                # against a server that kept the first run's state the replay goes elsewhere.
                failures.append(failed.message)
                raise

    for seed in itertools.count():  # the same chains on every run, until the budget is spent
        if len(started) >= SCENARIOS or failures:
            break
        budget = hypothesis.settings(
            max_examples=SCENARIOS - len(started),
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        try:
            hypothesis.seed(seed)(Workflow).run(settings=budget)
        except (FlakyStrategyDefinition, FlakyFailure):
            # The server keeps what earlier scenarios made (a name taken answers 409, not 201),
            # so the same choices can lead elsewhere, which Hypothesis stops at: go on afresh,
            # as Schemathesis's own runner does (a failure found is in ``failures``).
            continue
        except FailureGroup:
            break
    assert not failures, "\n".join(failures)
    # Else a release of Schemathesis that decides otherwise which parameters came from the
    # chain would leave that check silent, and this test passing.
    assert chained, "no step took every parameter from the chain: nothing was checked as there"


def from_the_chain(case: Case) -> bool:
    """Whether every parameter of ``case``, a path parameter among them, came from the chain,
    as Schemathesis 4.32 reads it (``Case._override``): only on such a step does
    ensure_resource_availability check that what a POST just created is there."""
    parameters = list(case.operation.iter_parameters())
    overrides = case._override
    return any(parameter.location == "path" for parameter in parameters) and all(
        parameter.name in getattr(overrides, parameter.location.container_name, {})
        for parameter in parameters
    )


def caller(case: Case) -> Role | None:
    """The key a chain's step goes with: admin's where the operation admits it, else one of a
    role it admits (a hoster's own answers); none for a public operation."""
    roles = admitted(case)
    if roles is None:
        return None
    return Role.ADMIN if Role.ADMIN in roles else sorted(roles)[0]
