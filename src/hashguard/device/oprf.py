"""A verifiable oblivious pseudorandom function: RFC 9497, VOPRF mode, ristretto255-SHA512.

The server holds a key k; the function is ``F_k(input)`` (64 bytes). A client gets ``F_k(x)``
for its ``x`` without the server learning ``x`` or the result: it sends ``r * H(x)`` for a
random ``r`` (a uniformly random group element, whatever ``x`` is), the server multiplies by
``k`` and proves, with a DLEQ proof, that it used the key whose public key ``k * G`` the client
already trusts; the client checks the proof, removes ``r`` and hashes. One proof covers a batch.

The group operations are libsodium's (constant time), through ``rbcl``; the protocol is written
from the RFC and checked against its test vectors (tests/device/test_oprf.py). Pure computation:
no I/O here (the network half is ``oprf_client``; the server half is the service's route).
"""

import contextlib
import functools
import hashlib
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hashguard.errors import Invalid

SUITE: Final = "ristretto255-SHA512"
_MODE_VOPRF: Final = 0x01
CONTEXT: Final = b"OPRFV1-" + bytes([_MODE_VOPRF]) + b"-" + SUITE.encode()
_GROUP_DST: Final = b"HashToGroup-" + CONTEXT
_SCALAR_DST: Final = b"HashToScalar-" + CONTEXT
_KEY_DST: Final = b"DeriveKeyPair" + CONTEXT
_SEED_DST: Final = b"Seed-" + CONTEXT
ORDER: Final = 2**252 + 27742317777372353535851937790883648493
ELEMENT_BYTES: Final = 32
SCALAR_BYTES: Final = 32
PROOF_BYTES: Final = 64
MAX_INPUT: Final = 2**16 - 2  # inputs are length-prefixed in two bytes and must be below 2^16-1
_IDENTITY: Final = bytes(ELEMENT_BYTES)

# libsodium's ristretto255, through rbcl (which has no type information), loaded at first use.


@functools.cache
def _sodium() -> Any:
    """The ``rbcl`` module, imported at first use rather than with this module: importing it
    writes a copy of libsodium (2.8 MB) into the temporary directory and loads that copy, and
    rbcl 1.1 offers no other way and never removes it. Once loaded, the copy is removed here:
    the loaded library stays mapped. Every process that never uses the VOPRF (most of them)
    loads nothing and writes nothing."""
    import rbcl

    copy = getattr(sys.modules.get("rbcl._sodium"), "lib_path", None)  # rbcl 1.1's name for it
    if copy is not None:
        with contextlib.suppress(OSError):  # already removed by a concurrent first use
            os.unlink(copy)
    return rbcl


def _mul(scalar: bytes, point: bytes) -> bytes:
    return bytes(_sodium().crypto_scalarmult_ristretto255(scalar, point))


def _mul_base(scalar: bytes) -> bytes:
    return bytes(_sodium().crypto_scalarmult_ristretto255_base(scalar))


def _from_hash(digest: bytes) -> bytes:
    return bytes(_sodium().crypto_core_ristretto255_from_hash(digest))


def _is_point(data: bytes) -> bool:
    return bool(_sodium().crypto_core_ristretto255_is_valid_point(data))


def _point_add(a: bytes, b: bytes) -> bytes:
    return bytes(_sodium().crypto_core_ristretto255_add(a, b))


def _reduce(data: bytes) -> bytes:
    return bytes(_sodium().crypto_core_ristretto255_scalar_reduce(data))


def _invert(scalar: bytes) -> bytes:
    return bytes(_sodium().crypto_core_ristretto255_scalar_invert(scalar))


def _scalar_mul(a: bytes, b: bytes) -> bytes:
    return bytes(_sodium().crypto_core_ristretto255_scalar_mul(a, b))


def _scalar_sub(a: bytes, b: bytes) -> bytes:
    return bytes(_sodium().crypto_core_ristretto255_scalar_sub(a, b))


def _scalar_random() -> bytes:
    return bytes(_sodium().crypto_core_ristretto255_scalar_random())


class OprfError(Invalid):
    """Bad protocol data (an element or scalar that does not decode, an input too long), or a
    proof that does not verify; the message says which."""


