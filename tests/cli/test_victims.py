"""``hashguard victims``: a support organisation hashes a person's files on its own machine and
sends only the hashes to a real ``hashguard serve``; the case's status and its withdrawal, in
part and whole. All media is generated and benign."""

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from hashguard.signals.digests import Md5Signal

from support.invoke import hashguard
from support.media import jpeg
from support.server import Server, running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('victims-cli') / 'hashguard.db'}"
    with running(url) as served:
        yield served


def _flat_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


def _submitted(stdout: str) -> tuple[str, str]:
    case = re.search(r"^case: (HG-[0-9A-Z-]+)$", stdout, re.M)
    pin = re.search(r"^PIN: (\d+)$", stdout, re.M)
    assert case and pin, stdout
    return case.group(1), pin.group(1)


def test_submit_sends_hashes_only_then_status_and_withdrawal(
    server: Server, tmp_path: Path
) -> None:
    photo, other = tmp_path / "photo.jpg", tmp_path / "other.jpg"
    photo.write_bytes(jpeg(21, 640, 480))
    other.write_bytes(jpeg(22, 480, 640))
    submitted = hashguard("victims", "submit", str(photo), str(other), "--server", server.url)
    assert submitted.returncode == 0, submitted.stderr
    assert "no file left this machine" in submitted.stdout
    case, pin = _submitted(submitted.stdout)
    md5 = Md5Signal().format(Md5Signal().hash(photo.read_bytes()))
    matched = server.post("/v1/match/hashes", "matcher",
                          json={"hashes": [{"signal": "md5", "value": md5}]})  # fmt: skip
    assert matched.json()["matched"] == 1
    status = hashguard("victims", "status", case, "--pin", pin, "--server", server.url)
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if line.startswith("active")]
    assert len(lines) == 6  # pdq, md5 and sha256 of each file
    part = hashguard("victims", "withdraw", case, "--pin", pin, "--server", server.url,
                     "--hash", f"md5:{md5}")  # fmt: skip
    assert part.returncode == 0, part.stderr
    assert re.search(rf"^withdrawn\s+md5\s+{md5}\s+\(withdrawn; applied by 0 of 0 partners\)$",
                     part.stdout, re.M)  # fmt: skip
    assert server.post("/v1/match/hashes", "matcher", json={
        "hashes": [{"signal": "md5", "value": md5}]}).json()["matched"] == 0  # fmt: skip
    whole = hashguard("victims", "withdraw", case, "--pin", pin, "--server", server.url)
    assert whole.returncode == 0, whole.stderr
    assert all(line.startswith("withdrawn") for line in whole.stdout.splitlines()[1:])


def test_a_picture_of_too_little_detail_sends_its_digests_only(
    server: Server, tmp_path: Path
) -> None:
    flat = tmp_path / "flat.png"
    flat.write_bytes(_flat_png())
    submitted = hashguard("victims", "submit", str(flat), "--server", server.url, "--under-18")
    assert submitted.returncode == 0, submitted.stderr
    assert "too little detail to be recognised safely" in submitted.stderr
    case, pin = _submitted(submitted.stdout)
    status = hashguard("victims", "status", case, "--pin", pin, "--server", server.url)
    assert {line.split()[1] for line in status.stdout.splitlines()[1:]} == {"md5", "sha256"}


def test_what_cannot_be_sent_is_one_line(server: Server, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")
    refused = hashguard("victims", "submit", str(notes), "--server", server.url)
    assert refused.returncode == 1
    assert refused.stderr == f"hashguard: {notes}: not an image or a video\n"
    wrong = hashguard("victims", "status", "HG-00000-00000-00000-00000-000000", "--pin", "1",
                      "--server", server.url)  # fmt: skip
    assert wrong.returncode == 1
    assert "403 the case number or the PIN is wrong" in wrong.stderr
    gone = hashguard("victims", "status", "HG-1", "--pin", "1", "--server", "http://127.0.0.1:9")
    assert gone.returncode == 1 and "cannot be reached" in gone.stderr


@pytest.mark.parametrize("stability", [80, 30])
def test_submit_sends_a_measured_stability_and_leaves_an_unstable_pdq_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    stability: int,
) -> None:  # fmt: skip
    from hashguard.cli.victims import _hashes
    from hashguard.signals import registry
    from hashguard.signals.pdq import PdqSignal

    monkeypatch.setattr(registry.get("pdq"), "min_stability", 50)
    monkeypatch.setattr(PdqSignal, "stability", lambda self, value: stability)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg(23, 640, 480))
    sent = {h["signal"]: h for h in _hashes(photo)}
    if stability >= 50:
        assert sent["pdq"]["stability"] == stability and sent["pdq"]["quality"] >= 50
    else:
        assert "pdq" not in sent and {"md5", "sha256"} <= set(sent)
        assert f"moves under a 1 % resize (stability {stability}, 50 needed)" in (
            capsys.readouterr().err
        )
