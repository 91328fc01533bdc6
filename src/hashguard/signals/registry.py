"""The signal types hashguard knows, by name."""

from typing import Any, Final

from hashguard.media.formats import MediaKind
from hashguard.signals.base import SignalType
from hashguard.signals.digests import CanonicalSha256Signal, Md5Signal, Sha1Signal, Sha256Signal
from hashguard.signals.pdq import PdqSignal
from hashguard.signals.vpdq import VpdqSignal


class UnknownSignal(ValueError):
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
