"""Signed documents: verifiable with the public key alone, in any language (the canonical form
is RFC 8785's: numbers as JavaScript writes them); any change, another key or a missing
signature is refused with a reason."""

import json
import shutil
import subprocess

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
    # A value the canonical form has no form for, as a document received may hold it.
    for odd in (float("nan"), float("inf"), {1, 2}):
        with pytest.raises(signing.BadSignature, match="has no form for"):
            signing.verify({**signed, "note": odd})


@pytest.mark.parametrize(
    ("value", "written"),
    [(1.0, "1"), (0.5, "0.5"), (1e21, "1e+21"), (-0.0, "0"), (1e20, "100000000000000000000"),
     (1e-7, "1e-7"), (1e-6, "0.000001"), (-2.5, "-2.5"), (0.1, "0.1"), (5e-324, "5e-324"),
     (1.7976931348623157e308, "1.7976931348623157e+308"), (123.0e18, "123000000000000000000")],
)  # fmt: skip
def test_numbers_are_written_as_javascript_writes_them(value: float, written: str) -> None:
    assert signing.canonical({"n": value}) == b'{"n":' + written.encode() + b"}"


def test_the_canonical_form_is_rfc_8785s() -> None:
    # RFC 8785, section 3.2.2: the sample and its canonical form
    sample = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", '
        '"literals": [null, true, false]}'
    )
    written = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert signing.canonical(sample) == written.encode()
    # members sorted by UTF-16 code units: U+1F600 (D83D DE00) before U+FF61
    assert signing.canonical({"\uff61": 1, "\U0001f600": 2, "a": 3}) == (
        '{"a":3,"\U0001f600":2,"\uff61":1}'.encode()
    )
    with pytest.raises(ValueError, match="NaN or infinities"):
        signing.canonical({"n": float("inf")})


def test_a_signature_over_floats_is_over_the_bytes_another_language_writes() -> None:
    key = Ed25519PrivateKey.generate()
    signed = signing.sign({"share": 1.0, "hours": 0.5, "urls": ["https://a.example/x"]}, key)
    value = signed["hashguard_signature"]["signature"]
    written = b'{"hours":0.5,"share":1,"urls":["https://a.example/x"]}'  # JSON.stringify's
    assert keys.verify(keys.public_hex(key), written, value)
    stored = json.loads(signing.dumps(signed))  # as sent and read back
    assert signing.verify(stored) == keys.public_hex(key)


VERIFY_JS = """
const crypto = require("crypto");
const doc = JSON.parse(require("fs").readFileSync(0, "utf8"));
const sig = doc.hashguard_signature; delete doc.hashguard_signature;
const canon = v => Array.isArray(v) ? "[" + v.map(canon).join(",") + "]"
  : v !== null && typeof v === "object"
  ? "{" + Object.keys(v).sort().map(k => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}"
  : JSON.stringify(v);
const key = crypto.createPublicKey({format: "jwk", key: {kty: "OKP", crv: "Ed25519",
  x: Buffer.from(sig.public_key, "hex").toString("base64url")}});
const ok = crypto.verify(null, Buffer.from(canon(doc)), key, Buffer.from(sig.signature, "hex"));
process.stdout.write(ok ? "valid" : "invalid");
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js absent: no verifier in JS")
def test_a_signed_document_verifies_in_javascript() -> None:
    document = {"share": 1.0, "p90_hours": 41.5, "tiny": 1e-7, "big": 1e21, "zero": -0.0,
                "nested": [{"b": 2, "a": "café \u2028 \U0001f600"}], "none": None}  # fmt: skip
    signed = signing.sign(document, Ed25519PrivateKey.generate())
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run([node, "-e", VERIFY_JS], input=signing.dumps(signed).encode(),
                            capture_output=True, timeout=60, check=True)  # fmt: skip
    assert result.stdout == b"valid"
