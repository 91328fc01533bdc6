"""The words of the public monitor page (``/monitor``) in English and Dutch: plain, factual,
saying exactly what each figure counts."""

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "language_name": "English",
        "other_language": "Nederlands",
        "skip": "Skip to the content",
        "exit": "Quick exit",
        "exit_spoken": "Leave this page:",
        "exit_hint": "Leaves this page at once.",
        "brand": "Hosting monitor",
        "nav": "These pages",
        "nav_monitor": "Monitor",
        "nav_report": "Make a report",
        "title": "How fast hosters remove child sexual abuse material",
        "intro": "For every hosting provider the hotline sent notices to: how long it took from "
        "the hotline receiving a report to the material being gone, as the hotline verified it.",
        "period": "Period",
        "period_3m": "Last 3 months",
        "period_12m": "Last 12 months",
        "period_year": "This year",
        "period_all": "All time",
        "period_from": "From (month)",
        "period_until": "Until (month, not included)",
        "period_show": "Show",
        "period_now": "Notices reported from {since} until {until}.",
        "computed": "Figures as of {at} UTC (at most a minute old).",
        "beginning": "the beginning",
        "today": "now",
        "overall": "All hosters",
        "by_hoster": "Per hoster",
        "by_country": "Per country (where the hoster is)",
        "group_hoster": "Hoster",
        "group_country": "Country",
        "notices": "Notices",
        "removed": "Removed",
        "median": "Median hours",
        "p90": "90 % within hours",
        "p99": "99 % within hours",
        "within": "Removed within 24 h",
        "open": "Open now",
        "overdue": "Overdue now",
        "renotices": "Re-notices",
        "escalations": "Escalations",
        "reappeared": "Came back",
        "reappearance": "Came back (share)",
        "disputes": "Disputes",
        "none": "No notices in this period.",
        "distribution": "How long removals took",
        "distribution_desc": "Number of verified removals per band of hours from report to "
        "removal.",
        "band": "Hours to removal",
        "removals": "Removals",
        "trend": "Trend per month",
        "trend_desc": "Median and 90th percentile hours to removal of the notices reported "
        "each month.",
        "month": "Month",
        "chart_summary": "Chart as a table",
        "suppressed": "<10",
        "missing": "–",
        "exports": "Download these figures",
        "json": "JSON",
        "csv_hoster": "CSV per hoster",
        "csv_country": "CSV per country",
        "about": "What the figures mean",
        "about_definition": "Time to removal follows INHOPE's notice-and-takedown definition: "
        "from the moment the hotline received the report to the moment the material was "
        "removed. Removal is verified by the hotline fetching the web addresses again and "
        "comparing what they serve by hash; a hoster saying it removed something is not "
        "counted until the check confirms it.",
        "about_counts": "Notices and removal orders count. A notice to a CDN asking who hosts "
        "the material is not counted; the notice to that hoster is. The 90 % and 99 % figures "
        "interpolate linearly between the sorted times. The share removed within 24 hours is "
        "of the notices that were removed or whose 24 hours have passed.",
        "about_suppression": "To protect the people involved, a number under 10 is shown as "
        "\u201c<10\u201d, and so is a second number wherever the first could be worked out "
        "from a total. The median and 90 % hours of a group with fewer than 10 removals are not "
        "shown, its 99 % hours with fewer than 100. Periods are whole calendar months.",
        "bad_period": "That period is not understood: {error}",
        "busy": "Many periods were asked for from this connection just now. Please try again "
        "in a minute.",
    },
    "nl": {
        "language_name": "Nederlands",
        "other_language": "English",
        "skip": "Naar de inhoud",
        "exit": "Snel weg",
        "exit_spoken": "Verlaat deze pagina:",
        "exit_hint": "Verlaat deze pagina meteen.",
        "brand": "Hostingmonitor",
        "nav": "Deze pagina's",
        "nav_monitor": "Monitor",
        "nav_report": "Melden",
        "title": "Hoe snel hostingbedrijven beeldmateriaal van seksueel kindermisbruik verwijderen",
        "intro": "Voor elk hostingbedrijf dat het meldpunt een melding stuurde: hoe lang het "
        "duurde van de melding bij het meldpunt tot het materiaal weg was, zoals het meldpunt "
        "dat controleerde.",
        "period": "Periode",
        "period_3m": "Laatste 3 maanden",
        "period_12m": "Laatste 12 maanden",
        "period_year": "Dit jaar",
        "period_all": "Alles",
        "period_from": "Vanaf (maand)",
        "period_until": "Tot (maand, niet inbegrepen)",
        "period_show": "Toon",
        "period_now": "Meldingen ontvangen van {since} tot {until}.",
        "computed": "Cijfers van {at} UTC (hooguit een minuut oud).",
        "beginning": "het begin",
        "today": "nu",
        "overall": "Alle hostingbedrijven",
        "by_hoster": "Per hostingbedrijf",
        "by_country": "Per land (waar het hostingbedrijf zit)",
        "group_hoster": "Hostingbedrijf",
        "group_country": "Land",
        "notices": "Meldingen",
        "removed": "Verwijderd",
        "median": "Mediaan uren",
        "p90": "90 % binnen uren",
        "p99": "99 % binnen uren",
        "within": "Binnen 24 uur verwijderd",
        "open": "Nu open",
        "overdue": "Nu te laat",
        "renotices": "Herhaalmeldingen",
        "escalations": "Escalaties",
        "reappeared": "Teruggekomen",
        "reappearance": "Teruggekomen (aandeel)",
        "disputes": "Betwist",
        "none": "Geen meldingen in deze periode.",
        "distribution": "Hoe lang verwijderen duurde",
        "distribution_desc": "Aantal gecontroleerde verwijderingen per aantal uren van melding "
        "tot verwijdering.",
        "band": "Uren tot verwijdering",
        "removals": "Verwijderingen",
        "trend": "Verloop per maand",
        "trend_desc": "Mediaan en 90e percentiel van de uren tot verwijdering van de meldingen "
        "per maand.",
        "month": "Maand",
        "chart_summary": "Grafiek als tabel",
        "suppressed": "<10",
        "missing": "–",
        "exports": "Deze cijfers downloaden",
        "json": "JSON",
        "csv_hoster": "CSV per hostingbedrijf",
        "csv_country": "CSV per land",
        "about": "Wat de cijfers betekenen",
        "about_definition": "De tijd tot verwijdering volgt de definitie van INHOPE: van het "
        "moment dat het meldpunt de melding ontving tot het moment dat het materiaal weg was. "
        "Het meldpunt controleert dat zelf door de webadressen opnieuw op te halen en te "
        "vergelijken op hash; alleen de mededeling van een hostingbedrijf telt niet.",
        "about_counts": "Meldingen en verwijderingsbevelen tellen mee. Een melding aan een CDN "
        "met de vraag wie het materiaal host telt niet; de melding aan dat hostingbedrijf wel. "
        "De 90 %- en 99 %-cijfers interpoleren lineair tussen de gesorteerde tijden. Het "
        "aandeel binnen 24 uur is van de meldingen die verwijderd zijn of waarvan de 24 uur "
        "voorbij zijn.",
        "about_suppression": "Om de betrokkenen te beschermen staat een aantal onder de 10 als "
        "\u201c<10\u201d, en zo ook een tweede aantal waar het eerste uit een totaal af te "
        "leiden zou zijn. De mediaan en de 90 %-uren van een groep met minder dan 10 "
        "verwijderingen worden niet getoond, de 99 %-uren bij minder dan 100. Perioden zijn hele "
        "kalendermaanden.",
        "bad_period": "Die periode is niet te begrijpen: {error}",
        "busy": "Er zijn net veel perioden opgevraagd vanaf deze verbinding. Probeer het over een "
        "minuut opnieuw.",
    },
}
