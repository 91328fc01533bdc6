"""``hashguard demo --serve`` as a user runs it (a real process in a scratch directory): it
prints the desk's address and a reviewer key that signs in (and the victims' page's address),
and the desk's queue holds the demo service's detections, whose items the demo itself serves
(one deleted from its store)."""

import re
import subprocess
from pathlib import Path

import httpx

from support.desk_session import sign_in as desk_sign_in
from support.server import HASHGUARD, LISTENING, free_port


def test_the_served_demo_fills_the_desks_queue_and_prints_how_to_sign_in(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [HASHGUARD, "demo", "--serve", "--port", str(port)], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    printed = []
    try:
        for line in process.stdout:  # until the service listens (or the process ends)
            printed.append(line)
            if LISTENING in line:
                break
        output = "".join(printed)
        assert LISTENING in output, output
        desk = re.search(r"The review desk: (http://\S+/desk) +\((\d+) detections", output)
        key = re.search(r"Sign in with the reviewer key: (hg_\S+)", output)
        assert desk and key, output
        assert desk[1] == f"http://127.0.0.1:{port}/desk"
        victims = re.search(r"The victims' page: (http://\S+/victims) ", output)
        assert victims and victims[1] == f"http://127.0.0.1:{port}/victims", output
        assert httpx.get(victims[1]).status_code == 200
        with httpx.Client(base_url=desk[1].removesuffix("/desk")) as browser:
            signed_in = desk_sign_in(browser, key[1])
            assert signed_in.status_code == 303, signed_in.text
            queue = browser.get("/desk")
            assert queue.status_code == 200
            rows = re.findall(r'<tr data-href="(/desk/detections/\d+)">', queue.text)
            assert len(rows) == int(desk[2]) == 4
            assert "demo-photos" in queue.text
            shown = browser.get(rows[0] + "/content")  # from the demo's own content store
            assert shown.status_code == 200 and shown.headers["content-type"].startswith("image/")
            gone = [page for page in (browser.get(row).text for row in rows)
                    if "deleted-upload.jpg" in page]  # fmt: skip
            assert len(gone) == 1
            ident = re.search(r"<h1>Detection (\d+)</h1>", gone[0])
            assert ident is not None
            refused = browser.get(f"/desk/detections/{ident[1]}/content")
            assert refused.status_code == 502
            assert refused.text == "The service's content store answered 404."
    finally:
        process.terminate()
        process.wait(30)
        process.stdout.close()
    assert (tmp_path / "hashguard-demo" / "hashguard.db").exists()
