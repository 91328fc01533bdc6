"""What an item's ``hashes`` JSON holds: its hash per signal (signal -> canonical value, what
triage matches, notices and referrals carry), and, when the media was hashed here, two reserved
keys that are never a signal's name:

- ``"derived"``: the item's derived PDQ hashes by name (``signals.derived``: "crop-10" -> hex),
  listed with the item when it is assessed, never sent to anyone;
- ``"stability"``: the stability (0-100) of its PDQ hash ("pdq") and of each derived hash (by
  its name), where it was measured.
"""

from collections.abc import Mapping
from typing import Any, Final

DERIVED: Final = "derived"
STABILITY: Final = "stability"
_RESERVED: Final = frozenset({DERIVED, STABILITY})


def stored(
    hashes: Mapping[str, str],
    derived: Mapping[str, str] | None = None,
    stability: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The ``hashes`` JSON of an item: ``hashes`` (signal -> canonical value), with its derived
    hashes and stabilities when there are any."""
    kept: dict[str, Any] = {name: value for name, value in hashes.items() if name not in _RESERVED}
    if derived:
        kept[DERIVED] = dict(derived)
    if stability:
        kept[STABILITY] = dict(stability)
    return kept


def signal_hashes(held: Mapping[str, Any]) -> dict[str, str]:
    """An item's hash per signal (what it is matched by and what others are sent)."""
    return {name: value for name, value in held.items()
            if name not in _RESERVED and isinstance(value, str)}  # fmt: skip


def derived_of(held: Mapping[str, Any]) -> dict[str, str]:
    """An item's derived PDQ hashes by name ({} when none were computed)."""
    found = held.get(DERIVED)
    if not isinstance(found, Mapping):
        return {}
    return {str(name): value for name, value in found.items() if isinstance(value, str)}


def stability_of(held: Mapping[str, Any], name: str = "pdq") -> int | None:
    """The stability of an item's hash of signal ``name`` (or of its derived hash ``name``),
    None when it was not measured."""
    found = held.get(STABILITY)
    value = found.get(name) if isinstance(found, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
