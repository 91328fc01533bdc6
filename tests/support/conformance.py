"""Lines for the conformance summary printed at the end of the run (the ``report`` fixture and
the hooks in ``conftest.py``)."""

import pytest

KEY = "conformance"


class ConformanceReport:
    """Lines a test adds to the summary; kept on the test's report, so they reach it under xdist."""

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def append(self, line: str) -> None:
        self.node.user_properties.append((KEY, line))
