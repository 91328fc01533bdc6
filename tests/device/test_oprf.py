"""The VOPRF against RFC 9497's test vectors (Appendix A.1.2, ristretto255-SHA512, VOPRF mode),
and its refusals: a proof from another key, an altered proof, elements that do not decode."""

from pathlib import Path

import pytest

from hashguard.device import oprf

SEED = bytes.fromhex("a3" * 32)
INFO = b"test key"
SK = "e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909"
PK = "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e"
BLIND_0 = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706"
BLIND_1 = "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e"
OUTPUT_0 = (
    "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d"
    "a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c"
)
OUTPUT_1 = (
    "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60"
    "356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6"
)
VECTORS = [
    # inputs, blinds, blinded, evaluated, proof, proof random scalar, outputs
    (
        ["00"], [BLIND_0],
        ["863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945"],
        ["aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e"],
        "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd06"
        "6d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d",
        BLIND_1, [OUTPUT_0],
    ),
    (
        ["5a" * 17], [BLIND_0],
        ["cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c"],
        ["60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468"],
        "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a"
        "67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02",
        BLIND_1, [OUTPUT_1],
    ),
    (
        ["00", "5a" * 17], [BLIND_0, BLIND_1],
        ["863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
         "90a0145ea9da29254c3a56be4fe185465ebb3bf2a1801f7124bbbadac751e654"],
        ["aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
         "cc5ac221950a49ceaa73c8db41b82c20372a4c8d63e5dded2db920b7eee36a2a"],
        "cc203910175d786927eeb44ea847328047892ddf8590e723c37205cb74600b0a"
        "5ab5337c8eb4ceae0494c2cf89529dcf94572ed267473d567aeed6ab873dee08",
        "419c4f4f5052c53c45f3da494d2b67b220d02118e0857cdbcf037f9ea84bbe0c",
        [OUTPUT_0, OUTPUT_1],
    ),
]  # fmt: skip


def _hex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_derive_key_pair() -> None:
    key = oprf.ServerKey.derive(SEED, INFO)
    assert (key.secret.hex(), key.public.hex()) == (SK, PK)


@pytest.mark.parametrize("vector", VECTORS, ids=["one", "two", "batch"])
def test_rfc_9497_vectors(vector: tuple) -> None:  # type: ignore[type-arg]
    inputs, blinds, blinded, evaluated, proof, proof_scalar, outputs = vector
    key = oprf.ServerKey.derive(SEED, INFO)
    state = oprf.blind(_hex(inputs), _hex(blinds))
    assert [e.hex() for e in state.elements] == blinded
    answer, made = oprf.blind_evaluate(key, list(state.elements), bytes.fromhex(proof_scalar))
    assert [e.hex() for e in answer] == evaluated
    assert made.hex() == proof
    assert [o.hex() for o in oprf.finalize(state, answer, made, key.public)] == outputs
    assert [oprf.evaluate(key, x).hex() for x in _hex(inputs)] == outputs


def test_random_blinds_give_the_same_outputs() -> None:
    key = oprf.ServerKey.generate()
    inputs = [b"tag one", b"tag two", b"tag three"]
    state = oprf.blind(inputs)
    evaluated, proof = oprf.blind_evaluate(key, list(state.elements))
    assert oprf.finalize(state, evaluated, proof, key.public) == [
        oprf.evaluate(key, x) for x in inputs
    ]
    assert oprf.blind(inputs).elements != state.elements  # the server sees fresh randomness


def test_a_server_using_another_key_is_caught() -> None:
    logged, other = oprf.ServerKey.generate(), oprf.ServerKey.generate()
    state = oprf.blind([b"a tag"])
    evaluated, proof = oprf.blind_evaluate(other, list(state.elements))
    with pytest.raises(oprf.OprfError, match="does not verify"):
        oprf.finalize(state, evaluated, proof, logged.public)


def test_altered_answers_are_refused() -> None:
    key = oprf.ServerKey.generate()
    state = oprf.blind([b"a", b"b"])
    evaluated, proof = oprf.blind_evaluate(key, list(state.elements))
    bad = bytearray(proof)
    bad[5] ^= 1
    with pytest.raises(oprf.OprfError):
        oprf.finalize(state, evaluated, bytes(bad), key.public)
    swapped = [evaluated[1], evaluated[0]]
    with pytest.raises(oprf.OprfError, match="does not verify"):
        oprf.finalize(state, swapped, proof, key.public)
    with pytest.raises(oprf.OprfError, match="evaluations for"):
        oprf.finalize(state, evaluated[:1], proof, key.public)
    with pytest.raises(oprf.OprfError, match="not a ristretto255 element"):
        oprf.finalize(state, [bytes(32), evaluated[1]], proof, key.public)
    over = (oprf.ORDER + 1).to_bytes(32, "little")
    with pytest.raises(oprf.OprfError, match="not a ristretto255 scalar"):
        oprf.finalize(state, evaluated, proof[:32] + over, key.public)


def test_the_server_refuses_what_is_not_an_element() -> None:
    key = oprf.ServerKey.generate()
    # The identity, also as libsodium would alias it (its top bit set: found by fuzzing), and a
    # real element so aliased (RFC 9496: a value of p or more is no encoding).
    real = oprf.blind([b"a"]).elements[0]
    aliased = real[:31] + bytes([real[31] | 0x80])
    for element in (bytes(32), bytes(31) + b"\x80", aliased, b"\xff" * 32, b"short"):
        with pytest.raises(oprf.OprfError, match="not a ristretto255 element"):
            oprf.blind_evaluate(key, [element])


def test_key_files(tmp_path: Path) -> None:
    key = oprf.ServerKey.generate()
    key.save(tmp_path / "k")
    assert oprf.ServerKey.load(tmp_path / "k") == key
    assert (tmp_path / "k").stat().st_mode & 0o077 == 0
    with pytest.raises(oprf.OprfError, match="already exists"):
        key.save(tmp_path / "k")
    (tmp_path / "bad").write_text("ristretto255-SHA512 zz\n")
    with pytest.raises(oprf.OprfError, match="not a ristretto255-SHA512 OPRF key"):
        oprf.ServerKey.load(tmp_path / "bad")
