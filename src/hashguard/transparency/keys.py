"""Ed25519 keys for signing list releases and log tree heads.

A private key is a PKCS#8 PEM file, written readable by its owner only; its public key is kept
beside it (``KEYFILE.pub``) as 64 hex digits, the form manifests and tree heads carry.
"""

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hashguard import durable
from hashguard.errors import Invalid


class KeyFileError(Invalid):
    """A key file that cannot be used; the message names it."""


def generate(path: Path) -> str:
    """Write a new private key to ``path`` (refusing to overwrite one; made whole, so a crash
    leaves no key or the whole key) and its public key to ``path.pub``; the public key in hex.
    Raises KeyFileError naming the file."""
    path = Path(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = public_hex(key)
    try:
        durable.create(path, pem, 0o600)
        durable.write(_public_path(path), (public + "\n").encode())
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; not overwriting a key") from None
    except OSError as error:
        raise KeyFileError(f"{path}: cannot write: {error.strerror or error}") from None
    return public


def restore_public(path: Path, key: Ed25519PrivateKey) -> None:
    """Write ``path.pub``, the public key of ``key`` (read from ``path``), if it is missing: a
    process killed after ``generate`` made the key, before its public key. Raises OSError."""
    public = _public_path(Path(path))
    if not public.exists():
        durable.write(public, (public_hex(key) + "\n").encode())


def _public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def load(path: Path) -> Ed25519PrivateKey:
    """The private key in ``path``. Raises KeyFileError naming the file."""
    path = Path(path)
    durable.settle(path)  # a copy of the key a killed ``generate`` left beside it
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        if b"-----END" not in pem:  # as a crash while an older hashguard wrote it leaves one
            raise KeyFileError(
                f"{path}: not a whole PEM private key ({len(pem)} bytes, cut short); if nothing "
                "was signed with it, remove it and make a new one"
            ) from None
        raise KeyFileError(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def read_public(path: Path) -> str:
    """A public key from a ``.pub`` file (64 hex digits). Raises KeyFileError naming the file."""
    try:
        text = Path(path).read_text().strip().lower()
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read: {error.strerror or error}") from None
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise KeyFileError(f"{path}: expected an Ed25519 public key of 64 hex digits")
    return text


def public_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return key.sign(data).hex()


def verify(public: str, data: bytes, signature: str) -> bool:
    """Whether ``signature`` (hex) is ``public``'s (hex) signature of ``data``."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
            bytes.fromhex(signature), data
        )
    except (InvalidSignature, ValueError):
        return False
    return True
