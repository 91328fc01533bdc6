"""The exchange plug-ins hashguard knows, by name (``api.ExchangeApi.name``).

hashguard's own live in the modules of ``BUILT_IN``, each registering its class when imported
(``@register``); they are imported the first time the registry is asked. Another plug-in is
registered by calling ``register`` with its class.
"""

import importlib
import threading
from typing import Final, TypeVar

from hashguard.errors import NotFound
from hashguard.exchanges.api import ExchangeApi

BUILT_IN: Final = (
    "hashguard.exchanges.sample",
    "hashguard.exchanges.hashguard_feed",
    "hashguard.exchanges.ncmec",
    "hashguard.exchanges.stopncii",
    "hashguard.exchanges.threatexchange",
)

# What a plug-in class declares (``api.ExchangeApi``'s class attributes); read plainly.
DECLARED: Final = ("name", "title", "category", "config_schema", "credentials_schema",
                   "default_base_url", "supports_feedback", "local")  # fmt: skip

_registered: dict[str, type[ExchangeApi]] = {}
_loaded = False
_lock = threading.Lock()


_Plugin = TypeVar("_Plugin", bound=type[ExchangeApi])


class UnknownExchangeApi(NotFound):
    """No plug-in of that name is installed; the message names those that are."""


def register(plugin: _Plugin) -> _Plugin:
    """Add ``plugin`` (a class; usable as a decorator). Raises ValueError if it does not
    declare what every plug-in does, or another class holds its name."""
    missing = [attribute for attribute in DECLARED if not hasattr(plugin, attribute)]
    if missing:
        raise ValueError(
            f"exchange plug-in {plugin.__qualname__} does not declare {', '.join(missing)} "
            "(see hashguard.exchanges.api.ExchangeApi)"
        )
    name = plugin.name
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"a plug-in's name is lower-case letters, digits and _: {name!r}")
    with _lock:
        taken = _registered.get(name)
        if taken is not None and taken is not plugin:
            raise ValueError(f"an exchange plug-in called {name!r} is registered already")
        _registered[name] = plugin
    return plugin


def unregister(name: str) -> None:
    """Remove the plug-in called ``name`` (tests' throwaway plug-ins)."""
    with _lock:
        _registered.pop(name, None)


def installed() -> dict[str, type[ExchangeApi]]:
    """Every installed plug-in by name, in name order."""
    _load()
    with _lock:
        return dict(sorted(_registered.items()))


def get(name: str) -> type[ExchangeApi]:
    """The plug-in called ``name``; raises UnknownExchangeApi naming the installed ones."""
    plugins = installed()
    plugin = plugins.get(name)
    if plugin is None:
        raise UnknownExchangeApi(
            f"no exchange plug-in is called {name[:60]!r}; installed: {', '.join(plugins)}"
        )
    return plugin


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILT_IN:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:  # a module that is there but fails is an error
                raise
    _loaded = True
