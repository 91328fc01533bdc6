"""The OpenAPI links of the service's document: for each operation that creates something, the
operations that then read, change or remove it, and where in the creating request or answer
each of their parameters is (a new key's ``id`` is the key that ``DELETE /v1/keys/{ident}``
revokes). Clients that follow links, and Schemathesis's stateful phase
(tests/api/test_schemathesis.py), chain the operations with them.

Declared here in one place, by method and path; ``add_links`` writes them into the document
(each under the creating operation's success answer, named by the target's operation id)."""

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Link:
    """``source``'s success answer leads to each of ``targets``, with ``parameters``
    (``path.name`` or ``header.Name``) taken from the source's request or answer (OpenAPI
    runtime expressions: ``$response.body#/id``, ``$request.path.name``, ...)."""

    source: str  # "POST /v1/lists"
    parameters: dict[str, str]
    targets: tuple[str, ...]


_NAMED: Final = {"path.name": "$response.body#/name"}  # a list, service or exchange
_DETECTION: Final = {"path.ident": "$response.body#/id"}
_CONTENT: Final = {"path.name": "$request.path.name", "path.content_id": "$response.body#/id"}
_CONTENT_ROUTES: Final = (
    "GET /c/bank/{name}/content/{content_id}",
    "PUT /c/bank/{name}/content/{content_id}",
    "DELETE /c/bank/{name}/content/{content_id}",
)
_VICTIM: Final = {"path.case": "$response.body#/case", "header.X-Case-Pin": "$response.body#/pin"}

LINKS: Final = (
    Link("POST /v1/keys", {"path.ident": "$response.body#/id"}, ("DELETE /v1/keys/{ident}",)),
    Link(
        "POST /v1/lists",
        _NAMED,
        (
            "GET /v1/lists/{name}",
            "PATCH /v1/lists/{name}",
            "DELETE /v1/lists/{name}",
            "POST /v1/lists/{name}/import",
            "POST /v1/lists/{name}/changes",
            "GET /v1/lists/{name}/changes",
            "POST /v1/lists/{name}/releases",
        ),
    ),
    Link("POST /v1/services", _NAMED, ("POST /v1/services/{name}/risk-assessments",)),
    Link(
        "POST /v1/flags",
        _DETECTION,
        (
            "GET /v1/detections/{ident}",
            "POST /v1/detections/{ident}/decision",
            "POST /v1/detections/{ident}/actions",
            "POST /v1/detections/{ident}/close",
            "POST /v1/detections/{ident}/hold",
            "POST /v1/detections/{ident}/reports",
        ),
    ),
    Link(
        "POST /v1/detections/{ident}/actions",
        {"path.ident": "$response.body#/action"},
        ("POST /v1/actions/{ident}/reverse",),
    ),
    Link(
        "POST /v1/exchanges",
        _NAMED,
        (
            "GET /v1/exchanges/{name}",
            "PATCH /v1/exchanges/{name}",
            "DELETE /v1/exchanges/{name}",
            "POST /v1/exchanges/{name}/fetch",
            "GET /v1/exchanges/{name}/status",
            "GET /v1/exchanges/{name}/quarantine",
            "PUT /v1/exchanges/{name}/credentials",
            "DELETE /v1/exchanges/{name}/credentials",
        ),
    ),
    Link(
        "POST /v1/victims/cases",
        _VICTIM,
        (
            "GET /v1/victims/cases/{case}",
            "POST /v1/victims/cases/{case}/withdrawal",
        ),
    ),
    Link(
        "POST /c/banks",
        _NAMED,
        (
            "GET /c/bank/{name}",
            "PUT /c/bank/{name}",
            "DELETE /c/bank/{name}",
            "POST /c/bank/{name}/signal",
            "POST /c/bank/{name}/content",
        ),
    ),
    Link("POST /c/bank/{name}/signal", _CONTENT, _CONTENT_ROUTES),
    Link("POST /c/bank/{name}/content", _CONTENT, _CONTENT_ROUTES),
    Link(
        "POST /c/exchanges",
        {"path.name": "$request.body#/name"},
        (
            "GET /c/exchange/{name}",
            "PUT /c/exchange/{name}",
            "DELETE /c/exchange/{name}",
            "GET /c/exchange/{name}/status",
        ),
    ),
)


def add_links(document: dict[str, Any]) -> None:
    """Write ``LINKS`` into ``document`` (an OpenAPI document of the app). A link naming an
    operation the document does not hold is a mistake in this module: KeyError says which."""
    for link in LINKS:
        answers = _operation(document, link.source)["responses"]
        success = min(status for status in answers if status.startswith("2"))
        links = answers[success].setdefault("links", {})
        for target in link.targets:
            ident = _operation(document, target)["operationId"]
            links[ident] = {"operationId": ident, "parameters": dict(link.parameters)}


def _operation(document: dict[str, Any], route: str) -> dict[str, Any]:
    method, path = route.split(" ", 1)
    try:
        return document["paths"][path][method.lower()]  # type: ignore[no-any-return]
    except KeyError:
        raise KeyError(f"api/links.py names {route}, which the document does not hold") from None
