"""The operator's registry of hosters: the sample loads, an address finds its hoster by the most
specific network and else by AS number, and every mistake in the file is named with its line."""

import ipaddress
from pathlib import Path

import pytest

from hashguard.hotline.hosters import Hoster, HosterError, HosterRegistry, load

from support.paths import REPOSITORY

REGISTRY = """\
[[hoster]]
name = "Wide Hosting"
country = "be"
asns = [64500]
networks = ["127.0.0.0/16"]

[[hoster]]
name = "Narrow Hosting"
country = "NL"
networks = ["127.0.1.0/24", "2001:db8:1::/48"]
abuse_email = "abuse@narrow.example"
abuse_api = "https://narrow.example/abuse"

[[hoster]]
name = "Edge CDN"
asns = [64510, 4200000010]
cdn = true
"""


def test_an_address_finds_the_most_specific_network_then_its_as(tmp_path: Path) -> None:
    path = tmp_path / "hosters.toml"
    path.write_text(REGISTRY)
    registry = load(path)
    assert [hoster.name for hoster in registry] == ["Wide Hosting", "Narrow Hosting", "Edge CDN"]
    narrow = registry.named("Narrow Hosting")
    assert narrow == Hoster(
        "Narrow Hosting",
        "NL",
        (),
        (ipaddress.ip_network("127.0.1.0/24"), ipaddress.ip_network("2001:db8:1::/48")),
        "abuse@narrow.example",
        "https://narrow.example/abuse",
        False,
    )
    assert registry.lookup("127.0.1.9") is narrow  # inside both networks: the /24 wins
    assert registry.lookup("::ffff:127.0.1.9") is narrow
    assert registry.lookup("127.0.9.9", 64510) is registry.named("Wide Hosting")  # network first
    assert registry.lookup("2001:db8:1::5") is narrow
    assert registry.lookup("192.0.2.1", 4200000010) is registry.named("Edge CDN")
    assert registry.lookup("192.0.2.1", 64999) is None
    assert registry.lookup("192.0.2.1") is None
    assert registry.named("Wide Hosting").country == "BE"  # type: ignore[union-attr]
    assert narrow.as_json() == {
        "name": "Narrow Hosting",
        "country": "NL",
        "asns": [],
        "networks": ["127.0.1.0/24", "2001:db8:1::/48"],
        "abuse_email": "abuse@narrow.example",
        "abuse_api": "https://narrow.example/abuse",
        "cdn": False,
        "upstream": None,
    }
    assert len(HosterRegistry()) == 0


def test_the_sample_registry_loads() -> None:
    registry = load(REPOSITORY / "examples" / "hosters.toml")
    assert registry.lookup("192.0.2.7").name == "Example Hosting B.V."  # type: ignore[union-attr]
    assert registry.lookup("203.0.113.1", 4200000001).country == "DE"  # type: ignore[union-attr]
    assert registry.lookup("198.51.100.1").cdn  # type: ignore[union-attr]
    upstream = registry.upstream_of("Example Hosting B.V.")
    assert upstream is not None and upstream.name == "Example Transit AS"
    assert upstream.abuse_email == "abuse@transit.example"
    assert registry.upstream_of("Example CDN") is None
    assert registry.upstream_of("No Such Hoster") is None


@pytest.mark.parametrize(
    ("table", "line", "error"),
    [
        ('name = "X"\nasns = [64500]\ncuntry = "NL"', 4, "'cuntry'; did you mean country?"),
        ('asns = [64500]', 1, "a hoster needs a name"),
        ('name = "X"\nasns = [64500]\ncountry = "NLD"', 4, "expected a two-letter country code"),
        ('name = "X"\nasns = ["AS64500"]', 3, "expected a list of AS numbers"),
        ('name = "X"\nasns = [0]', 3, "expected a list of AS numbers"),
        ('name = "X"\nnetworks = ["127.0.1.1/24"]', 3, "'127.0.1.1/24' is not a network"),
        ('name = "X"\nnetworks = "127.0.1.0/24"', 3, "expected a list of networks"),
        ('name = "X"', 1, "has neither asns nor networks"),
        ('name = "X"\nasns = [1]\nabuse_email = "abuse"', 4, "expected an email address"),
        ('name = "X"\nasns = [1]\nabuse_api = "ftp://x"', 4, "expected an http(s) URL"),
        ('name = "X"\nasns = [1]\ncdn = "yes"', 4, "expected true or false"),
        ('name = "Wide Hosting"\nasns = [1]', 2, "named twice (also at "),
        ('name = "X"\nasns = [1]\nupstream = 7', 4, "expected the name of another hoster"),
        ('name = "X"\nasns = [1]\nupstream = "Wide Hostin"', 4,
         "'Wide Hostin' is not a hoster of this file; did you mean 'Wide Hosting'?"),
        ('name = "X"\nasns = [1]\nupstream = "X"', 4, "names itself as its upstream"),
    ],
)  # fmt: skip
def test_a_mistake_is_named_with_file_and_line(
    tmp_path: Path, table: str, line: int, error: str
) -> None:
    path = tmp_path / "hosters.toml"
    path.write_text(f'[[hoster]]\nname = "Wide Hosting"\nasns = [64500]\n\n[[hoster]]\n{table}\n')
    with pytest.raises(HosterError) as refused:
        load(path)
    assert str(refused.value).startswith(f"{path}, line {line + 4}: ")
    assert error in str(refused.value)


def test_files_that_are_no_registry_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "hosters.toml"
    path.write_text("[[hoster]\n")
    with pytest.raises(HosterError, match=f"^{path}: not valid TOML: .*line 1"):
        load(path)
    path.write_text('[[hosters]]\nname = "X"\n')
    with pytest.raises(HosterError, match="unknown key 'hosters'"):
        load(path)
    with pytest.raises(HosterError, match="cannot read"):
        load(tmp_path / "absent.toml")
