"""Nothing hashguard stores, receives or serves is ever pickled: HMA unpickles its index from its
database. The service's bulk jobs travel as JSON. Pickles pass only between processes of one
run of the CLI, and nothing in them comes from outside: ``hash --jobs`` and ``scan``'s local
engine (Python's multiprocessing between its own worker processes), ``scan --engine ray`` and
the sharded index (Ray pickles tasks, their arguments and the Matcher's copy between the
driver and its workers). A Ray cluster given with ``--address`` runs whatever its clients
send: everyone who can reach it is trusted as the scan's own code (docs/scan.md)."""

import ast
from pathlib import Path

from support.paths import PACKAGE

FORBIDDEN = {"pickle", "cPickle", "dill", "shelve", "marshal", "cloudpickle", "joblib"}
NO_PROCESS_POOLS = ("api", "store", "lists", "index", "matching", "audit")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
            if node.module == "concurrent.futures":
                names.update(alias.name for alias in node.names)
    return names


def test_no_module_imports_a_pickle_library() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    for path in files:
        assert not (_imports(path) & FORBIDDEN), f"{path.relative_to(PACKAGE)} imports pickle"


def test_the_service_and_the_store_use_no_process_pools() -> None:
    for package in NO_PROCESS_POOLS:
        for path in (PACKAGE / package).rglob("*.py"):
            used = _imports(path) & {"multiprocessing", "ProcessPoolExecutor"}
            assert not used, f"{path.relative_to(PACKAGE)} pickles through {used}"
