"""What HMA's routes share: HMA's names for hashguard's signals and media, the keys each route
takes, the request bodies, and the answers and errors as the OpenAPI document describes them
(HMA's shapes, unchanged)."""

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from hashguard.api.auth import allow
from hashguard.api.errors import ApiError
from hashguard.api.fields import Name
from hashguard.api.schemas import retry_after
from hashguard.lists.model import Category
from hashguard.media.formats import MediaKind
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.bank_contents import HMA_SIGNALS

Matcher = Annotated[ApiKey, allow(Role.MATCHER)]
Reader = Annotated[ApiKey, allow(Role.CURATOR, Role.AUDITOR, Role.REVIEWER)]
Curator = Annotated[ApiKey, allow(Role.CURATOR)]
Admin = Annotated[ApiKey, allow()]

# HMA's signal type names, and hashguard's signal for each; hashguard's own names work too.
SIGNALS: Final = HMA_SIGNALS
# What HMA's /c/signal_type and /m/index/status list: HMA's own signal types.
LISTED: Final = ("pdq", "video_md5")
# The index also holds vPDQ (HMA's vpdq extension), which /m/index/status shows too.
INDEXED: Final = (*LISTED, "vpdq")
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
    name: Name
    enabled_ratio: float | None = None
    enabled: bool | None = None
    category: Category = Category.KNOWN_CSAM  # hashguard's: what the list holds


class BankUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Name | None = None
    enabled_ratio: float | None = None
    enabled: bool | None = None


class BankSignals(BaseModel):
    model_config = ConfigDict(extra="allow")


class BankedContentMetadata(BaseModel):
    """HMA's metadata of a bank content item, validated as HMA does (no other keys)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    content_id: str | None = None
    content_uri: str | None = None
    json_data: dict[str, Any] | None = Field(None, alias="json", serialization_alias="json")
    collab: dict[str, list[str]] | None = None


# --- answers, described as HMA gives them --------------------------------------------------------


def _example(*examples: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


_PDQ = "f" * 32 + "0" * 32


class HmaError(BaseModel):
    """HMA's error shape, on every refusal of its routes."""

    model_config = _example({"message": "bank 'KNOWN' not found"})
    message: str


# status -> when, an example message
_REFUSALS: Final[dict[int, tuple[str, str]]] = {
    400: ("A missing or malformed parameter or body (HMA answers 400 for both).",
          "No such SignalType 'tmk'"),
    401: ("No API key, or one that is unknown, malformed or revoked.",
          "an API key is required: send 'Authorization: Bearer <key>'"),
    403: ("The key's role may not use this route, or the key is limited to other lists "
          "(and HMA's 403 for a bank that exists).", "Bank already exists"),
    404: ("No such bank or content.", "bank 'KNOWN' not found"),
    409: ("The bank is an exchange's: remove the exchange first.",
          "list NCMEC is filled by exchange NCMEC: remove the exchange first"),
    413: ("The body is larger than this route takes.",
          "the request body is larger than this route takes (1048576 bytes)"),
    415: ("The file is not media this signal applies to.", "not a supported image format"),
    503: ("The lists are loading, or the server's decode budget stayed full (Retry-After "
          "says when to try again).", "the lists are loading"),
}  # fmt: skip


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of an HMA route: each status with HMA's error shape."""
    return {
        status: {"model": HmaError, "description": _REFUSALS[status][0],
                 "content": {"application/json": {"example": {"message": _REFUSALS[status][1]}}},
                 **retry_after(status)}
        for status in statuses
    }  # fmt: skip


KEYED: Final = (401, 403)
# A route that decodes media: too large, not media it takes, the decode budget full.
MEDIA: Final = (413, 415, 503)


class Hashes(RootModel[dict[str, str]]):
    """HMA signal type -> hash ("" for an image with too little detail to hash)."""

    model_config = _example({"pdq": _PDQ})


class BankMatch(BaseModel):
    bank_content_id: int
    distance: str


class RawLookup(BaseModel):
    """Entry ids, or (``include_distance``) entry ids with distances."""

    model_config = _example({"matches": [17]}, {"matches": [{"bank_content_id": 17,
                                                            "distance": "4"}]})  # fmt: skip
    matches: list[int] | list[BankMatch]


class ByBank(RootModel[dict[str, list[BankMatch]]]):
    """Bank -> the matching contents."""

    model_config = _example({"KNOWN": [{"bank_content_id": 17, "distance": "4"}]})


class BySignalType(RootModel[dict[str, dict[str, list[BankMatch]]]]):
    """HMA signal type -> bank -> the matching contents."""

    model_config = _example({"pdq": {"KNOWN": [{"bank_content_id": 17, "distance": "4"}]}})


class Lookup(RootModel[dict[str, list[BankMatch]] | dict[str, dict[str, list[BankMatch]]]]):
    """By bank for a hash (or a URL with ``signal_type``); by signal type, then bank, for a
    URL."""

    model_config = _example(
        {"KNOWN": [{"bank_content_id": 17, "distance": "4"}]},
        {"pdq": {"KNOWN": [{"bank_content_id": 17, "distance": "4"}]}},
    )


class Distance(BaseModel):
    # Bits apart; for vPDQ, HMA's "<query %>%[<other's %>%]".
    distance: int | str


class Compared(RootModel[dict[str, tuple[bool, Distance]]]):
    """Signal type -> [matched, {"distance": d}]."""

    model_config = _example(
        {"pdq": [True, {"distance": 4}]}, {"vpdq": [False, {"distance": "62%[100%]"}]}
    )


