"""The detection service (floor 4): hashguard's HTTP API and HMA's, over the store. The app that
serves it with the review desk's pages is ``hashguard.app``."""

from hashguard.api.settings import ServiceSettings

__all__ = ["ServiceSettings"]
