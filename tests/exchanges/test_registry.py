"""The plug-in registry: plug-ins by name, an unknown name refused naming those installed."""

from collections.abc import Iterator

import pytest

from hashguard.errors import NotFound
from hashguard.exchanges import registry
from hashguard.exchanges.api import Schema


class _Throwaway:
    name = "throwaway_test"
    title = "A test's plug-in"
    category = "csam"
    config_schema = Schema()
    credentials_schema = None
    default_base_url = ""
    supports_feedback = False
    local = False


@pytest.fixture
def throwaway() -> Iterator[type]:
    registry.register(_Throwaway)  # type: ignore[type-var]
    yield _Throwaway
    registry.unregister(_Throwaway.name)


def test_a_registered_plug_in_is_found_by_name_and_an_unknown_name_names_the_choices(
    throwaway: type,
) -> None:
    assert registry.get("throwaway_test") is throwaway
    assert "throwaway_test" in registry.installed()
    with pytest.raises(NotFound, match=r"plug-in is called 'nope'; installed: .*throwaway_test"):
        registry.get("nope")


def test_a_name_is_held_by_one_plug_in(throwaway: type) -> None:
    other = type("Other", (_Throwaway,), {})
    with pytest.raises(ValueError, match="registered already"):
        registry.register(other)  # type: ignore[type-var]
    registry.register(throwaway)  # type: ignore[type-var]  # the same class again: no change


def test_a_plug_in_declares_whether_it_reaches_a_host() -> None:
    plugins = registry.installed()
    assert {name: plugin.local for name, plugin in plugins.items()} == {
        name: name == "sample" for name in plugins
    }
    undeclared = type("Undeclared", (), {k: v for k, v in vars(_Throwaway).items()
                                         if k != "local"})  # fmt: skip
    with pytest.raises(ValueError, match="Undeclared does not declare local"):
        registry.register(undeclared)
    assert "throwaway_test" not in registry.installed()
