"""``hashguard demo``, and the demo job: a small list of benign sample images, and which edited
copies match it, and why.

Everything happens in memory. The images are generated shapes and colours, nothing else.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the demo's imaging and hashing load only when it runs
    from PIL import Image
    from rich.console import Console
    from sqlalchemy import Engine

    from hashguard.signals.pdq import PdqHash
    from hashguard.store.lists import ListStore

LIST_SEEDS = (1, 2, 3, 4)
UNRELATED_SEEDS = (11, 12)
DEMO_SERVICE = "demo-photos"
# The uploads the demo service checked (content ref: the copy it holds): three in its content
# store, and one deleted from it since, whose page shows the store's answer instead.
UPLOADS = {"copy-b.jpg": "copy-b", "copy-d.png": "copy-d", "copy-e.jpg": "copy-e",
           "deleted-upload.jpg": "copy-c"}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    name: str
    pdq: "PdqHash"
    sha256: bytes


@dataclass(frozen=True)
class Copy:
    name: str
    edit: str
    data: bytes


def _edited(
    image: "Image.Image", edit: Callable[["Image.Image"], "Image.Image"], **jpeg: int
) -> bytes:
    from hashguard.media.synthetic import encode

    return encode(edit(image), "JPEG", **jpeg)


def _watermark(image: "Image.Image") -> "Image.Image":
    from PIL import ImageDraw

    marked = image.copy()
    ImageDraw.Draw(marked).text((image.width // 2, image.height - 60), "shared", fill="white")
    return marked


def _crop(image: "Image.Image", fraction: float) -> "Image.Image":
    dx, dy = int(image.width * fraction / 2), int(image.height * fraction / 2)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def build_copies() -> tuple[dict[str, bytes], list[Copy]]:
    """The list's source images (by name) and the copies to check against it."""
    from PIL import Image

    from hashguard.media.synthetic import encode, scene

    originals = {f"sample-{seed}": scene(seed, 800, 600) for seed in LIST_SEEDS}
    listed = {name: encode(image) for name, image in originals.items()}
    one, two, three, four = originals.values()
    mirror = Image.Transpose.FLIP_LEFT_RIGHT
    copies = [
        Copy("copy-a", "exact copy of sample-1", listed["sample-1"]),
        Copy("copy-b", "sample-1, JPEG quality 40", encode(one, quality=40)),
        Copy("copy-c", "sample-2, half size", _edited(two, lambda i: i.reduce(2))),
        Copy("copy-d", "sample-2, PNG + caption", encode(_watermark(two), "PNG")),
        Copy("copy-e", "sample-3, rotated 90°", _edited(three, lambda i: i.rotate(90, expand=1))),
        Copy("copy-f", "sample-4, mirrored", _edited(four, lambda i: i.transpose(mirror))),
        Copy("copy-g", "sample-3, 10 % cropped", _edited(three, lambda i: _crop(i, 0.10))),
        Copy("copy-h", "sample-4, 30 % cropped", _edited(four, lambda i: _crop(i, 0.30))),
    ]
    for seed in UNRELATED_SEEDS:
        copies.append(Copy(f"other-{seed}", "unrelated image", encode(scene(seed, 800, 600))))
    return listed, copies


def run(console: "Console", save: Path | None = None) -> None:
    from rich.table import Table

    from hashguard.signals.digests import Sha256Signal
    from hashguard.signals.pdq import DEFAULT_THRESHOLD, PdqSignal

    pdq, sha256 = PdqSignal(), Sha256Signal()
    listed, copies = build_copies()
    entries = [Entry(name, pdq.hash(data), sha256.hash(data)) for name, data in listed.items()]
    console.print(
        f"[bold]hashguard demo[/bold]: a list of {len(entries)} benign sample images "
        f"(PDQ + SHA-256), checked against {len(copies)} edited or unrelated copies.\n"
        f"PDQ matches at distance <= {DEFAULT_THRESHOLD} of 256 bits; rotations and mirror "
        "images are found by also checking the 8 dihedral variants of each copy's hash.\n"
    )
    table = Table(show_lines=False)
    for column in ("copy", "edit", "verdict", "why"):
        table.add_column(column)
    matched = 0
    for copy in copies:
        digest = sha256.hash(copy.data)
        variants = pdq.hash_dihedral(copy.data).variants
        exact = next((e for e in entries if e.sha256 == digest), None)
        best_entry, best_variant, result = min(
            ((e, name, pdq.compare(v, e.pdq)) for e in entries for name, v in variants.items()),
            key=lambda item: item[2].distance,
        )
        if exact is not None:
            verdict, why = "[green]match[/green]", f"{exact.name}: SHA-256 identical"
        elif result.match:
            verdict = "[green]match[/green]"
            why = f"{best_entry.name}: PDQ distance {result.distance:g}"
            if best_variant != "original":
                why += f" (its {best_variant} variant)"
        else:
            verdict = "[red]no match[/red]"
            why = f"nearest entry {result.distance:g} bits away (> {result.threshold:g})"
            if result.distance <= result.threshold:
                why = result.reason  # close, but too little detail to match
        matched += exact is not None or result.match
        table.add_row(copy.name, copy.edit, verdict, why)
    console.print(table)
    console.print(
        f"\n{matched} of {len(copies)} copies matched. Crops are PDQ's known weak spot: they "
        "shift the whole 64x64 grid; hashguard reports such misses instead of hiding them."
    )
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for name, data in listed.items():
            (save / f"{name}.jpg").write_bytes(data)
        for copy in copies:
            suffix = ".png" if copy.data.startswith(b"\x89PNG") else ".jpg"
            (save / f"{copy.name}{suffix}").write_bytes(copy.data)
        console.print(f"\nSample images written to {save}/. Try:")
        console.print(f"  .venv/bin/hashguard hash {save}")
        console.print(f"  .venv/bin/hashguard compare {save}/sample-3.jpg {save}/copy-e.jpg")


