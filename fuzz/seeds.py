"""Writes the fuzz corpus (fuzz/corpus/<target>/): small, benign, generated seeds, one
directory per target. Run from the repository root after changing a target or a format:

    PYTHONPATH=src python fuzz/seeds.py [TARGET ...]   # named targets only (default: all)

Images are generated patterns; list files are the repository's own examples/; the device files
come from a real release of two made-up hashes built here, signed with a throwaway key.
"""

import base64
import hashlib
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from harness import load  # fuzz/harness.py, beside this script
from PIL import Image

from hashguard.device import delta, oprf
from hashguard.device.build import build
from hashguard.index.fuse import FuseFilter
from hashguard.lists.model import (
    Category,
    Change,
    ChangeKind,
    EntryStatus,
    HashList,
    ListPolicy,
    Provenance,
    new_entry,
)
from hashguard.signals import registry
from hashguard.transparency import keys
from hashguard.transparency import manifest as signed_manifest
from hashguard.transparency.log import TransparencyLog

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
EXAMPLES = ROOT / "examples"


def main() -> None:
    seeds = {
        "media_sniff": dict(_images()),
        "media_structure": dict(_images()),
        "media_image": dict(_images()),
        "list_text": _text_lists(),
        "list_release": {"release.bin": _release()},
        "list_csv": _examples("shared.csv"),
        "list_pytx": _examples("signals.csv", "local_file.txt"),
        "list_ncmec": _examples("entries.xml"),
        "exchange_ncmec": _examples("entries.xml"),
        "list_stopncii": {**_examples("fetch.json"), "lines.jsonl": _stopncii_lines()},
        "exchange_stopncii": {"page.json": _stopncii_page()},
        "exchange_hashguard_feed": _feed_pages(),
        "exchange_hashguard_about": _list_descriptions(),
        "exchange_threatexchange": _threat_updates(),
        "device_evaluation": _blinded(),
        "device_oprf_answer": _oprf_answers(),
        "media_video": _videos(),
        "media_video_frames": _videos(),
        "hotline_crawl_html": _pages(),
        "takedown_xarf": _xarf(),
        "hotline_referral": _referrals(),
        "takedown_partner_status": _statuses(),
        "report_ncmec_response": {
            "report.xml": b"<reportResponse><responseCode>0</responseCode><responseDescription>"
            b"Success</responseDescription><reportId>4564654</reportId></reportResponse>",
            "file.xml": b"<reportResponse><responseCode>0</responseCode><responseDescription>"
            b"Success</responseDescription><reportId>4564654</reportId><fileId>"
            b"0c66a6fd7ba7a5a3da7b6ba73bcdb9b0</fileId><hash>fafa5efeaf3cbe3b23b2748d13e629a1"
            b"</hash></reportResponse>",
        },
        "net_dns_answer": _dns_answers(),
        "net_http_answer": {
            "image.http": b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 8\r\n"
            b"Connection: close\r\n\r\n\x89PNG\r\n\x1a\n",
            "chunked.http": b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\n<p>hi\r\n0\r\n\r\n",
            "redirect.http": b"HTTP/1.1 302 Found\r\nLocation: /pictures/b.jpg\r\n"
            b"Content-Length: 0\r\n\r\n",
            "gone.http": b"HTTP/1.0 410 Gone\r\n\r\n",
        },
        "takedown_reply": {
            "ticket.json": b'{"ticket": "T-1234", "origin": "192.0.2.7"}',
            "error.json": b'{"id": 42, "error": "over quota"}',
        },
        **_device(),
    }
    chosen = sys.argv[1:]  # targets named: only their seeds are written again
    unknown = sorted(set(chosen) - set(seeds))
    if unknown:
        raise SystemExit(f"no seeds for {', '.join(unknown)}; targets: {', '.join(sorted(seeds))}")
    for target, files in seeds.items():
        if chosen and target not in chosen:
            continue
        directory = CORPUS / target
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds, {sum(map(len, files.values())):,} bytes")


def _images() -> Iterator[tuple[str, bytes]]:
    grid = np.indices((24, 32)).sum(axis=0) * 8 % 256
    rgb = Image.fromarray(np.stack([grid, grid[::-1], 255 - grid], axis=2).astype(np.uint8))
    for name, options in (
        ("image.png", {"format": "PNG"}),
        ("image.jpg", {"format": "JPEG", "quality": 60}),
        ("progressive.jpg", {"format": "JPEG", "quality": 60, "progressive": True}),
        ("image.webp", {"format": "WEBP", "quality": 50}),
        ("image.bmp", {"format": "BMP"}),
    ):
        out = io.BytesIO()
        rgb.save(out, **options)
        yield name, out.getvalue()
    frames = [rgb.convert("P"), rgb.rotate(90).convert("P")]
    for name, kind in (("animated.gif", "GIF"), ("pages.tiff", "TIFF")):
        out = io.BytesIO()
        frames[0].save(out, kind, save_all=True, append_images=frames[1:])
        yield name, out.getvalue()


