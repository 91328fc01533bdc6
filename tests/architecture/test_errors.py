"""One error hierarchy: every error hashguard raises on purpose is of a kind, and the edges answer
by the kind, never by the message."""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import hashguard
from hashguard import errors
from hashguard.api.errors import STATUS, status_of
from hashguard.media.errors import LimitExceeded, UnsupportedMedia
from hashguard.review.model import NotFound, ScanningForbidden
from hashguard.review.services import ServiceExists, ServiceNotFound
from hashguard.store.list_errors import EntryNotFound, ListError, ListExists, ListNotFound

SOURCE = Path(hashguard.__file__).parent
# Exceptions that are not domain errors: the API's own answer, the body limit (Starlette's
# HTTPException), control flow private to one module, and a worker process's death told to
# the engines that hash around it (it never reaches a user).
NOT_DOMAIN = {
    "ApiError", "BodyTooLarge", "_SignIn", "_FileError", "_Lost",
    "_Unreadable", "_TokenRefused", "_BadUpdate", "_BadEntry", "_NotEntries",
}  # fmt: skip


def _modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages([str(SOURCE)], "hashguard.")
            if not m.name.endswith("__main__")]  # fmt: skip


def test_every_error_hashguard_defines_is_of_a_kind() -> None:
    defined = {}
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == name != "hashguard.errors"
                and value.__name__ not in NOT_DOMAIN
            ):
                defined[f"{name}.{value.__name__}"] = value
    assert len(defined) > 30
    strays = [name for name, cls in defined.items() if not issubclass(cls, errors.HashguardError)]
    assert strays == []
    kindless = [name for name, cls in defined.items() if not issubclass(cls, errors.KINDS)]
    assert kindless == []
    assert set(STATUS) == set(errors.KINDS)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ListNotFound("no list named 'x'"), 404),
        (EntryNotFound("list x holds no pdq entry"), 404),
        (ListExists("a list named 'x' already exists"), 409),
        (ListError("list x: the owner is required"), 400),
        (ServiceNotFound("no service named 'x'"), 404),
        (ServiceExists("a service named 'x' exists"), 409),
        (NotFound("no detection 7"), 404),  # a review error, and not found
        (ScanningForbidden("service chat is end-to-end encrypted"), 403),
        (LimitExceeded("pixels", 70_000_000, 64_000_000), 413),
        (UnsupportedMedia("not a supported image or video"), 415),
    ],
)
def test_the_api_answers_by_kind(error: errors.HashguardError, status: int) -> None:
    assert status_of(error) == status
    # The message plays no part: the same words under another kind get another status.
    assert status_of(ListError(str(error))) == 400


def test_no_edge_tells_errors_apart_by_their_message() -> None:
    """``"holds no" in str(error)`` and the like: the class says what an error is."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.In | ast.NotIn) for op in node.ops
            ):
                sides = [node.left, *node.comparators]
                if any(_message_of_error(side) for side in sides):
                    found.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"startswith", "endswith"}
                and _message_of_error(node.func.value)
            ):
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert found == []


def _message_of_error(node: ast.AST) -> bool:
    """``str(error)``, ``str(exc)``, ``error.message``, ``error.args[...]``."""
    names = {"error", "exc", "exception", "err", "e"}
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "str"
        and node.args
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id in names
    ):
        return True
    return (
        isinstance(node, ast.Attribute)
        and node.attr in {"message", "args"}
        and isinstance(node.value, ast.Name)
        and node.value.id in names
    )