@dataclass(frozen=True)
class ServerKey:
    """A server's private key ``k`` and its public key ``k * G`` (both 32 bytes)."""

    secret: bytes
    public: bytes

    @classmethod
    def generate(cls) -> "ServerKey":
        return cls.from_secret(_random_scalar())

    @classmethod
    def from_secret(cls, secret: bytes) -> "ServerKey":
        scalar = deserialize_scalar(secret)
        if not any(scalar):
            raise OprfError("the private key is zero")
        return cls(scalar, _mul_base(scalar))

    @classmethod
    def derive(cls, seed: bytes, info: bytes) -> "ServerKey":
        """RFC 9497 DeriveKeyPair: the same seed and info give the same key."""
        derive_input = seed + _length_prefixed(info)
        for counter in range(256):
            secret = hash_to_scalar(derive_input + bytes([counter]), _KEY_DST)
            if any(secret):
                return cls.from_secret(secret)
        raise OprfError("DeriveKeyPair: no non-zero key from this seed")  # pragma: no cover

    def save(self, path: Path) -> None:
        """Write the key to ``path`` (hex, owner-only; refuses to overwrite) and its public key
        to ``path.pub``."""
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise OprfError(f"{path}: already exists; not overwriting a key") from None
        with os.fdopen(descriptor, "w") as file:
            file.write(f"{SUITE} {self.secret.hex()}\n")
        Path(f"{path}.pub").write_text(f"{SUITE} {self.public.hex()}\n")

    @classmethod
    def load(cls, path: Path) -> "ServerKey":
        """The key in ``path``. Raises OprfError naming the file."""
        try:
            suite, _, text = Path(path).read_text().strip().partition(" ")
            if suite != SUITE:
                raise ValueError(suite)
            return cls.from_secret(bytes.fromhex(text))
        except OSError as error:
            raise OprfError(f"{path}: cannot read: {error.strerror or error}") from None
        except (ValueError, OprfError):
            raise OprfError(f"{path}: not a {SUITE} OPRF key (hashguard device keygen)") from None


@dataclass(frozen=True)
class Blinded:
    """What a client keeps while waiting for the server: its inputs, blinds and the elements
    sent (``elements`` is what goes over the wire)."""

    inputs: tuple[bytes, ...]
    blinds: tuple[bytes, ...]
    elements: tuple[bytes, ...]


def blind(inputs: Sequence[bytes], blinds: Sequence[bytes] | None = None) -> Blinded:
    """Blind each input for the server. ``blinds`` (scalars) only for test vectors. Raises
    OprfError for an input too long or one that hashes to the identity."""
    chosen = list(blinds) if blinds is not None else [_random_scalar() for _ in inputs]
    elements = []
    for data, scalar in zip(inputs, chosen, strict=True):
        point = hash_to_group(data)
        elements.append(_mul(scalar, point))
    return Blinded(tuple(inputs), tuple(chosen), tuple(elements))


def blind_evaluate(
    key: ServerKey, elements: Sequence[bytes], proof_scalar: bytes | None = None
) -> tuple[list[bytes], bytes]:
    """The server's step: ``k`` times each blinded element, and one proof for all of them.
    Raises OprfError for an element that does not decode or is the identity."""
    if not elements:
        raise OprfError("no elements to evaluate")
    blinded = [deserialize_element(element) for element in elements]
    evaluated = [_mul(key.secret, point) for point in blinded]
    return evaluated, _prove(key, blinded, evaluated, proof_scalar)


def finalize(
    state: Blinded, evaluated: Sequence[bytes], proof: bytes, public_key: bytes
) -> list[bytes]:
    """The outputs ``F_k(input)`` (64 bytes each), after checking the proof against
    ``public_key``. Raises OprfError when anything fails to decode or the proof is wrong."""
    if len(evaluated) != len(state.elements):
        raise OprfError(f"{len(evaluated)} evaluations for {len(state.elements)} elements")
    points = [deserialize_element(element) for element in evaluated]
    public = deserialize_element(public_key)
    if not _verify(public, list(state.elements), points, proof):
        raise OprfError("the server's proof does not verify against the release's public key")
    outputs = []
    for data, scalar, point in zip(state.inputs, state.blinds, points, strict=True):
        unblinded = _mul(_invert(scalar), point)
        outputs.append(_finalize_hash(data, unblinded))
    return outputs


def evaluate(key: ServerKey, data: bytes) -> bytes:
    """``F_k(data)`` computed with the key itself (to build a filter of known values)."""
    element = _mul(key.secret, hash_to_group(data))
    return _finalize_hash(data, element)


def hash_to_group(data: bytes) -> bytes:
    if len(data) > MAX_INPUT:
        raise OprfError(f"an OPRF input of {len(data)} bytes: at most {MAX_INPUT}")
    point = _from_hash(_expand(data, _GROUP_DST))
    if point == _IDENTITY:
        raise OprfError("the input hashes to the identity element")  # pragma: no cover
    return point


