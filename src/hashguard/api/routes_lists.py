"""Hash lists: create, read, change the policy, remove; import; change one entry; the change
feed a subscriber follows (``changes since N``); signed releases. Curators write, auditors and
reviewers read; a key limited to lists sees and touches only those."""

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from hashguard.api.auth import actor, allow, check_lists, partner, visible
from hashguard.api.errors import ApiError
from hashguard.api.fields import HASH_CHARS, MANY, HashText, Name, Names, Text, Word, Words
from hashguard.api.jobs import ImportJob, ReleaseJob
from hashguard.api.matching import ListedSignal, service_of
from hashguard.api.schemas import (
    BODY,
    KEYED,
    Acknowledged,
    Changes,
    ChangeShown,
    EntryShown,
    HashLists,
    HashListShown,
    Imported,
    JsonFloat,
    JsonInt,
    ListRemoved,
    Release,
    refusals,
)
from hashguard.api.service import Service
from hashguard.errors import MAX_ID
from hashguard.lists.model import (
    NAME_PATTERN,
    Category,
    Change,
    ChangeKind,
    HashList,
    ListPolicy,
)
from hashguard.lists.records import InvalidRecord
from hashguard.signals import registry
from hashguard.store.api_keys import ApiKey, Role
from hashguard.store.list_errors import ListError

router = APIRouter(prefix="/v1/lists", tags=["lists"])
Reader = Annotated[ApiKey, allow(Role.CURATOR, Role.AUDITOR, Role.REVIEWER)]
Curator = Annotated[ApiKey, allow(Role.CURATOR)]
Admin = Annotated[ApiKey, allow()]

_CHUNK = 1024 * 1024


VariantFamily = Literal["dihedral", "trim", "scale"]


def _every_variant() -> list[VariantFamily]:
    return ["dihedral", "trim", "scale"]


class Policy(BaseModel):
    thresholds: dict[str, JsonFloat] = Field(default_factory=dict)
    negative: StrictBool = False
    two_sources: StrictBool = False
    enabled_ratio: JsonFloat = Field(1.0, ge=0, le=1)
    four_eyes: StrictBool = Field(False, description="Detections need two reviewers who agree.")
    variants: list[VariantFamily] = Field(
        default_factory=_every_variant,
        max_length=MANY,
        description="The query variants that may match the list: dihedral (an image's 3 "
        "rotations and 4 flips), trim (the image inside flat borders: padding, letterboxing, "
        "a screenshot's frame), scale (an image of 640 px or less enlarged to 1024 px, the "
        "size its original likely had); [] for the query as it is (HMA's matching). Each "
        "variant can add false positives: a list of hard cases may want fewer.",
        examples=[["dihedral", "trim", "scale"], []],
    )

    def policy(self) -> ListPolicy:
        return ListPolicy(dict(self.thresholds), self.negative, self.two_sources,
                          self.enabled_ratio, self.four_eyes, frozenset(self.variants))  # fmt: skip


class NewList(BaseModel):
    name: str = Field(max_length=100, pattern=f"^{NAME_PATTERN}$")
    owner: str = Field(max_length=200, description="The organisation that curates the list.")
    category: Category
    jurisdictions: Words = Field(default_factory=list)
    legal_basis: Text = ""
    policy: Policy = Field(default_factory=lambda: Policy(enabled_ratio=1.0, four_eyes=False))


class ListUpdate(BaseModel):
    policy: Policy | None = None
    legal_basis: Text | None = None
    jurisdictions: Words | None = None


class Acknowledgement(BaseModel):
    version: JsonInt = Field(ge=0, le=MAX_ID, description="The list version the follower applied.")


class EntryChange(BaseModel):
    kind: Literal["contest", "delist", "delete", "relabel", "reinstate"] = Field(
        description="reinstate: a contested or delisted entry becomes active again (a reason is "
        "required; 409 for an entry that is active or deleted)."
    )
    signal: ListedSignal
    value: str = Field(max_length=HASH_CHARS)
    reason: str = Field("", max_length=2000)
    labels: Names | None = Field(None, description="The new labels (relabel only).")


def list_json(hash_list: HashList, unstable: int | None = None) -> dict[str, Any]:
    """The list as the API shows it; ``unstable``: its count of unstable entries, when read."""
    return {
        "name": hash_list.name,
        "owner": hash_list.owner,
        "category": hash_list.category.value,
        "jurisdictions": list(hash_list.jurisdictions),
        "legal_basis": hash_list.legal_basis,
        "policy": hash_list.policy.as_json(),
        "version": hash_list.version,
        "unstable": unstable,
    }


