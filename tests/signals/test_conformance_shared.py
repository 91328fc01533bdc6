"""Conformance on the reference data in ``../shared/data`` (optional: skipped when absent)."""

import csv
from pathlib import Path

import numpy as np
import pytest

from hashguard.signals.pdq import PdqSignal
from hashguard.signals.vpdq import VpdqSignal

from support.conformance import ConformanceReport as Report
from support.media import reference_pdq

pytestmark = pytest.mark.shared
PDQ = PdqSignal()


def test_reference_images_match_the_expected_hashes(shared_data: Path, report: Report) -> None:
    root = shared_data / "pdq-conformance"
    distances = []
    with open(root / "expected.csv", newline="") as table:
        for row in csv.DictReader(table):
            ours = PDQ.hash((root / row["path"]).read_bytes())
            distance = ours.distance(PDQ.parse(row["pdq_hex"]))
            assert distance <= 12, f"{row['path']} vs {row['reference']}: {distance}"
            distances.append(distance)
    assert len(distances) >= 20
    assert np.mean(distances) <= 5
    report.append(
        f"PDQ expected.csv: {len(distances)} hashes, mean distance {np.mean(distances):.2f}, "
        f"max {max(distances)}"
    )


def test_photos_conform_to_the_reference_pipeline(shared_data: Path, report: Report) -> None:
    distances, identical_small = [], 0
    photos = sorted((shared_data / "photos").glob("*.jpg"))
    assert photos
    for path in photos:
        data = path.read_bytes()
        ours, reference = PDQ.hash(data), reference_pdq(data)
        assert reference.quality is not None
        if reference.quality >= 80:
            distances.append(ours.distance(reference))
        if max(_size(data)) <= 512:
            assert ours == reference, path.name
            identical_small += 1
    assert np.mean(distances) <= 4
    assert np.percentile(distances, 95) <= 10
    assert max(distances) <= 16
    report.append(
        f"PDQ photos: {len(distances)} of {len(photos)} with quality >= 80; distance to the "
        f"reference mean {np.mean(distances):.2f}, p95 {np.percentile(distances, 95):.1f}, "
        f"max {max(distances)}; {identical_small} images <= 512 px, all identical"
    )


def _size(data: bytes) -> tuple[int, int]:
    from hashguard.media.image import image_size

    return image_size(data)


def test_one_image_in_every_pillow_mode_hashes_alike(shared_data: Path) -> None:
    modes = shared_data / "pdq-conformance" / "misc-images" / "modes"
    original = PDQ.hash((modes / "original.jpg").read_bytes())
    files = [p for p in sorted(modes.iterdir()) if p.suffix != ".md"]
    assert len(files) >= 10
    for path in files:
        assert PDQ.hash(path.read_bytes()).distance(original) <= 8, path.name


def test_exif_orientation_matches_the_upright_reference(shared_data: Path) -> None:
    for path in sorted((shared_data / "pdq-conformance/reg-test-input/exif-rotn").glob("*.jpg")):
        data = path.read_bytes()
        assert PDQ.hash(data).distance(reference_pdq(data)) <= 10, path.name


def _reference_frames(path: Path) -> list[tuple[int, bytes]]:
    rows = (line.strip().split(",") for line in path.read_text().splitlines() if line.strip())
    return [(int(quality), bytes.fromhex(hexhash)) for _, quality, hexhash, *_ in rows]


def test_video_frames_conform_to_the_vpdq_reference(shared_data: Path, report: Report) -> None:
    root = shared_data / "vpdq-conformance"
    signal = VpdqSignal(per_second=0)
    all_close = all_frames = 0
    for video in sorted((root / "videos").glob("*.mp4")):
        expected_text = (root / "hashes" / f"{video.stem}.txt").read_text()
        expected = _reference_frames(root / "hashes" / f"{video.stem}.txt")
        ours = signal.hash(video.read_bytes())
        assert len(ours.frames) == len(expected), video.name
        distances = np.array(
            [
                (int.from_bytes(f.bits, "big") ^ int.from_bytes(bits, "big")).bit_count()
                for f, (_, bits) in zip(ours.frames, expected, strict=True)
            ]
        )
        good = np.array([quality >= 50 for quality, _ in expected])
        close_good = float((distances[good] <= 10).mean())
        all_close += int((distances <= 10).sum())
        all_frames += len(distances)
        comparison = signal.compare(ours, signal.parse(expected_text))
        report.append(
            f"vPDQ {video.stem}: {len(distances)} frames, within 10 bits: "
            f"{100 * (distances <= 10).mean():.1f} % of all, {100 * close_good:.1f} % of "
            f"quality >= 50; match {comparison.query_percent:.1f} % / "
            f"{comparison.target_percent:.1f} %"
        )
        assert close_good >= 0.9, video.name
        assert comparison.match, video.name
    assert all_close >= 0.9 * all_frames
