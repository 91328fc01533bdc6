"""The OpenAPI document tells the truth a client relies on: every operation documents a typed
answer and the errors it can give in the shape the service really sends (``{"error": ...}``,
HMA's ``{"message": ...}`` on HMA's routes), FastAPI's 422 shape appears nowhere, and every
example in it validates against its schema; a real error answer matches the documented shape."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from hashguard.app import create_app
from hashguard.store.database import open_engine

from support.server import Server, running

HMA_PREFIXES = ("/h/", "/m/", "/c/")
# Errors whose documented shape is not the error body, and why.
NOT_ERROR_BODIES = {
    ("/status/ready", "503"): "#/components/schemas/Readiness",  # the readiness, with its reason
    ("/status/serving", "503"): "#/components/schemas/Serving",  # whether to serve, and why not
}
TEXT_ANSWERS = {
    "/metrics",
    "/status",
    "/status/live",
    "/readyz",
    "/livez",
}  # Prometheus and HMA: text


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("openapi")
    app = create_app(open_engine(f"sqlite:///{directory / 'openapi.db'}"))
    return app.openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose $refs resolve within the document's components."""
    return Draft202012Validator({**schema, "components": document["components"]})


def test_every_operation_documents_a_typed_answer(document: dict[str, Any]) -> None:
    assert len(list(operations(document))) > 50
    for path, method, operation in operations(document):
        success = [s for s in operation["responses"] if s.startswith("2")]
        assert success, f"{method} {path} documents no success answer"
        for status in success:
            content = operation["responses"][status]["content"]
            if path in TEXT_ANSWERS:
                assert content["text/plain"]["schema"] == {"type": "string"}, (method, path)
                continue
            schema = content["application/json"]["schema"]
            assert "$ref" in schema, f"{method} {path} answers an untyped {schema}"


