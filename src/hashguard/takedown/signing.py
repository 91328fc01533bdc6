"""Signed JSON documents: notices, evidence bundles and status messages carry their signature
inside, so a hoster, a regulator or a court can check them with the hotline's public key alone.

The signature is Ed25519 over the document's canonical form (UTF-8 JSON, keys sorted, no
spaces) without its ``hashguard_signature`` member, which holds the algorithm, the public key
(64 hex digits) and the signature (128 hex digits).
"""

import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.errors import Unverified
from hashguard.transparency import keys

FIELD: Final = "hashguard_signature"
ALGORITHM: Final = "ed25519"


class BadSignature(Unverified):
    """A document whose signature is missing, malformed or not the expected key's."""


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: ``document`` without its signature, keys sorted."""
    unsigned = {key: value for key, value in document.items() if key != FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()  # fmt: skip


def sign(document: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``document`` with its signature by ``key``."""
    signature = {"algorithm": ALGORITHM, "public_key": keys.public_hex(key),
                 "signature": keys.sign(key, canonical(document))}  # fmt: skip
    return {**{k: v for k, v in document.items() if k != FIELD}, FIELD: signature}


def verify(document: Mapping[str, Any], public: str | None = None) -> str:
    """The public key (hex) that signed ``document``; with ``public``, it must be that key.
    Raises BadSignature saying what is wrong."""
    signature = document.get(FIELD)
    if not isinstance(signature, Mapping):
        raise BadSignature(f"the document has no {FIELD} member")
    if signature.get("algorithm") != ALGORITHM:
        raise BadSignature(f"{FIELD}.algorithm: expected {ALGORITHM!r}")
    signer, value = signature.get("public_key"), signature.get("signature")
    if not isinstance(signer, str) or not isinstance(value, str):
        raise BadSignature(f"{FIELD}: expected public_key and signature as hex strings")
    if public is not None and signer.lower() != public.lower():
        raise BadSignature(f"signed by {signer}, not by the expected key {public}")
    if not keys.verify(signer, canonical(document), value):
        raise BadSignature("the signature does not match the document (changed after signing?)")
    return signer.lower()


def dumps(document: Mapping[str, Any]) -> str:
    """A signed document as the text that is sent and stored (indented for people)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
