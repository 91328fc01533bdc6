"""The hotline put together (hotline/service.py): where its outbox's messages go."""

from pathlib import Path

from sqlalchemy import Engine

from hashguard.hotline.model import OutboxKind
from hashguard.hotline.pipeline import INTERNATIONAL, POLICE
from hashguard.hotline.service import Hotline, HotlineSettings
from hashguard.store.lists import ListStore

from support.decoding import servers_decodes

PARTNERS = """\
[[partner]]
name = "Hotline DE"
countries = ["DE"]
url = "https://hotline-de.example/"

[police]
name = "Politie Example"
url = "https://police.example/reports"

[international]
name = "International Example"
url = "https://international.example/reports"
"""


def test_each_outbox_target_routing_names_has_its_destination(
    engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "partners.toml").write_text(PARTNERS)
    settings = HotlineSettings("NL", partners=tmp_path / "partners.toml")
    hotline = Hotline(engine, ListStore(engine), settings, decodes=servers_decodes())
    try:
        to = hotline.destination_of
        assert to(OutboxKind.REFERRAL, "Hotline DE").post_url == (
            "https://hotline-de.example/v1/hotline/referrals"
        )
        assert to(OutboxKind.POLICE, POLICE).post_url == "https://police.example/reports"
        # Routing names the international endpoint as the partners file does.
        for target in ("International Example", INTERNATIONAL):
            assert to(OutboxKind.INTERNATIONAL, target).post_url == (
                "https://international.example/reports"
            )
        assert to(OutboxKind.INTERNATIONAL, "Someone Else") is None
    finally:
        hotline.stop()