def test_every_documented_error_has_the_real_shape(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        if "security" in operation:
            assert {"401", "403"} <= set(errors), f"{method} {path}: 401/403 not documented"
        if "requestBody" in operation:
            assert "413" in errors, f"{method} {path} takes a body but documents no 413"
        if "{" in path and not path.startswith(HMA_PREFIXES):
            assert "404" in errors, f"{method} {path} names a thing but documents no 404"
        for status, answer in errors.items():
            assert answer["description"], (method, path, status)
            if (path, status) in NOT_ERROR_BODIES:
                expected = NOT_ERROR_BODIES[path, status]
            elif path in {"/status", "/readyz"}:
                assert answer["content"]["text/plain"]["schema"] == {"type": "string"}
                continue
            elif path.startswith(HMA_PREFIXES):
                expected = "#/components/schemas/HmaError"
            else:
                expected = "#/components/schemas/ErrorBody"
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": expected}, (method, path, status)


def test_the_frameworks_422_shape_is_gone(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(document)
    assert "ValidationError" not in document["components"]["schemas"]
    # HMA's routes answer a malformed parameter with 400, as HMA does: they document no 422.
    for path, method, operation in operations(document):
        if path.startswith(HMA_PREFIXES):
            assert "422" not in operation["responses"], (method, path)


def examples(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example in the document."""
    for name, schema in document["components"]["schemas"].items():
        for number, example in enumerate(schema.get("examples", [])):
            yield f"{name} example {number}", {"$ref": f"#/components/schemas/{name}"}, example
    for path, method, operation in operations(document):
        for status, answer in operation["responses"].items():
            for media_type, content in answer.get("content", {}).items():
                if "example" in content:
                    where = f"{method} {path} {status} {media_type}"
                    yield where, content["schema"], content["example"]


def test_every_example_validates_against_its_schema(document: dict[str, Any]) -> None:
    checked = list(examples(document))
    answers = {where.split(" example")[0] for where, _, _ in checked}
    # Every answer model has an example (nested parts are shown within their parent's).
    for path, method, operation in operations(document):
        for status, answer in operation["responses"].items():
            ref = answer.get("content", {}).get("application/json", {}).get("schema", {})
            name = ref.get("$ref", "").rpartition("/")[2]
            if name:
                assert name in answers, f"{method} {path} {status}: {name} has no example"
    for where, schema, example in checked:
        problems = [e.message for e in validator(document, schema).iter_errors(example)]
        assert not problems, f"{where}: {problems}"


# Import file contents are bounded by the importers themselves (a file's fields, by its format).
FILE_BODIES = {("POST", "/v1/takedown/import")}


def unbounded(document: dict[str, Any], schema: dict[str, Any], where: str) -> Iterator[str]:
    """Where ``schema`` lets a request carry text of any length (a string without maxLength,
    not a choice from a list) or any number of items (an array without maxItems)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        yield from unbounded(document, document["components"]["schemas"][name], where)
        return
    for part in (*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())):
        yield from unbounded(document, part, where)
    kind = schema.get("type")
    # A choice from a list, a file (its body's limit), a date-time (parsed, not kept as text).
    choice = (
        "enum" in schema or "const" in schema or schema.get("format") in ("binary", "date-time")
    )
    if kind == "string" and "maxLength" not in schema and not choice:
        yield f"{where}: a string without maxLength"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{where}: an array without maxItems"
        yield from unbounded(document, schema.get("items", {}), f"{where}[]")
    for name, field in schema.get("properties", {}).items():
        yield from unbounded(document, field, f"{where}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from unbounded(document, schema["additionalProperties"], f"{where}{{key}}")


def test_every_text_a_request_may_carry_is_bounded(document: dict[str, Any]) -> None:
    found = []
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", ()):
            where = f"{method} {path} {parameter['in']} {parameter['name']}"
            found += unbounded(document, parameter["schema"], where)
        if (method, path) in FILE_BODIES:
            continue
        for media, body in operation.get("requestBody", {}).get("content", {}).items():
            found += unbounded(document, body["schema"], f"{method} {path} body ({media})")
    assert not found, "\n".join(found)


def test_an_unbounded_field_is_caught(document: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"note": {"type": "string"},
                                               "tags": {"type": "array", "items": {}}}}  # fmt: skip
    assert list(unbounded(document, schema, "body")) == [
        "body.note: a string without maxLength",
        "body.tags: an array without maxItems",
    ]


def test_an_example_that_does_not_fit_its_schema_is_caught(document: dict[str, Any]) -> None:
    wrong = {"error": {"status": "404", "code": "not_found"}}
    errors = validator(document, {"$ref": "#/components/schemas/ErrorBody"}).iter_errors(wrong)
    assert len(list(errors)) == 2  # status is not an integer, message is missing


def test_real_error_answers_match_the_documented_shapes(
    document: dict[str, Any], database_url: str
) -> None:
    error_body = validator(document, {"$ref": "#/components/schemas/ErrorBody"})
    hma_error = validator(document, {"$ref": "#/components/schemas/HmaError"})
    with running(database_url) as server:
        answers = [
            (401, server.get("/v1/lists")),
            (403, server.get("/v1/keys", "curator")),
            (404, server.get("/v1/lists/nowhere", "curator")),
            (422, server.post("/v1/lists", "curator", json={"name": "x"})),
            (413, server.post("/v1/match/hashes", "matcher", content=b"[" * 10_000_000)),
        ]
        for status, answer in answers:
            assert answer.status_code == status, answer.text
            error_body.validate(answer.json())
        assert_hma(server, hma_error)


def assert_hma(server: Server, hma_error: Draft202012Validator) -> None:
    answer = server.get("/c/bank/NOWHERE", "curator")
    assert answer.status_code == 404
    hma_error.validate(answer.json())


def test_a_real_answer_matches_its_documented_model(
    document: dict[str, Any], database_url: str
) -> None:
    keys = validator(document, {"$ref": "#/components/schemas/Keys"})
    lists = validator(document, {"$ref": "#/components/schemas/HashLists"})
    with running(database_url) as server:
        created = server.post("/v1/lists", "curator", json={"name": "known", "owner": "Org A",
                                                             "category": "test"})  # fmt: skip
        assert created.status_code == 201, created.text
        keys.validate(server.get("/v1/keys", "admin").json())
        lists.validate(server.get("/v1/lists", "curator").json())


def test_no_route_answers_a_body_nested_deeper_than_the_parser_goes_with_a_server_error(
    document: dict[str, Any], database_url: str
) -> None:
    """JSON nested 100,000 deep (Python's parser gives up with RecursionError) sent to every
    operation that takes a JSON body, with an administrator's key: a refusal, never a 5xx.
    Path parameters are "x": an operation that looks its resource up before it reads the body
    answers 404 here without reading it (HMA's bank routes read theirs in
    tests/api/test_hma.py)."""
    nested = b"[" * 100_000
    taking_json = [
        (path, method)
        for path, method, operation in operations(document)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(taking_json) > 20
    with running(database_url) as server:
        answered = {}
        for path, method in taking_json:
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            answer = server.request(method, concrete, "admin", content=nested,
                                    headers={"Content-Type": "application/json"})  # fmt: skip
            answered[f"{method} {path}"] = answer.status_code
    failed = {operation: status for operation, status in answered.items() if status >= 500}
    assert failed == {}