def _examples(*names: str) -> dict[str, bytes]:
    return {name: (EXAMPLES / name).read_bytes() for name in names}


def _text_lists() -> dict[str, bytes]:
    """Plain lists; the first byte picks the signal (list_text's convention)."""
    signals = registry.listable_names()

    def picked(signal: str) -> bytes:
        return bytes([signals.index(signal)])

    md5 = "\n".join(hashlib.md5(bytes([n])).hexdigest() for n in range(3)).encode()
    return {
        "pdq.txt": picked("pdq") + (EXAMPLES / "hashes.txt").read_bytes(),
        "vpdq.txt": picked("vpdq") + (EXAMPLES / "videos.txt").read_bytes(),
        "md5.txt": picked("md5") + b"# digests\n" + md5 + b"\n",
    }


def _stopncii_lines() -> bytes:
    page = json.loads((EXAMPLES / "fetch.json").read_bytes())
    return b"".join(json.dumps(record).encode() + b"\n" for record in page["hashRecords"])


def _stopncii_page() -> bytes:
    """A FetchHashes page as the API answers it (the example file, with its paging fields)."""
    page = json.loads((EXAMPLES / "fetch.json").read_bytes())
    return json.dumps({**page, "nextSetTimestamp": 1764633780, "hasMoreRecords": False}).encode()


def _feed_pages() -> dict[str, bytes]:
    """Pages of a change feed as a hashguard service answers them (``Change.as_json``)."""
    at = "2026-01-01T00:00:00+00:00"
    added = Change(1, 1, ChangeKind.ADD, 1, "pdq", "a5" * 32, frozenset({"test"}), None, "",
                   "importer", at, 90)  # fmt: skip
    deleted = Change(1, 2, ChangeKind.DELETE, 2, "md5", "0" * 32, None, None, "withdrawn",
                     "victim", at)  # fmt: skip
    page = {"version": 2, "changes": [added.as_json(), deleted.as_json()]}
    return {"page.json": json.dumps(page).encode(), "empty.json": b'{"version": 0, "changes": []}'}


def _list_descriptions() -> dict[str, bytes]:
    """Lists as a hashguard service describes them (``GET /v1/lists/{name}``)."""
    policy = ListPolicy({"pdq": 31.0, "vpdq": 31.0}, four_eyes=True).as_json()
    known = {"name": "followed", "owner": "Hotline NL", "category": Category.KNOWN_CSAM.value,
             "jurisdictions": ["NL", "DE"], "legal_basis": "Art. 6(1)(e) GDPR", "version": 12,
             "policy": policy}  # fmt: skip
    plain = {**known, "category": Category.TEST.value, "jurisdictions": [], "legal_basis": "",
             "policy": ListPolicy(variants=frozenset()).as_json()}  # fmt: skip
    return {"known.json": json.dumps(known).encode(), "plain.json": json.dumps(plain).encode()}


def _oprf_answers() -> dict[str, bytes]:
    """The OPRF server's answers to the target's two blinded elements (first byte: the status)."""
    target = load("device_oprf_answer")
    evaluated, proof = oprf.blind_evaluate(target.KEY, target.BLINDED.elements)
    answer = {"evaluated": [base64.b64encode(e).decode() for e in evaluated],
              "proof": base64.b64encode(proof).decode()}  # fmt: skip
    ok, limited = (bytes([target.STATUSES.index(s)]) for s in (200, 429))
    refused = {"error": {"message": "too many evaluations from this device; try later"}}
    return {"evaluation.json": ok + json.dumps(answer).encode(),
            "limited.json": limited + json.dumps(refused).encode()}  # fmt: skip


def _release() -> bytes:
    """A list's release, and the log that holds it written to where the target reads it."""
    target = load("list_release")
    with tempfile.TemporaryDirectory() as tmp:
        seed = target.make(Path(tmp))
        shutil.rmtree(target.LOG_DIRECTORY, ignore_errors=True)
        shutil.copytree(Path(tmp) / "log", target.LOG_DIRECTORY,
                        ignore=shutil.ignore_patterns(".lock"))  # fmt: skip
    return seed


