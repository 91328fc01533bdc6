"""Matching: lists + indexes + list policy (thresholds, negative lists, dihedral) -> Match, for
one typed ``Query`` per item."""

from hashguard.matching.matcher import ListSource, Match, Matcher
from hashguard.matching.query import Hashed, Query

__all__ = ["Hashed", "ListSource", "Match", "Matcher", "Query"]
