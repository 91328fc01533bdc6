"""The signal registry and the interface every signal type shares."""

import pytest

from hashguard.media import MediaKind
from hashguard.signals import InvalidSignalValue, UnknownSignal, for_media, get, names


def test_registry_lists_every_signal_with_its_media_and_threshold() -> None:
    assert names() == ["pdq", "vpdq", "md5", "sha1", "sha256"]  # computed when none are named
    assert names(optional=True) == [*names(), "canonical_sha256"]
    assert [s.name for s in for_media(MediaKind.IMAGE)] == [
        "pdq",
        "md5",
        "sha1",
        "sha256",
        "canonical_sha256",
    ]
    assert [s.name for s in for_media(MediaKind.VIDEO)] == ["vpdq", "md5", "sha1", "sha256"]
    assert [s.name for s in for_media(MediaKind.OTHER)] == ["md5", "sha1", "sha256"]
    assert get("PDQ").default_threshold == 31
    assert get("vpdq").default_threshold == 20  # % of frames allowed without a close frame
    assert get("sha256").default_threshold == 0
    with pytest.raises(
        UnknownSignal, match="known signals: pdq, vpdq, md5, sha1, sha256, canonical_sha256"
    ):
        get("photodna")


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("md5", b"", "d41d8cd98f00b204e9800998ecf8427e"),
        ("sha1", b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("sha256", b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ],
)
def test_digests_of_the_file_bytes(name: str, data: bytes, expected: str) -> None:
    import io

    signal = get(name)
    value = signal.hash(data)
    assert signal.format(value) == expected
    assert signal.hash(io.BytesIO(data)) == value
    assert signal.parse(expected.upper()) == value
    assert signal.distance(value, value) == 0 and signal.compare(value, value).match
    other = signal.hash(data + b"!")
    assert signal.distance(value, other) == 1 and not signal.compare(value, other).match


@pytest.mark.parametrize("name", ["md5", "sha1", "sha256"])
def test_digest_strings_are_validated(name: str) -> None:
    signal = get(name)
    with pytest.raises(InvalidSignalValue, match=f"expected {name.upper()} as"):
        signal.parse("xyz")
