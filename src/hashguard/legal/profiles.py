"""Legal profiles: the parameters the law sets, chosen by name, so no regime is hard-coded.

The law is in flux (docs/research/regulation.md, section 0): the interim Regulation (EU)
2021/1232 lapsed on 3 April 2026, the Council wants it back until 2028, and the CSA Regulation
is in trilogue. What every position shares is the default: known material only, content data
only, no scanning of end-to-end-encrypted services, human confirmation before any report or
permanent action, retention of at most 12 months, complaints for at least 6 months.

What no profile can change: nothing permanent happens before a human confirms (the only
automatic action is a reversible quarantine), and a false positive is undone at once.
"""

from dataclasses import dataclass
from typing import Final

from hashguard.errors import Invalid


class UnknownProfile(Invalid):
    """A profile name hashguard does not know; the message lists the known ones."""


@dataclass(frozen=True)
class LegalProfile:
    name: str
    title: str
    legal_basis: str  # what provider reports cite as their legal basis
    retention_days: int = 365  # after identification; legal holds extend it
    complaint_days: int = 184  # how long a user may complain after a decision: 6 months at least
    quarantine: bool = True  # a detection may be quarantined (reversibly) before review
    exact_skips_review: bool = False  # an exact match on a vetted list counts as confirmed
    known_only: bool = True  # classifier flags (possible new material) are refused
    scan_e2ee: bool = False  # services marked end-to-end encrypted may be scanned
    removal_hours: int = 24  # a hoster's deadline after a notice (the Dutch covenant: 24 h)
    order_hours: int = 24  # a hoster's deadline after a removal order (CSA Regulation: 24 h)


DEFAULT: Final = "known-only"

PROFILES: Final = {
    profile.name: profile
    for profile in (
        LegalProfile(
            "known-only",
            "What every position agrees on: known material, hash matching, human review",
            "Regulation (EU) 2021/1232, Art 3, as re-adopted; CSA Regulation proposal "
            "COM(2022) 209, Art 12-13 (reporting); known material only",
        ),
        LegalProfile(
            "interim-2021-1232",
            "The interim Regulation: voluntary detection, known and new material",
            "Regulation (EU) 2021/1232, Art 3 (derogation from Directive 2002/58/EC)",
            exact_skips_review=True,
            known_only=False,
        ),
        LegalProfile(
            "csar-council-2025",
            "The Council's general approach of 26 Nov 2025: voluntary detection made permanent",
            "CSA Regulation (Council general approach, 26 Nov 2025), Art 12-13",
            known_only=False,
        ),
    )
}


def profile(name: str) -> LegalProfile:
    """The profile called ``name``. Raises UnknownProfile naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(
            f"unknown legal profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
