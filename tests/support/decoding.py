"""The decode budget a crawl takes its share of, as ``hashguard serve`` makes it."""

from hashguard.api import ServiceSettings
from hashguard.api.service import decode_budget
from hashguard.media.budget import DecodeBudget


def servers_decodes() -> DecodeBudget:
    """A decode budget as the server's default settings make it."""
    return decode_budget(ServiceSettings())
