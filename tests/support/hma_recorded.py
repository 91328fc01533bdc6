"""HMA 2.0's request/response pairs, as its clients see them: the shapes its own tests assert and
that recorded sessions against a real HMA server show (fetlife's client cassettes; roostorg/coop
and matrix-org/policyserv), written down in docs/research/hma-api.md. The values are benign:
the PDQ hash is ThreatExchange's own sample.

A shape is compared by ``assert_shape``: dicts have exactly the recorded keys (``"*"`` stands
for any key, such as a bank name), lists hold items of the recorded item's shape, and leaves have
the recorded type; leaves recorded as exact strings (messages, distances) must be equal.
"""

from typing import Any

SAMPLE_PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
ANY_INT, ANY_FLOAT, ANY_STR, ANY_BOOL = int, float, str, bool


class Exact:
    def __init__(self, value: Any) -> None:
        self.value = value


BANK = {"name": ANY_STR, "matching_enabled_ratio": ANY_FLOAT}
MATCH = {"bank_content_id": ANY_INT, "distance": Exact("0")}
ADDED = {"id": ANY_INT, "signals": {"pdq": ANY_STR}}

# (method, path, request options, status, response shape); {bank}, {id} are filled in.
RECORDED: list[tuple[str, str, dict[str, Any], int, Any]] = [
    ("POST", "/c/banks", {"json": {"name": "{bank}", "enabled_ratio": "1"}}, 201, BANK),
    ("GET", "/c/banks", {}, 200, [BANK]),
    ("POST", "/c/banks", {"json": {"name": "{bank}"}}, 403,
     {"message": Exact("Bank already exists")}),
    ("POST", "/c/banks", {"json": {"name": "my_test_bank"}}, 400,
     {"message": Exact("Bank names must be UPPER_WITH_UNDERSCORE")}),
    ("POST", "/c/banks", {"json": {"name": "01_TEST_BANK"}}, 400,
     {"message": Exact("Bank names must be UPPER_WITH_UNDERSCORE")}),
    ("GET", "/c/bank/{bank}", {}, 200, BANK),
    ("GET", "/c/bank/NO_SUCH_BANK", {}, 404, {"message": Exact("bank 'NO_SUCH_BANK' not found")}),
    ("POST", "/c/bank/{bank}/signal", {"json": {"pdq": SAMPLE_PDQ}}, 200,
     {"id": ANY_INT, "signals": {"pdq": Exact(SAMPLE_PDQ)}}),
    ("GET", "/m/raw_lookup", {"params": {"signal_type": "pdq", "signal": SAMPLE_PDQ}}, 200,
     {"matches": [ANY_INT]}),
    ("GET", "/m/raw_lookup",
     {"params": {"signal_type": "pdq", "signal": SAMPLE_PDQ, "include_distance": "true"}}, 200,
     {"matches": [MATCH]}),
    ("GET", "/m/lookup", {"params": {"signal_type": "pdq", "signal": SAMPLE_PDQ}}, 200,
     {"*": [MATCH]}),
    ("GET", "/m/lookup", {"params": {"signal_type": "pdq", "signal": "0" * 64}}, 200, {}),
    ("GET", "/m/lookup", {}, 400,
     {"message": Exact("Either url or both signal and signal_type are required")}),
    ("POST", "/m/compare", {"json": {"pdq": [SAMPLE_PDQ, SAMPLE_PDQ]}}, 200,
     {"pdq": [Exact(True), {"distance": Exact(0)}]}),
    ("GET", "/m/index/status", {}, 200,
     {"*": {"present": ANY_BOOL, "built_to": ANY_INT, "size": ANY_INT}}),
    ("GET", "/c/signal_type", {}, 200, [{"name": ANY_STR, "enabled_ratio": ANY_FLOAT}]),
    ("GET", "/c/content_type", {}, 200, [{"name": ANY_STR, "enabled": ANY_BOOL}]),
    ("PUT", "/c/bank/{bank}", {"json": {"enabled": False}}, 200,
     {"name": ANY_STR, "matching_enabled_ratio": Exact(0.0)}),
    ("GET", "/m/lookup", {"params": {"signal_type": "pdq", "signal": SAMPLE_PDQ,
                                     "bypass_coinflip": "true"}}, 200, {}),
    ("PUT", "/c/bank/{bank}", {"json": {"enabled_ratio": 1.0}}, 200, BANK),
    ("DELETE", "/c/bank/{bank}/content/{id}", {}, 200, {"deleted": Exact(1)}),
    ("GET", "/c/bank/{bank}/content/{id}", {}, 404, {"message": ANY_STR}),
    ("GET", "/m/raw_lookup", {"params": {"signal_type": "pdq", "signal": SAMPLE_PDQ}}, 200,
     {"matches": []}),
    ("DELETE", "/c/bank/{bank}", {}, 200, {"message": Exact("Done")}),
    ("DELETE", "/c/bank/{bank}", {}, 200, {"message": Exact("Done")}),
    ("GET", "/c/bank/{bank}", {}, 404, {"message": ANY_STR}),
]  # fmt: skip


def assert_shape(actual: Any, recorded: Any, where: str = "body") -> None:
    if isinstance(recorded, Exact):
        assert actual == recorded.value and type(actual) is type(recorded.value), (
            f"{where}: {actual!r}, recorded {recorded.value!r}"
        )
    elif recorded is None:
        assert actual is None, f"{where}: {actual!r}, recorded null"
    elif isinstance(recorded, type):
        number = recorded is float and isinstance(actual, int) and not isinstance(actual, bool)
        assert isinstance(actual, recorded) or number, f"{where}: {actual!r} is not {recorded}"
        assert recorded is bool or not isinstance(actual, bool), f"{where}: {actual!r}"
    elif isinstance(recorded, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        if "*" in recorded:
            for key, value in actual.items():
                assert_shape(value, recorded["*"], f"{where}.{key}")
        else:
            assert set(actual) == set(recorded), (
                f"{where}: keys {sorted(actual)}, recorded {sorted(recorded)}"
            )
            for key, value in recorded.items():
                assert_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not an array"
        if len(recorded) == 2 and isinstance(recorded[0], Exact):  # a fixed pair
            assert len(actual) == 2, f"{where}: {actual!r}"
            for i, (a, r) in enumerate(zip(actual, recorded, strict=True)):
                assert_shape(a, r, f"{where}[{i}]")
        elif recorded:
            assert actual, f"{where}: empty, recorded items"
            for i, item in enumerate(actual):
                assert_shape(item, recorded[0], f"{where}[{i}]")
        else:
            assert actual == [], f"{where}: {actual!r}, recorded []"
    else:
        raise AssertionError(f"{where}: unknown recorded shape {recorded!r}")
