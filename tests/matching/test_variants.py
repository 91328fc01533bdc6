"""Query variants as a per-list policy: rotations, flips, trimmed crops and enlarged small
images match a list only when its policy allows them, and the Match names the variant (on
SQLite and PostgreSQL)."""

from collections.abc import Iterator

import pytest
from PIL import Image

from hashguard.lists.model import Category, ListPolicy
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching.query import Query
from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqHash, PdqSignal
from hashguard.signals.pdq_variants import FAMILIES, PdqVariants, families_of, hash_variants
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

ALL = frozenset(FAMILIES)


def _padded(image: Image.Image, share: float, colour: tuple[int, int, int]) -> Image.Image:
    dx, dy = round(image.width * share), round(image.height * share)
    canvas = Image.new("RGB", (image.width + 2 * dx, image.height + 2 * dy), colour)
    canvas.paste(image, (dx, dy))
    return canvas


def _letterboxed(image: Image.Image, aspect: float, colour: tuple[int, int, int]) -> Image.Image:
    width, height = image.size
    if width / height < aspect:
        width = round(height * aspect)
    else:
        height = round(width / aspect)
    canvas = Image.new("RGB", (width, height), colour)
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    return canvas


@pytest.fixture
def store(database_url: str) -> Iterator[ListStore]:
    engine = open_engine(database_url)
    store = ListStore(engine)
    for name, variants in (("plain", set()), ("turned", {"dihedral"}), ("trimmed", {"trim"}),
                           ("scaled", {"scale"}), ("both", set(ALL))):  # fmt: skip
        policy = ListPolicy(variants=frozenset(variants))
        store.create(name, "Hashguard QA", Category.KNOWN_CSAM, policy=policy)
    yield store
    engine.dispose()


def _listed(store: ListStore, image: Image.Image, lists: tuple[str, ...]) -> None:
    value = PdqSignal().hash(encode(image, "PNG")).hex
    for name in lists:
        store.apply(name, [Submission("pdq", value)])


def _query(data: bytes, families: frozenset[str] = ALL) -> Query:
    return Query.of([("pdq", hash_variants(data, families))])


def test_a_rotated_copy_matches_only_lists_that_allow_dihedral_variants(store: ListStore) -> None:
    image = scene(4, 320, 240)
    _listed(store, image, ("plain", "turned", "both"))
    matcher = Matcher(store, ["plain", "turned", "both"])
    rotated = encode(image.transpose(Image.Transpose.ROTATE_90), "PNG")
    matches = matcher.match(_query(rotated))
    assert sorted(m.list for m in matches) == ["both", "turned"]  # not "plain"
    assert {m.variant for m in matches} == {"rotate270"}  # turning it back undoes it
    assert all(m.distance <= 31 for m in matches)
    # The upright image matches every list, as itself.
    upright = matcher.match(_query(encode(image, "PNG")))
    assert sorted(m.list for m in upright) == ["both", "plain", "turned"]
    assert {m.variant for m in upright} == {"original"}


@pytest.mark.parametrize(
    "copy",
    [
        lambda im: _padded(im, 0.10, (0, 0, 0)),
        lambda im: _padded(im, 0.25, (255, 255, 255)),
        lambda im: _padded(im, 0.20, (40, 160, 90)),
        lambda im: _letterboxed(im, 16 / 9, (0, 0, 0)),
        lambda im: _letterboxed(im, 1.0, (230, 30, 30)),
    ],
    ids=["pad-10-black", "pad-25-white", "pad-20-green", "letterbox-16:9", "letterbox-square"],
)
def test_padded_and_letterboxed_copies_match_through_trim(store: ListStore, copy: object) -> None:
    assert callable(copy)
    found = 0
    seeds = range(20, 30)
    for seed in seeds:
        image = scene(seed, 400, 300)
        _listed(store, image, ("plain", "trimmed"))
    matcher = Matcher(store, ["plain", "trimmed"])
    for seed in seeds:
        data = encode(copy(scene(seed, 400, 300)), "JPEG")
        matches = matcher.match(_query(data))
        assert all(m.list == "trimmed" and m.variant.startswith("trim-") for m in matches)
        found += bool(matches)
        assert matcher.match(_query(data, frozenset())) == []  # the plain hash: lost
    assert found >= 9  # of 10