def prepare_service(directory: Path, content_url: str = "") -> dict[str, str]:
    """A fresh demo database in ``directory`` with the sample list (PDQ and SHA-256 of the
    sample images), the sample and copy images as files, and a key per role; the keys' tokens
    by role. With ``content_url``, also the demo service (its items at that URL) and the
    detections of its matched uploads, waiting in the review queue."""
    from hashguard.lists.model import Category, Provenance, Source
    from hashguard.lists.records import Submission
    from hashguard.signals.digests import CanonicalSha256Signal, Sha256Signal
    from hashguard.signals.pdq import PdqSignal
    from hashguard.store.api_keys import ApiKeyStore, Role
    from hashguard.store.database import open_engine
    from hashguard.store.lists import ListStore

    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("hashguard.db*"):
        stale.unlink()
    listed, copies = build_copies()
    images = directory / "images"
    images.mkdir(exist_ok=True)
    for name, data in listed.items():
        (images / f"{name}.jpg").write_bytes(data)
    for copy in copies:
        suffix = ".png" if copy.data.startswith(b"\x89PNG") else ".jpg"
        (images / f"{copy.name}{suffix}").write_bytes(copy.data)
    engine = open_engine(f"sqlite:///{directory / 'hashguard.db'}")
    try:
        store = ListStore(engine)
        store.create("demo-samples", "hashguard demo", Category.TEST, ["NL"],
                     "benign generated images, for trying hashguard out", actor="demo")  # fmt: skip
        provenance = Provenance("hashguard demo", sources=(Source("hashguard demo", "NL"),))
        pdq, sha256, canonical = PdqSignal(), Sha256Signal(), CanonicalSha256Signal()
        records = []
        for name, data in listed.items():
            labels = frozenset({name})
            records.append(Submission("pdq", pdq.hash(data).hex, labels, provenance))
            records.append(Submission("sha256", sha256.hash(data).hex(), labels, provenance))
            records.append(
                Submission("canonical_sha256", canonical.hash(data).hex(), labels, provenance)
            )
        store.apply("demo-samples", records, "demo")
        _device_releases(store, directory / "device")
        if content_url:
            _detections(engine, store, {c.name: c.data for c in copies}, content_url)
        keys = ApiKeyStore(engine)
        return {role.value: keys.create(role, name=f"demo {role.value}", actor="demo",
                                        hoster="Example Hosting B.V." if role is Role.HOSTER
                                        else None)[1]
                for role in Role}  # fmt: skip
    finally:
        engine.dispose()


def _detections(
    engine: "Engine", store: "ListStore", copies: dict[str, bytes], content_url: str
) -> None:
    """The demo service, and a detection for review of each of its uploads that matches the
    demo list, as its upload check would open them."""
    from hashguard.matching import Matcher, Query
    from hashguard.review.detections import Review
    from hashguard.signals.digests import Sha256Signal
    from hashguard.signals.pdq import PdqSignal

    review = Review(engine, store)
    service = review.services.create(DEMO_SERVICE, content_url=content_url, actor="demo")
    pdq, sha256 = PdqSignal(), Sha256Signal()
    refs = list(UPLOADS)
    held = [copies[UPLOADS[ref]] for ref in refs]
    queries = [Query.of([("pdq", pdq.hash_dihedral(data)), ("sha256", sha256.hash(data))])
               for data in held]  # fmt: skip
    found = Matcher(store, ["demo-samples"]).match_all(queries)
    uploads = [(ref, matches, {"account_ref": f"demo-user-{i}"})
               for i, (ref, matches) in enumerate(zip(refs, found, strict=True), 1)]  # fmt: skip
    review.open_matches(service, uploads)


