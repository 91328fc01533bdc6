"""Redress (floor 3): statements of reasons to users, with the three redress routes, and the
complaints they can file against a decision."""