def hash_to_scalar(data: bytes, dst: bytes = _SCALAR_DST) -> bytes:
    return _reduce(_expand(data, dst))


def deserialize_element(data: bytes) -> bytes:
    # RFC 9496 refuses an encoding whose value is p or more, as any with its top bit set is;
    # libsodium ignores that bit, so 31 zero bytes and 0x80 passed as the identity's alias (its
    # product then failed inside libsodium: a 500 from the evaluation route, found by fuzzing).
    if len(data) != ELEMENT_BYTES or data[-1] & 0x80 or data == _IDENTITY or not _is_point(data):
        raise OprfError("not a ristretto255 element (or the identity)")
    return bytes(data)


def deserialize_scalar(data: bytes) -> bytes:
    if len(data) != SCALAR_BYTES or int.from_bytes(data, "little") >= ORDER:
        raise OprfError("not a ristretto255 scalar")
    return bytes(data)


def _prove(
    key: ServerKey, blinded: list[bytes], evaluated: list[bytes], proof_scalar: bytes | None
) -> bytes:
    composite = _composite(key.public, blinded, evaluated)[0]
    z = _mul(key.secret, composite)
    r = proof_scalar if proof_scalar is not None else _random_scalar()
    t2 = _mul_base(r)
    t3 = _mul(r, composite)
    c = _challenge(key.public, composite, z, t2, t3)
    s = _scalar_sub(r, _scalar_mul(c, key.secret))
    return c + s


def _verify(public: bytes, blinded: list[bytes], evaluated: list[bytes], proof: bytes) -> bool:
    if len(proof) != PROOF_BYTES:
        raise OprfError(f"a proof of {len(proof)} bytes, not {PROOF_BYTES}")
    c, s = deserialize_scalar(proof[:32]), deserialize_scalar(proof[32:])
    composite, z = _composite(public, blinded, evaluated, with_z=True)
    assert z is not None
    t2 = _add(_base_times(s), _times(c, public))
    t3 = _add(_times(s, composite), _times(c, z))
    return secrets.compare_digest(_challenge(public, composite, z, t2, t3), c)


def _composite(
    public: bytes, blinded: list[bytes], evaluated: list[bytes], with_z: bool = False
) -> tuple[bytes, bytes | None]:
    seed = hashlib.sha512(_length_prefixed(public) + _length_prefixed(_SEED_DST)).digest()
    m: bytes | None = None
    z: bytes | None = None
    for i, (c, d) in enumerate(zip(blinded, evaluated, strict=True)):
        transcript = (
            _length_prefixed(seed) + i.to_bytes(2, "big") + _length_prefixed(c)
            + _length_prefixed(d) + b"Composite"
        )  # fmt: skip
        weight = hash_to_scalar(transcript)
        m = _add(m, _times(weight, c))
        if with_z:
            z = _add(z, _times(weight, d))
    if m is None:
        raise OprfError("the composite of nothing")
    return m, z


def _challenge(public: bytes, m: bytes, z: bytes, t2: bytes, t3: bytes) -> bytes:
    transcript = b"".join(_length_prefixed(part) for part in (public, m, z, t2, t3))
    return hash_to_scalar(transcript + b"Challenge")


def _finalize_hash(data: bytes, element: bytes) -> bytes:
    return hashlib.sha512(_length_prefixed(data) + _length_prefixed(element) + b"Finalize").digest()


def _times(scalar: bytes, point: bytes) -> bytes | None:
    """``scalar * point``; None for the identity (libsodium refuses to return it)."""
    try:
        return _mul(scalar, point)
    except RuntimeError:
        return None


def _base_times(scalar: bytes) -> bytes | None:
    try:
        return _mul_base(scalar)
    except RuntimeError:
        return None


def _add(a: bytes | None, b: bytes | None) -> bytes:
    if a is None or b is None:
        result = b if a is None else a
        return result if result is not None else _IDENTITY
    if a == _IDENTITY:
        return b
    if b == _IDENTITY:
        return a
    return _point_add(a, b)


def _random_scalar() -> bytes:
    while True:
        scalar = _scalar_random()
        if any(scalar):
            return scalar


def _expand(message: bytes, dst: bytes) -> bytes:
    """RFC 9380 expand_message_xmd with SHA-512, 64 bytes out (one block)."""
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(bytes(128) + message + b"\x00\x40\x00" + dst_prime).digest()
    return hashlib.sha512(b0 + b"\x01" + dst_prime).digest()


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data
