"""The detection service (floor 4): hashguard's HTTP API and HMA's, over the store."""

from hashguard.api.app import create_app, served
from hashguard.api.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app", "served"]
