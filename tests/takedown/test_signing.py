"""Signed documents: verifiable with the public key alone; any change, another key or a missing
signature is refused with a reason."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.takedown import signing
from hashguard.transparency import keys


def test_a_signed_document_verifies_and_any_change_does_not() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signed = signing.sign({"urls": ["https://a.example/x.jpg"], "note": "café"}, key)
    assert signing.verify(signed) == keys.public_hex(key)
    assert signing.verify(signed, keys.public_hex(key).upper()) == keys.public_hex(key)
    assert signing.sign(signed, key) == signed  # signing again replaces, never nests
    with pytest.raises(signing.BadSignature, match="changed after signing"):
        signing.verify({**signed, "urls": ["https://b.example/x.jpg"]})
    with pytest.raises(signing.BadSignature, match="not by the expected key"):
        signing.verify(signed, keys.public_hex(other))
    with pytest.raises(signing.BadSignature, match="no hashguard_signature"):
        signing.verify({"urls": []})
    forged = {
        **signed,
        "hashguard_signature": {
            **signed["hashguard_signature"],
            "public_key": keys.public_hex(other),
        },
    }
    with pytest.raises(signing.BadSignature, match="does not match"):
        signing.verify(forged)