def test_a_negative_list_suppresses_matches_through_the_variants_it_allows(
    store: ListStore,
) -> None:
    image = scene(7, 320, 240)
    _listed(store, image, ("both",))
    policy = ListPolicy(negative=True, variants=frozenset({"dihedral"}))
    store.create("benign", "Hashguard QA", Category.FALSE_POSITIVES, policy=policy)
    _listed(store, image, ("benign",))
    rotated = _query(encode(image.transpose(Image.Transpose.ROTATE_180), "PNG"))
    assert Matcher(store, ["both"]).match(rotated) != []
    assert Matcher(store, ["both", "benign"]).match(rotated) == []


def test_a_negative_match_through_a_variant_cancels_only_that_variants_matches(
    store: ListStore,
) -> None:
    image = scene(8, 320, 240)
    turned = image.transpose(Image.Transpose.ROTATE_180)
    _listed(store, image, ("both",))
    policy = ListPolicy(negative=True, variants=frozenset({"dihedral"}))
    store.create("benign", "Hashguard QA", Category.FALSE_POSITIVES, policy=policy)
    _listed(store, turned, ("benign",))  # the turned image is known benign
    matcher = Matcher(store, ["both", "benign"])
    # The image itself is listed: only its turned variant is the benign one.
    found = matcher.match(_query(encode(image, "PNG")))
    assert [(m.list, m.variant) for m in found] == [("both", "original")]
    # The benign image as it is: nothing of it matches, whichever variant would.
    assert matcher.match(_query(encode(turned, "PNG"))) == []


def test_the_matcher_asks_for_the_variants_its_lists_allow(store: ListStore) -> None:
    assert Matcher(store, ["plain"]).variant_families() == frozenset()
    assert Matcher(store, ["plain", "turned"]).variant_families() == {"dihedral"}
    assert Matcher(store, ["turned", "trimmed"]).variant_families() == {"dihedral", "trim"}
    assert Matcher(store, ["both"]).variant_families() == ALL == {"dihedral", "trim", "scale"}


def test_a_variant_needs_every_family_its_name_uses() -> None:
    assert families_of("original") == frozenset()
    assert families_of("flipx") == {"dihedral"}
    assert families_of("trim-lenient") == {"trim"}
    assert families_of("trim-strict/rotate90") == {"trim", "dihedral"}
    assert families_of("upscaled") == {"scale"}
    assert families_of("upscaled/flipx") == {"scale", "dihedral"}


def test_a_shrunk_copy_is_hashed_again_at_its_originals_size(store: ListStore) -> None:
    """A copy shrunk to a quarter lies about 20 bits from its original's hash (PDQ filters a
    small image less); enlarged before hashing, a few. Only lists allowing ``scale`` see it."""
    seeds = range(30, 38)
    originals = {seed: scene(seed, 1024, 768) for seed in seeds}
    for image in originals.values():
        _listed(store, image, ("plain", "scaled"))
    matcher = Matcher(store, ["plain", "scaled"])
    for seed, image in originals.items():
        small = encode(image.resize((256, 192), Image.Resampling.LANCZOS), "PNG")
        found = {m.list: m for m in matcher.match(_query(small))}
        assert found["scaled"].variant == "upscaled" and found["scaled"].distance <= 6
        plain = matcher.match(_query(small, frozenset()))
        assert all(m.distance >= found["scaled"].distance + 8 for m in plain), seed
        assert "upscaled" not in hash_variants(encode(image, "PNG"), ALL).variants  # 1024 px


def test_exif_orientation_is_applied_before_hashing(store: ListStore) -> None:
    image = scene(9, 320, 240)
    _listed(store, image, ("plain",))
    # Stored turned a quarter clockwise (270 counter-clockwise), with orientation 6 saying so.
    stored = image.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", exif=exif.tobytes())
    (match,) = Matcher(store, ["plain"]).match(_query(data, frozenset()))
    assert match.variant == "original" and match.distance <= 31