def _listed(service: Service, key: ApiKey, name: str) -> HashList:
    check_lists(key, [name])
    try:
        return service.lists.get(name)
    except ListError as error:
        raise ApiError(404, str(error)) from None


@router.get("", response_model=HashLists, responses=refusals(*KEYED))
async def all_lists(request: Request, key: Reader) -> dict[str, Any]:
    """The lists this key may see."""
    held = await run_in_threadpool(service_of(request).lists.lists)
    names = set(visible(key, [hash_list.name for hash_list in held]))
    return {"lists": [list_json(h) for h in held if h.name in names]}


@router.post(
    "",
    status_code=201,
    response_model=HashListShown,
    responses=refusals(400, *KEYED, 409, *BODY),
)
async def create_list(request: Request, key: Curator, body: NewList) -> dict[str, Any]:
    """Create an empty list (audited)."""
    if key.lists:
        raise ApiError(403, "a key limited to lists cannot create lists")
    service = service_of(request)

    def create() -> HashList:
        return service.lists.create(
            body.name, body.owner, body.category, body.jurisdictions, body.legal_basis,
            body.policy.policy(), actor(key),
        )  # fmt: skip

    try:
        created = await run_in_threadpool(create)
    except ListError as error:
        raise ApiError.of(error) from None
    return list_json(created)


@router.get("/{name}", response_model=HashListShown, responses=refusals(*KEYED, 404))
async def get_list(request: Request, key: Reader, name: Name) -> dict[str, Any]:
    """The list: owner, policy, version, and how many of its entries are unstable."""
    service = service_of(request)

    def read() -> dict[str, Any]:
        hash_list = _listed(service, key, name)
        try:
            unstable = service.lists.unstable(name)
        except ListError as error:  # removed since
            raise ApiError(404, str(error)) from None
        return list_json(hash_list, unstable)

    return await run_in_threadpool(read)


@router.patch("/{name}", response_model=HashListShown, responses=refusals(400, *KEYED, 404, *BODY))
async def update_list(
    request: Request, key: Curator, name: Name, body: ListUpdate
) -> dict[str, Any]:
    """Change the policy, legal basis or jurisdictions (audited, with the old values)."""
    service = service_of(request)
    await run_in_threadpool(_listed, service, key, name)

    def update() -> HashList:
        policy = body.policy.policy() if body.policy is not None else None
        return service.lists.update(name, policy, body.legal_basis, body.jurisdictions, actor(key))

    try:
        updated = await run_in_threadpool(update)
    except ListError as error:
        raise ApiError(400, str(error)) from None
    return list_json(updated)


@router.delete("/{name}", response_model=ListRemoved, responses=refusals(*KEYED, 404, 409))
async def remove_list(request: Request, key: Admin, name: Name) -> dict[str, Any]:
    """Remove a list with its entries and change log (admin only; audited). A list an
    exchange fills is refused (409): remove the exchange first."""
    service = service_of(request)
    await run_in_threadpool(_listed, service, key, name)
    try:
        removed = await run_in_threadpool(service.lists.remove, name, actor(key))
    except ListError as error:
        raise ApiError.of(error) from None
    return {"removed": removed.name, "version": removed.version}


@router.post(
    "/{name}/import",
    response_model=Imported,
    responses=refusals(400, *KEYED, 404, 413, 422),
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {
        "type": "string", "format": "binary"}}}}},
)  # fmt: skip
async def import_list(
    request: Request,
    key: Curator,
    name: Name,
    format: Annotated[Literal["text", "csv", "pytx", "ncmec", "stopncii"], Query()],
    signal: Annotated[Word | None, Query(description="The values' signal (text format).")] = None,
    source: Annotated[Name | None, Query(description="The organisation (text format).")] = None,
    jurisdiction: Annotated[Word, Query(description="The source's (text format).")] = "",
) -> dict[str, Any]:
    """Import a file sent as the body, in one transaction: a malformed record anywhere
    applies nothing, and the error names the line or record."""
    service = service_of(request)
    await run_in_threadpool(_listed, service, key, name)
    listable = registry.listable_names()
    if format == "text" and (signal is None or signal.lower() not in listable):
        raise ApiError(400, f"text lists need signal=, one of {', '.join(listable)}")
    with tempfile.TemporaryDirectory(prefix="hashguard-import-") as directory:
        # A hash list, not media: spooled to a private temporary file for the streaming readers.
        path = Path(directory) / "body"
        with open(path, "wb") as spool:
            async for chunk in request.stream():
                spool.write(chunk)
        job = ImportJob(service.url, name, str(path), format, signal, source, jurisdiction,
                        actor(key))  # fmt: skip
        outcome = await service.jobs.run(job)
    if isinstance(outcome, str):
        raise ApiError(400, outcome.replace(str(path), "the request body"))
    return {"list": name, **outcome}


