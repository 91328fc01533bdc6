"""Signed JSON documents: notices, evidence bundles and status messages carry their signature
inside, so a hoster, a regulator or a court can check them with the hotline's public key alone.

The signature is Ed25519 over the document's canonical form without its
``hashguard_signature`` member, which holds the algorithm, the public key (64 hex digits) and
the signature (128 hex digits). The canonical form is the JSON Canonicalization Scheme (RFC
8785), so that a verifier in any language (JavaScript's ``JSON.stringify`` on the key-sorted
document, or a JCS library) reproduces the bytes:

- UTF-8, no spaces; object members sorted by their names' UTF-16 code units;
- strings as JSON writes them: ``"`` and ``\\`` escaped, control characters as ``\\b``,
  ``\\t``, ``\\n``, ``\\f``, ``\\r`` or ``\\u00xx`` (lower-case hex), everything else as is;
- numbers as JavaScript writes them (ECMAScript's Number::toString): a float with an integral
  value as an integer (``1.0`` -> ``1``, ``-0.0`` -> ``0``), others in the shortest form that
  reads back the same (``0.5``, ``0.1``), in exponent form from 1e21 up and below 1e-6
  (``1e+21``, ``1e-7``); NaN and infinities are refused. Integers are written as they are and
  must stay within +-2**53 to mean the same number elsewhere.
"""

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.errors import Unverified
from hashguard.transparency import keys

FIELD: Final = "hashguard_signature"
ALGORITHM: Final = "ed25519"


class BadSignature(Unverified):
    """A document whose signature is missing, malformed or not the expected key's."""


def canonical(document: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: ``document`` without its signature in the canonical form
    (RFC 8785, as the module says). Raises ValueError for NaN or an infinity, TypeError for a
    value JSON has no form for."""
    unsigned = {key: value for key, value in document.items() if key != FIELD}
    parts: list[str] = []
    _write(unsigned, parts)
    return "".join(parts).encode()


def number(value: float) -> str:
    """``value`` as JavaScript writes it (ECMAScript Number::toString, RFC 8785 3.2.2.3)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r}: JSON has no form for NaN or infinities")
    if value == 0:
        return "0"  # -0.0 too
    sign = "-" if value < 0 else ""
    # the shortest digits that read back as the value (Python's repr), as DIGITS x 10**exponent
    _, places, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, places))
    point = len(digits) + int(exponent)  # value = 0.DIGITS x 10**point
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        text = (digits[0] + ("." + digits[1:] if count > 1 else "") + "e"
                + ("+" if power > 0 else "-") + str(abs(power)))  # fmt: skip
    return sign + text


def _write(value: Any, parts: list[str]) -> None:
    if value is None or value is True or value is False:
        parts.append(json.dumps(value))
    elif isinstance(value, str):
        parts.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        parts.append(str(int(value)))
    elif isinstance(value, float):
        parts.append(number(value))
    elif isinstance(value, Mapping):
        names = sorted(value, key=lambda name: str(name).encode("utf-16-be"))
        parts.append("{")
        for index, name in enumerate(names):
            if not isinstance(name, str):
                raise TypeError(f"member name {name!r}: JSON names are strings")
            parts.append(("," if index else "") + json.dumps(name, ensure_ascii=False) + ":")
            _write(value[name], parts)
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"{type(value).__name__} has no JSON form")


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
    try:
        signed = canonical(document)
    except (ValueError, TypeError, RecursionError):
        raise BadSignature("the document holds a value JSON's canonical form has no form for "
                           "(NaN, an infinity) or is nested too deeply") from None  # fmt: skip
    if not keys.verify(signer, signed, value):
        raise BadSignature("the signature does not match the document (changed after signing?)")
    return signer.lower()


def dumps(document: Mapping[str, Any]) -> str:
    """A signed document as the text that is sent and stored (indented for people)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
