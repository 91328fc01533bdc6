"""Retention (floor 3): every stored item that concerns a person has a purpose and a date by
which it must be gone; the purge deletes what is due and says in the audit log what it
deleted."""