def test_an_enlarged_variant_keeps_what_was_measured_of_the_image_as_sent() -> None:
    """Enlarging smooths an image: a degenerate pattern must not become matchable, nor a
    document lose its stricter threshold, through its enlargement."""
    import numpy as np

    from hashguard.media.synthetic import document

    board = np.indices((300, 300)).sum(axis=0) % 2 * 255  # 1-px cells: PDQ's noise case
    tiny = encode(Image.fromarray(board.astype(np.uint8)).convert("RGB"), "PNG")
    small_page = encode(document(3, width=425, height=550), "PNG")
    for data in (tiny, small_page):
        variants = hash_variants(data, ALL).variants
        sent = variants["original"]
        enlarged = [v for name, v in variants.items() if name.split("/")[0] == "upscaled"]
        assert len(enlarged) == 8  # the enlargement, turned and flipped
        for value in enlarged:
            assert value.flat == sent.flat
            assert value.stability is not None and sent.stability is not None
            assert value.stability <= sent.stability and value.quality <= sent.quality
    assert hash_variants(tiny, ALL).variants["upscaled"].stability < 50  # still noise
    assert hash_variants(small_page, ALL).variants["upscaled"].flat_and_text


def _bits(*flipped: range) -> PdqHash:
    """A PDQ hash of quality 100 with the bits in ``flipped`` set (the rest clear)."""
    value = 0
    for bits in flipped:
        for bit in bits:
            value |= 1 << bit
    return PdqHash(value.to_bytes(32, "big"), 100)


def _variants_query(**named: PdqHash) -> Query:
    """A query of PDQ variants given by name (``upscaled__rotate90``: upscaled/rotate90)."""
    variants = {name.replace("__", "/"): value for name, value in named.items()}
    return Query.of([("pdq", PdqVariants(variants))])


def test_a_benign_hit_through_an_enlargement_cancels_only_that_enlargement(
    store: ListStore,
) -> None:
    listed, benign_value = _bits(), _bits(range(100, 164))  # 64 bits apart
    store.apply("both", [Submission("pdq", listed.hex)])
    policy = ListPolicy(negative=True)  # every family
    store.create("benign", "Hashguard QA", Category.FALSE_POSITIVES, policy=policy)
    store.apply("benign", [Submission("pdq", benign_value.hex)])
    matcher = Matcher(store, ["both", "benign"])
    # The upload is the listed image; only its enlargement resembles the benign one.
    found = matcher.match(_variants_query(original=listed, upscaled=benign_value))
    assert [(m.list, m.variant, m.distance) for m in found] == [("both", "original", 0)]
    # Through the enlargement of a rotation: only that enlargement's matches would go.
    turned = _variants_query(original=_bits(range(0, 15)), rotate90=listed,
                             upscaled__rotate90=benign_value)  # fmt: skip
    assert [(m.variant, m.distance) for m in matcher.match(turned)] == [("rotate90", 0)]
    # A rotation benign as it is: its enlargement (the same picture) goes with it.
    both_turned = _variants_query(original=_bits(range(0, 15)), rotate90=benign_value,
                                  upscaled__rotate90=listed)  # fmt: skip
    assert [(m.variant, m.distance) for m in matcher.match(both_turned)] == [("original", 15)]


def test_a_cancelled_closest_variant_leaves_the_next_closest(store: ListStore) -> None:
    listed = _bits()
    store.apply("both", [Submission("pdq", listed.hex)])
    policy = ListPolicy(negative=True, variants=frozenset({"dihedral"}))
    store.create("benign", "Hashguard QA", Category.FALSE_POSITIVES, policy=policy)
    store.apply("benign", [Submission("pdq", _bits(range(200, 220)).hex)])  # 20 from listed
    matcher = Matcher(store, ["both", "benign"])
    # rotate90 is the listed hash itself but also within 20 of the benign one: it goes; the
    # original, 15 from the listed hash and 35 from the benign one, still matches.
    query = _variants_query(original=_bits(range(0, 15)), rotate90=listed)
    assert [(m.variant, m.distance) for m in matcher.match(query)] == [("original", 15)]


def test_an_upload_whose_own_hash_is_degenerate_matches_through_no_variant(
    store: ListStore,
) -> None:
    from hashguard.signals.pdq import PARITY_HASHES

    listed = _bits()
    store.apply("both", [Submission("pdq", listed.hex)])
    parity = PdqHash(bytes.fromhex(PARITY_HASHES[5]), 100)
    matcher = Matcher(store, ["both"])
    assert matcher.match(_variants_query(original=parity, rotate90=listed)) == []
    assert matcher.match(_variants_query(original=_bits(range(0, 9)), rotate90=listed))