@router.post(
    "/{name}/changes",
    response_model=ChangeShown,
    response_model_exclude_unset=True,
    responses=refusals(400, *KEYED, 404, 409, *BODY),
)
async def change_entry(
    request: Request, key: Curator, name: Name, body: EntryChange
) -> dict[str, Any]:
    """Contest, delist, delete, reinstate or relabel one entry; matching stops (or follows, or
    starts again) at once."""
    service = service_of(request)
    await run_in_threadpool(_listed, service, key, name)
    if (body.kind == "relabel") != (body.labels is not None):
        raise ApiError(400, "labels are given with relabel, and only with relabel")

    def run() -> Change:
        return service.lists.change(name, ChangeKind(body.kind), body.signal, body.value,
                                    body.reason, actor(key), body.labels)  # fmt: skip

    try:
        change = await run_in_threadpool(run)
    except (ListError, InvalidRecord) as error:
        raise ApiError.of(error) from None
    return change.as_json()


@router.get(
    "/{name}/changes",
    response_model=Changes,
    response_model_exclude_unset=True,
    responses=refusals(*KEYED, 404, 422),
)
async def changes_since(
    request: Request,
    key: Reader,
    name: Name,
    since: Annotated[int, Query(ge=0, le=MAX_ID, description="Changes after this version.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """The change log after version ``since``, oldest first: a subscriber asks again with
    ``since`` = the last version it got until ``changes`` comes back empty."""
    service = service_of(request)
    hash_list = await run_in_threadpool(_listed, service, key, name)

    def read() -> list[dict[str, Any]]:
        return [c.as_json() for c in service.lists.changes_since(name, since, limit)]

    changes = await run_in_threadpool(read)
    return {"list": name, "version": hash_list.version, "since": since, "changes": changes}


@router.get(
    "/{name}/entries/{signal}/{value}",
    response_model=EntryShown,
    responses=refusals(400, *KEYED, 404),
)
async def get_entry(
    request: Request, key: Reader, name: Name, signal: Word, value: HashText
) -> dict[str, Any]:
    """One entry: status, labels, provenance."""
    service = service_of(request)
    await run_in_threadpool(_listed, service, key, name)
    if signal not in registry.listable_names():
        raise ApiError(
            400, f"signal {signal!r}: expected one of {', '.join(registry.listable_names())}"
        )
    try:
        entry = await run_in_threadpool(service.lists.entry, name, signal, value)
    except (ListError, InvalidRecord) as error:
        raise ApiError.of(error) from None
    return {"entry": entry.id, "signal": entry.signal, "value": entry.value,
            "status": entry.status.value, "labels": sorted(entry.labels),
            "provenance": entry.provenance.as_json(), "version": entry.version,
            "stability": entry.stability}  # fmt: skip


@router.post(
    "/{name}/releases",
    status_code=201,
    response_model=Release,
    responses=refusals(*KEYED, 404, 409),
)
async def release_list(request: Request, key: Curator, name: Name) -> dict[str, Any]:
    """Sign the list's matchable entries as a release with the service's owner key and append
    it to the transparency log; 409 if the service has no release key, log or directory."""
    service = service_of(request)
    await run_in_threadpool(_listed, service, key, name)
    settings = service.settings
    if settings.release_key is None or settings.release_log is None or settings.release_dir is None:
        raise ApiError(409, "this service does not sign releases (serve --release-key, "
                            "--release-log and --release-dir)")  # fmt: skip

    job = ReleaseJob(service.url, name, str(settings.release_key), str(settings.release_log),
                     str(settings.release_dir))  # fmt: skip
    outcome = await service.jobs.run(job)
    if isinstance(outcome, str):
        raise ApiError(409, f"release of {name} failed: {outcome}")
    return outcome


@router.post(
    "/{name}/acknowledgements",
    response_model=Acknowledged,
    responses=refusals(*KEYED, 404, 409, *BODY),
)
async def acknowledge(
    request: Request, key: Reader, name: Name, body: Acknowledgement
) -> dict[str, Any]:
    """A follower's receipt: it has applied the list up to ``version`` (``hashguard lists
    follow`` sends it after each catch-up). A victim's case shows how many followers have
    applied its withdrawal. 409 for a version the list has not reached."""
    service = service_of(request)
    hash_list = await run_in_threadpool(_listed, service, key, name)
    if body.version > hash_list.version:
        raise ApiError(409, f"list {name} is at version {hash_list.version}, not {body.version}")
    receipt = await run_in_threadpool(service.receipts.record, name, partner(key), body.version)
    return {"list": name, "partner": receipt.partner, "version": receipt.version,
            "at": receipt.at.isoformat()}  # fmt: skip