class IndexState(BaseModel):
    present: bool
    built_to: int
    size: int


class IndexStatus(RootModel[dict[str, IndexState]]):
    """Signal type -> what the index holds (``built_to``: when it last caught up, Unix time;
    -1 for none)."""

    model_config = _example({"pdq": {"present": True, "built_to": 1773480413, "size": 1200}})


class Bank(BaseModel):
    model_config = _example({"name": "KNOWN", "matching_enabled_ratio": 1.0})
    name: str
    matching_enabled_ratio: Annotated[int | float, WithJsonSchema({"type": "number"})]


class Banks(RootModel[list[Bank]]):
    model_config = _example([{"name": "KNOWN", "matching_enabled_ratio": 1.0}])


class Message(BaseModel):
    model_config = _example({"message": "Done"})
    message: str


class ContentAdded(BaseModel):
    model_config = _example({"id": 17, "signals": {"pdq": _PDQ}})
    id: int
    signals: dict[str, str]


class ShownMetadata(BaseModel):
    content_id: str | None
    content_uri: str | None
    json_: dict[str, Any] | None = Field(alias="json")
    collab: dict[str, list[str]] | None


class Content(BaseModel):
    """A content item (or a list entry no item added): ``disable_until_ts`` 1 while enabled,
    0 when disabled (an entry: contested, delisted or deleted), else disabled until that Unix
    time; ``signals`` if asked for, ``metadata`` and ``note`` if the item has them."""

    model_config = _example(
        {"id": 17, "disable_until_ts": 1, "original_media_uri": None,
         "bank": {"name": "KNOWN", "matching_enabled_ratio": 1.0}, "signals": {"pdq": _PDQ},
         "metadata": {"content_id": "report-4411", "content_uri": None, "json": None,
                      "collab": None}, "note": "from the March review"}
    )  # fmt: skip
    id: int
    disable_until_ts: int
    original_media_uri: str | None
    bank: Bank
    signals: dict[str, str] | SkipJsonSchema[None] = None
    metadata: ShownMetadata | SkipJsonSchema[None] = None
    note: str | SkipJsonSchema[None] = None


class ContentUpdated(BaseModel):
    """The item after ``PUT``, in HMA's shape for it."""

    model_config = _example(
        {"id": 17, "disable_until_ts": 1767225600, "collab_metadata": {},
         "original_media_uri": None, "bank": {"name": "KNOWN", "matching_enabled_ratio": 1.0},
         "user_metadata": None, "note": None}
    )  # fmt: skip
    id: int
    disable_until_ts: int
    collab_metadata: dict[str, list[str]]
    original_media_uri: str | None
    bank: Bank
    user_metadata: dict[str, Any] | None
    note: str | None


class Deleted(BaseModel):
    model_config = _example({"deleted": 1})
    deleted: int


class SignalTypeShown(BaseModel):
    name: str
    enabled_ratio: float


class SignalTypes(RootModel[list[SignalTypeShown]]):
    model_config = _example([{"name": "pdq", "enabled_ratio": 1.0}])


class ContentTypeShown(BaseModel):
    name: str
    enabled: bool


class ContentTypes(RootModel[list[ContentTypeShown]]):
    model_config = _example([{"name": "photo", "enabled": True}])


# --- exchanges ----------------------------------------------------------------------------------


class ExchangeApis(RootModel[list[str]]):
    """The installed exchange types."""

    model_config = _example(["fb_threatexchange", "hashguard", "ncmec", "sample", "stopncii"])


class ExchangeApiAuth(BaseModel):
    """Whether the exchange type takes credentials, and whether they are set (HMA's
    spelling)."""

    model_config = _example({"supports_authentification": True, "has_set_authentification": False})
    supports_authentification: bool
    has_set_authentification: bool


class SchemaField(BaseModel):
    name: str
    type: str
    required: bool
    default: Any
    help: str
    choices: list[str] | None


class FieldsOf(BaseModel):
    fields: list[SchemaField]


class ExchangeApiSchema(BaseModel):
    """The fields of ``api_json`` for an exchange of this type, and of ``credential_json``
    (null: it takes none)."""

    model_config = _example(
        {"config_schema": {"fields": [{"name": "privacy_group", "type": "number",
                                       "required": True, "default": None,
                                       "help": "the privacy group's id", "choices": None}]},
         "credentials_schema": {"fields": [{"name": "api_token", "type": "string",
                                            "required": True, "default": None,
                                            "help": "an app's access token", "choices": None}]}}
    )  # fmt: skip
    config_schema: FieldsOf
    credentials_schema: FieldsOf | None


class ExchangeNames(RootModel[list[str]]):
    model_config = _example(["NCMEC_NGO", "SAMPLE"])


class HmaExchange(BaseModel):
    """An exchange's configuration: its name, type, whether it fetches, and its type's
    settings."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"name": "TX_GROUP", "api": "fb_threatexchange",
                                         "enabled": True, "privacy_group": 1012185296055235}]},
    )  # fmt: skip
    name: str
    api: str
    enabled: bool


class FetchStatus(BaseModel):
    """HMA's fetch status (Unix times in seconds; null before the first fetch)."""

    model_config = _example(
        {"checkpoint_ts": 1773480413, "running_fetch_start_ts": None,
         "last_fetch_complete_ts": 1773480420, "last_fetch_succeeded": True,
         "up_to_date": True, "fetched_items": 1200}
    )  # fmt: skip
    checkpoint_ts: int | None
    running_fetch_start_ts: int | None
    last_fetch_complete_ts: int | None
    last_fetch_succeeded: bool | None
    up_to_date: bool
    fetched_items: int