def _referrals() -> dict[str, bytes]:
    """A referral as a partner hotline sends it, with a whole trace."""
    trace = {"url": "https://img.site-b.test/", "host": "img.site-b.test",
             "at": "2026-11-30T10:00:00Z",
             "dns": {"name": "img.site-b.test", "cnames": ["edge.cdn.test"],
                     "addresses": ["192.0.2.7"], "error": None},
             "addresses": [{"address": "192.0.2.7", "network": "192.0.2.0/24", "asn": 64500,
                            "as_name": "EXAMPLE-AS", "country": "DE", "anycast": False,
                            "cdn": False, "hoster": "Hoster B"}],
             "hoster": {"name": "Hoster B", "country": "DE", "asns": [64500],
                        "networks": ["192.0.2.0/24"], "abuse_email": "abuse@hoster-b.test",
                        "abuse_api": None, "cdn": False, "upstream": None},
             "country": "DE", "cdn": False, "databases": ["ip2asn 2026-11-30"],
             "unresolved": []}  # fmt: skip
    item = {"url": "https://img.site-b.test/1.jpg",
            "hashes": {"pdq": "58a32d55a9b1a5d8e5c1e1b0c3b2a1f0e4d3c2b1a0f9e8d7c6b5a4f3e2d1cecf",
                       "md5": hashlib.md5(b"benign sample\n").hexdigest()},
            "labels": {"iccam": "baseline", "age": "prepubescent", "industry": "A1",
                       "depiction": "real"},
            "legality": {"NL": "illegal", "DE": "illegal"}, "assessment": "A-000001"}  # fmt: skip
    referral = {"version": 1, "referral": "0123456789abcdef0123456789abcdef",
                "from": {"hotline": "Hotline NL", "country": "NL", "reference": "HL-2026-000123"},
                "url": "https://site-b.test/gallery", "items": [item], "trace": trace,
                "reason": "Hosted in DE, where the partner hotline works."}  # fmt: skip
    return {"referral.json": json.dumps(referral).encode()}


