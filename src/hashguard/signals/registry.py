"""The signal types hashguard knows, by name: the one place the rest of hashguard asks what a
signal is (see ``SignalType``)."""

from typing import Any, Final

from hashguard.errors import Invalid
from hashguard.media.formats import MediaKind
from hashguard.signals.base import SignalType
from hashguard.signals.digests import CanonicalSha256Signal, Md5Signal, Sha1Signal, Sha256Signal
from hashguard.signals.pdq import PdqSignal
from hashguard.signals.vpdq import VpdqSignal


class UnknownSignal(Invalid):
    """A signal name that is not registered."""


_REGISTRY: Final[dict[str, SignalType[Any]]] = {
    signal.name: signal
    for signal in (
        PdqSignal(),
        VpdqSignal(),
        Md5Signal(),
        Sha1Signal(),
        Sha256Signal(),
        CanonicalSha256Signal(),
    )
}


def names(*, optional: bool = False) -> list[str]:
    """Registered signal names, in a stable order (perceptual first): those computed by default,
    and with ``optional`` also those computed only on request."""
    return [name for name, signal in _REGISTRY.items() if optional or signal.by_default]


def register(signal: SignalType[Any]) -> None:
    """Add a signal type (a plug-in); raises ``ValueError`` if its name is taken."""
    if signal.name in _REGISTRY:
        raise ValueError(f"a signal called {signal.name!r} is registered already")
    _REGISTRY[signal.name] = signal


def unregister(name: str) -> None:
    """Remove a signal type added with ``register`` (hashguard's own stay)."""
    _REGISTRY.pop(name, None)


def listable() -> list[SignalType[Any]]:
    """The signal types hash lists can hold and the Matcher matches, in registry order."""
    return [signal for signal in _REGISTRY.values() if signal.listable]


def listable_names() -> list[str]:
    return [signal.name for signal in listable()]


def listed(name: str) -> SignalType[Any]:
    """The listable signal type called exactly ``name`` (lists store the name as given);
    raises ``UnknownSignal`` (naming the signals lists can hold) for any other name."""
    signal = _REGISTRY.get(name)
    if signal is None or not signal.listable:
        raise UnknownSignal(
            f"signal {name!r} cannot be listed; use one of {', '.join(listable_names())}"
        )
    return signal


def is_exact(name: str) -> bool:
    """Whether ``name`` is a registered signal whose matches are identical values."""
    signal = _REGISTRY.get(name)
    return signal is not None and signal.exact


def by_hex_digits(digits: int) -> list[SignalType[Any]]:
    """The listable signal types whose values are ``digits`` hex digits long (a bare hash's
    length says which signals it can be)."""
    return [signal for signal in listable() if signal.hex_digits == digits]


def get(name: str) -> SignalType[Any]:
    """The signal type called ``name``; raises ``UnknownSignal`` listing the known names."""
    try:
        return _REGISTRY[name.strip().lower()]
    except KeyError:
        raise UnknownSignal(
            f"unknown signal {name!r}; known signals: {', '.join(_REGISTRY)}"
        ) from None


def for_media(kind: MediaKind) -> list[SignalType[Any]]:
    """Every registered signal that applies to media of this kind."""
    return [signal for signal in _REGISTRY.values() if signal.applies_to(kind)]
