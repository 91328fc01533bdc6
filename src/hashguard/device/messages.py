"""What the user sees when a file is blocked: a warning in their language and where to get help.

The wording does not accuse: the sender may be the person shown, someone who received the file,
or someone who wants to warn others. It says what happened (the file matches known material,
so it is not sent), that nothing was reported, and gives two routes of help: for people who
are shown in such images, and for people worried about their own thoughts or viewing.

Helplines are per country and language; the defaults below can be replaced by a JSON file of
the same shape (``load_referrals``). Check numbers and addresses with the helplines before a
release: they change.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hashguard.errors import Invalid

LANGUAGES: Final = ("en", "nl")


@dataclass(frozen=True)
class Helpline:
    name: str
    phone: str
    url: str
    audience: str  # "self": worried about own thoughts or viewing; "depicted": shown in images


@dataclass(frozen=True)
class Referral:
    """The helplines to show in one country."""

    country: str
    helpline: Helpline  # for people worried about their own thoughts or viewing
    support: Helpline  # for people shown in the images


_DEFAULTS: Final[dict[str, Any]] = {
    "NL": {
        "helpline": {
            "name": "Stop it Now!",
            "phone": "0800 266 64 36",
            "url": "https://stopitnow.nl",
        },
        "support": {
            "name": "Helpwanted",
            "phone": "020 261 52 75",
            "url": "https://www.helpwanted.nl",
        },
    },
    "GB": {
        "helpline": {
            "name": "Stop It Now",
            "phone": "0808 1000 900",
            "url": "https://www.stopitnow.org.uk",
        },
        "support": {
            "name": "Report Remove (Childline and the IWF)",
            "phone": "0800 1111",
            "url": "https://www.childline.org.uk/info-advice/bullying-abuse-safety/online-mobile-safety/report-remove/",
        },
    },
}

# The number to call the police in an emergency, per country (ISO 3166 alpha-2). A country not
# here is told to call the police without a number: 112 does not work everywhere.
EMERGENCY: Final = {
    **dict.fromkeys(("AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR",
                     "GR", "HR", "HU", "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL",
                     "NO", "PL", "PT", "RO", "SE", "SI", "SK"), "112"),
    "GB": "999", "US": "911", "CA": "911", "AU": "000", "NZ": "111",
}  # fmt: skip


def emergency_number(country: str) -> str | None:
    """The police's emergency number in ``country``, or None when it is not known here."""
    return EMERGENCY.get(country.upper())


_TEXT: Final = {
    "en": (
        "This file can't be sent.\n"
        "It matches an entry on a list of known child sexual abuse material, so this app "
        "won't share it. Nothing has been reported: this check ran only on your device, and "
        "no one else learns about it.\n"
        "If you are shown in this image: it is not your fault. {support.name} can help get it "
        "removed: {support.phone}, {support.url}\n"
        "Worried about your own sexual thoughts or viewing? {helpline.name} offers "
        "confidential help; you don't have to give your name: {helpline.phone}, "
        "{helpline.url}"
    ),
    "nl": (
        "Dit bestand kan niet worden verstuurd.\n"
        "Het komt overeen met een vermelding op een lijst van bekend beeldmateriaal van "
        "seksueel kindermisbruik. Daarom deelt deze app het niet. Er is niets gemeld: deze "
        "controle vond alleen op je eigen apparaat plaats en niemand anders komt het te "
        "weten.\n"
        "Sta jij zelf op dit beeld? Het is niet jouw schuld. {support.name} helpt om het "
        "te laten verwijderen: {support.phone}, {support.url}\n"
        "Maak je je zorgen over je eigen seksuele gedachten of kijkgedrag? {helpline.name} "
        "biedt vertrouwelijke hulp; je hoeft je naam niet te noemen: {helpline.phone}, "
        "{helpline.url}"
    ),
}


class ReferralError(Invalid):
    """A referral file or choice that cannot be used; the message says why."""


def warning(language: str, referral: Referral) -> str:
    """The warning text in ``language`` with ``referral``'s helplines. Raises ReferralError
    for a language without a text."""
    try:
        text = _TEXT[language]
    except KeyError:
        raise ReferralError(
            f"no warning text in {language!r}; languages: {', '.join(LANGUAGES)}"
        ) from None
    return text.format(helpline=referral.helpline, support=referral.support)


def referral(country: str, table: dict[str, Referral] | None = None) -> Referral:
    """The helplines for ``country`` (ISO 3166 alpha-2). Raises ReferralError for a country
    without any."""
    table = table if table is not None else default_referrals()
    try:
        return table[country.upper()]
    except KeyError:
        raise ReferralError(
            f"no helplines for country {country!r}; configured: {', '.join(sorted(table))}"
        ) from None


def default_referrals() -> dict[str, Referral]:
    return _parse(_DEFAULTS, "the built-in helplines")


def load_referrals(path: Path) -> dict[str, Referral]:
    """Helplines from a JSON file: ``{"NL": {"helpline": {"name", "phone", "url"}, "support":
    {...}}, ...}``. Raises ReferralError naming the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as error:
        raise ReferralError(f"{path}: cannot read: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
        raise ReferralError(f"{path}: not JSON ({str(error)[:80]})") from None
    return _parse(data, str(path))


def _parse(data: Any, where: str) -> dict[str, Referral]:
    if not isinstance(data, dict) or not data:
        raise ReferralError(f"{where}: expected an object of countries")
    table = {}
    for country, entry in data.items():
        if not (isinstance(country, str) and len(country) == 2 and country.isalpha()):
            raise ReferralError(f"{where}: {country!r} is not a two-letter country code")
        lines = []
        for audience, field in (("self", "helpline"), ("depicted", "support")):
            line = entry.get(field) if isinstance(entry, dict) else None
            if not isinstance(line, dict) or not all(
                isinstance(line.get(key), str) and line[key].strip()
                for key in ("name", "phone", "url")
            ):
                raise ReferralError(
                    f"{where}: {country}.{field}: expected an object with name, phone and url"
                )
            lines.append(Helpline(line["name"], line["phone"], line["url"], audience))
        table[country.upper()] = Referral(country.upper(), lines[0], lines[1])
    return table
