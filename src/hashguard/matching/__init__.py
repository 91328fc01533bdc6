"""Matching: lists + indexes + list policy (thresholds, negative lists, dihedral) -> Match."""

from hashguard.matching.matcher import ListSource, Match, Matcher

__all__ = ["ListSource", "Match", "Matcher"]