def _statuses() -> dict[str, bytes]:
    """A partner's takedown status of a referral, plain and signed (a throwaway key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hashguard.takedown import signing

    status = {"referral": load("takedown_partner_status").REFERRAL,
              "url": "https://site-de.example/gallery", "status": "removed",
              "verified_at": "2026-03-14T09:26:53+00:00", "evidence": {"checks": [1]}}  # fmt: skip
    signed = signing.sign(status, Ed25519PrivateKey.generate())
    return {"status.json": json.dumps(status).encode(), "signed.json": json.dumps(signed).encode()}


def _dns_answers() -> dict[str, bytes]:
    """A nameserver's answers to the tracer's question: a CNAME chain to A records, and none."""
    import dns.message
    import dns.rcode
    import dns.rrset

    query = dns.message.make_query("media.site.example", "A")
    chained = dns.message.make_response(query)
    chained.answer.append(dns.rrset.from_text("media.site.example.", 300, "IN", "CNAME",
                                              "edge.cdn.example."))  # fmt: skip
    chained.answer.append(dns.rrset.from_text("edge.cdn.example.", 300, "IN", "A", "192.0.2.7"))
    missing = dns.message.make_response(query)
    missing.set_rcode(dns.rcode.NXDOMAIN)
    return {"chain.bin": chained.to_wire(), "nxdomain.bin": missing.to_wire()}


def _videos() -> dict[str, bytes]:
    """Short benign videos (a generated scene, panned) in each container hashguard reads."""
    import av

    from hashguard.media.synthetic import scene

    backdrop = scene(5, 128, 48)
    videos = {}
    for container, codec in (("mp4", "mpeg4"), ("webm", "libvpx"), ("avi", "mpeg4")):
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format=container) as output:
            stream = output.add_stream(codec, rate=5)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for index in range(5):
                frame = av.VideoFrame.from_image(backdrop.crop((index * 8, 0, index * 8 + 64, 48)))
                frame.pts = index
                for packet in stream.encode(frame):
                    output.mux(packet)
            for packet in stream.encode():
                output.mux(packet)
        videos[f"scene.{container}"] = buffer.getvalue()
    return videos


def _blinded() -> dict[str, bytes]:
    """Blinded elements as a device sends them (one, and four), and the identity; blinded with
    fixed scalars, so the corpus is the same each time it is written."""

    def blinded(*inputs: bytes) -> tuple[bytes, ...]:
        scalars = [oprf.hash_to_scalar(b"blind " + data, b"fuzz seeds") for data in inputs]
        return oprf.blind(inputs, scalars).elements

    one = blinded(b"seed one")
    four = blinded(b"a", b"b", b"c", b"d")
    return {"one.bin": b"".join(one), "four.bin": b"".join(four), "identity.bin": bytes(32)}


def _threat_updates() -> dict[str, bytes]:
    """Pages of ThreatExchange threat updates (fields as the exchange asks for them)."""
    updates = [
        {"id": "101", "indicator": "b" * 32, "type": "HASH_MD5", "last_updated": 1700000000,
         "should_delete": False, "tags": {"data": [{"text": "test"}]}},
        {"id": "102", "indicator": "a5" * 32, "type": "HASH_PDQ", "last_updated": 1700000100},
        {"id": "103", "should_delete": True, "last_updated": 1700000200},
        {"id": "104", "indicator": "x", "type": "URI", "last_updated": 1700000300},
    ]  # fmt: skip
    next_link = "https://graph.example/v21.0/1234/threat_updates?after=abc"
    error = {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                       "code": 190, "fbtrace_id": "A1b2"}}  # fmt: skip
    statuses = load("exchange_threatexchange").STATUSES  # the input's first byte picks one
    ok, moved, bad, denied, failed = (bytes([statuses.index(s)]) for s in (200, 302, 400, 401, 500))
    return {
        "page.json": ok + json.dumps({"data": updates, "paging": {"next": next_link}}).encode(),
        "empty.json": ok + b'{"data": []}',
        "redirect.txt": moved + b"/v21.0/1234/threat_updates?after=xyz",
        "error.json": bad + json.dumps(error).encode(),
        "refused.json": denied + json.dumps(error).encode(),
        "failure.txt": failed + b"<html>Service Unavailable</html>",
    }


def _pages() -> dict[str, bytes]:
    """HTML pages a crawler meets (the first line: the charset the server declared)."""
    return {
        "gallery.html": b"\n<html><head><base href='/media/'><meta property='og:image' "
        b"content='cover.jpg'></head><body><img src='a.jpg' srcset='a-2x.jpg 2x, b.webp 640w'>"
        b"<video src='v.mp4' poster='p.png'></video><a href='c.gif#top'>c</a></body></html>",
        "charset.html": b"utf-8\n<meta charset='shift_jis'><picture><source srcset='s.avif'>"
        b"<img src='//cdn.example/i.png'></picture>",
        "unknown-charset.html": b"a\x01b\n<p>text <a href='page.html'>not media</a></p>",
    }


def _xarf() -> dict[str, bytes]:
    reports = json.loads((EXAMPLES / "takedown-notices.json").read_bytes())
    return {
        "reports.json": (EXAMPLES / "takedown-notices.json").read_bytes(),
        "one.json": json.dumps(reports[0]).encode(),
        "lines.jsonl": b"".join(json.dumps(r).encode() + b"\n" for r in reports),
    }


def _device() -> dict[str, dict[str, bytes]]:
    """The files of a real offline release of two made-up hashes, and of its delta."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        signer, log_key = root / "signer.key", root / "log.key"
        keys.generate(signer)
        keys.generate(log_key)
        log = TransparencyLog.create_or_open(root / "log", keys.load(log_key))
        hash_list = HashList(1, "fuzz", "Fuzz", Category.TEST)
        values = [hashlib.sha256(bytes([n])).hexdigest() for n in range(3)]
        active = EntryStatus.ACTIVE

        def release(out: str, count: int, previous: Path | None) -> Path:
            entries = [
                new_entry(n + 1, 1, "sha256", value, frozenset(), Provenance(), active, n + 1)
                for n, value in enumerate(values[:count])
            ]
            build([(hash_list, entries)], "offline", keys.load(signer), log, keys.load(log_key),
                  root / out, previous=previous)  # fmt: skip
            return root / out

        first = release("v1", 2, None)
        second = release("v2", 3, first)
        files = signed_manifest.FILES
        found: dict[str, dict[str, bytes]] = {"device_manifest": {}, "device_filter": {},
                                              "device_delta": {}, "device_state": {}}  # fmt: skip
        for directory in (first, second):
            found["device_manifest"][directory.name] = b"\0".join(
                (directory / name).read_bytes() for name in files
            )
            described = json.loads((directory / signed_manifest.MANIFEST).read_bytes())["files"]
            for role, file in described.items():
                data = (directory / file["name"]).read_bytes()[:-32]  # the target adds the digest
                target = "device_delta" if role == "delta" else "device_filter"
                found[target][f"{directory.name}-{role}"] = data
        small = FuseFilter.build(np.arange(1, 4, dtype=np.uint64), 8)
        small.save(root / "small.bin")
        found["device_filter"]["small"] = (root / "small.bin").read_bytes()[:-32]
        added, removed = np.array([1, 5], dtype=np.uint64), np.array([2], dtype=np.uint64)
        delta.write(root / "delta.bin", {"exact_added": added, "exact_removed": removed})
        found["device_delta"]["exact"] = (root / "delta.bin").read_bytes()[:-32]
        head = log.head()
        found["device_state"]["state.json"] = json.dumps({
            "version": 2, "release": "v2", "signer": keys.public_hex(keys.load(signer)),
            "stream": ["a", "b", "offline", False], "log_key": log.public_key(),
            "head": head.as_json(),
        }).encode()  # fmt: skip
        return found


if __name__ == "__main__":
    main()