def _device_releases(store: "ListStore", directory: Path) -> None:
    """An offline and a server-assisted device release of the demo list (near duplicates too),
    signed and logged in ``directory``; the server's OPRF key is ``directory/oprf.key``."""
    import shutil

    from hashguard.device import oprf
    from hashguard.device.build import build
    from hashguard.lists.model import EntryStatus
    from hashguard.transparency import keys
    from hashguard.transparency.log import TransparencyLog

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    keys.generate(directory / "signer.key")
    keys.generate(directory / "log.key")
    server_key = oprf.ServerKey.generate()
    server_key.save(directory / "oprf.key")
    signer, log_key = keys.load(directory / "signer.key"), keys.load(directory / "log.key")
    log = TransparencyLog.create_or_open(directory / "log", log_key)
    for mode in ("offline", "oprf"):
        lists = [store.entries("demo-samples", [EntryStatus.ACTIVE])]
        build(lists, mode, signer, log, log_key, directory / f"release-{mode}",
              server_key=server_key if mode == "oprf" else None, near_duplicates=True)  # fmt: skip


def explain_service(
    console: "Console", directory: Path, base: str, tokens: dict[str, str], waiting: int
) -> None:
    images, device = directory / "images", directory / "device"
    matcher, curator, auditor = tokens["matcher"], tokens["curator"], tokens["auditor"]
    console.print(
        f"\n[bold]The detection service[/bold] is starting at {base} with the list "
        f"'demo-samples' ({directory}/hashguard.db). Open {base}/docs for every route.\n"
        f"Demo keys (one per role; made for this run only):\n"
        + "".join(f"  {role:9} {token}\n" for role, token in tokens.items())
        + "\nTry, in another terminal:\n"
        f"  curl -s -H 'Authorization: Bearer {matcher}' -F file=@{images}/copy-b.jpg "
        f"'{base}/v1/match/media?content_ref=try-1'\n"
        f"  curl -s -H 'Authorization: Bearer {matcher}' -F file=@{images}/other-11.jpg "
        f"{base}/v1/match/media      # no match: nothing is stored\n"
        f"  curl -s -H 'Authorization: Bearer {matcher}' -F photo=@{images}/sample-1.jpg "
        f"{base}/m/lookup      # HMA's route\n"
        f"  curl -s -H 'Authorization: Bearer {auditor}' {base}/v1/matches      # the match log\n"
        f"  curl -s -H 'Authorization: Bearer {curator}' {base}/v1/lists/demo-samples/changes\n"
        f"  curl -s -H 'Authorization: Bearer {auditor}' {base}/v1/audit/verify\n"
        f"  curl -s -H 'Authorization: Bearer {auditor}' {base}/metrics | grep hashguard_\n"
        "\nThe on-device check (nothing is reported; offline, then through this server):\n"
        f"  .venv/bin/hashguard device check {images}/copy-a.jpg {images}/copy-b.jpg "
        f"{images}/other-11.jpg --release {device}/release-offline --log {device}/log\n"
        f"  .venv/bin/hashguard device check {images}/copy-d.png --language nl "
        f"--release {device}/release-oprf --log {device}/log --server {base} "
        f"--token {tokens['device']}\n"
        f"\n[bold]The review desk[/bold]: {base}/desk  ({waiting} detections of the demo service "
        f"'{DEMO_SERVICE}' wait in its queue)\n"
        f"  Sign in with the reviewer key: [bold]{tokens['reviewer']}[/bold]\n"
        "  (an admin key works too; the items are benign generated images, served by this demo)\n"
        f"\n[bold]The victims' page[/bold]: {base}/victims  (?lang=nl in Dutch)\n"
        "\nStop it with Ctrl+C.\n",
        soft_wrap=True,  # commands stay on one line, to copy
    )


def demo(
    save: Annotated[
        Path | None, typer.Option(help="Also write the sample images to this directory.")
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then start the service with the demo list (in ./hashguard-demo) and a review "
            "queue of detections to try the desk on.",
        ),
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The service's port.")] = 8000,
) -> None:
    """Hash benign sample images, build a small list, and show which edited copies match; with
    --serve, then run the detection service on them, with detections waiting at /desk, and
    print what to try."""
    from rich.console import Console

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 100)
    run(console, save)
    if serve:
        import ipaddress

        from hashguard.api import ServiceSettings
        from hashguard.cli.demo_content import ContentStore
        from hashguard.cli.serve import run as run_service

        directory = Path("hashguard-demo").resolve()
        images = directory / "images"
        images.mkdir(parents=True, exist_ok=True)
        store = ContentStore(images)
        try:
            tokens = prepare_service(directory, store.url + "/content/{ref}")
            base = f"http://127.0.0.1:{port}"
            explain_service(console, directory, base, tokens, len(UPLOADS))
            url = f"sqlite:///{directory / 'hashguard.db'}"
            settings = ServiceSettings(
                database_url=url, secret_file=directory / "secret.key", public_url=base,
                oprf_key=directory / "device" / "oprf.key",
                # the desk fetches items from the demo's own content store, on loopback
                fetch_networks=(ipaddress.ip_network("127.0.0.0/8"),),
            )  # fmt: skip
            run_service(settings, "127.0.0.1", port)
        finally:
            store.close()
