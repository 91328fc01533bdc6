"""What HMA's routes share: HMA's names for hashguard's signals and media, the keys each route
takes, and the request bodies."""

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict

from hashguard.api.auth import allow
from hashguard.api.errors import ApiError
from hashguard.lists.model import Category
from hashguard.media.formats import MediaKind
from hashguard.store.api_keys import ApiKey, Role

Matcher = Annotated[ApiKey, allow(Role.MATCHER)]
Reader = Annotated[ApiKey, allow(Role.CURATOR, Role.AUDITOR, Role.REVIEWER)]
Curator = Annotated[ApiKey, allow(Role.CURATOR)]
Admin = Annotated[ApiKey, allow()]

# HMA's signal type names, and hashguard's signal for each; hashguard's own names work too.
SIGNALS: Final = {"pdq": "pdq", "vpdq": "vpdq", "video_md5": "md5", "md5": "md5", "sha1": "sha1",
                  "sha256": "sha256"}  # fmt: skip
CONTENT_SIGNALS: Final = {"photo": ("pdq",), "video": ("video_md5", "vpdq")}


def hma_type(signal: str, kind: MediaKind | None = None) -> str:
    """The name HMA gives hashguard's ``signal`` (an md5 of a video is HMA's video_md5)."""
    return "video_md5" if signal == "md5" and kind is not MediaKind.IMAGE else signal


def signal_for(name: str) -> str:
    """hashguard's signal for an HMA signal type name. Raises ApiError (400) for others."""
    signal = SIGNALS.get(name)
    if signal is None:
        raise ApiError(400, f"No such SignalType '{name}'")
    return signal


class NewBank(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    enabled_ratio: float | None = None
    enabled: bool | None = None
    category: Category = Category.KNOWN_CSAM  # hashguard's: what the list holds


class BankUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    enabled_ratio: float | None = None
    enabled: bool | None = None


class BankSignals(BaseModel):
    model_config = ConfigDict(extra="allow")
    note: str | None = None
