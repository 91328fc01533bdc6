"""Another hashguard's description of a list (``GET /v1/lists/{name}``), which ``hashguard lists
follow`` creates the local list like: the answer's body read as JSON, every field checked, then
the checks the list store makes of a new list before it writes (owner, thresholds)."""

from pathlib import Path

from hashguard.errors import HashguardError
from hashguard.exchanges.hashguard_feed import _json, about_page
from hashguard.store.lists import _check_thresholds


def one(data: bytes, scratch: Path) -> None:
    about = about_page("followed", _json("https://origin.example", "/v1/lists/followed", 200, data))
    if not about.owner.strip():
        raise HashguardError("no owner")  # what ListStore.create refuses
    _check_thresholds("copy", about.policy)
