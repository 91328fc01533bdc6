"""The words of the public report page (``/report``) in English and Dutch: plain and calm, for
people who have just seen something they wish they had not. They say what to send (web
addresses, never the pictures), what happens next, and that reporting may be anonymous."""

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "language_name": "English",
        "other_language": "Nederlands",
        "skip": "Skip to the content",
        "exit": "Quick exit",
        "exit_spoken": "Emergency, leave this page:",
        "exit_hint": "Or press Shift 3 times. This does not erase your browser history.",
        "brand": "Report child sexual abuse material",
        "nav": "These pages",
        "nav_report": "Make a report",
        "nav_status": "Follow a report",
        "title": "Report child sexual abuse material online",
        "danger": "Is a child in danger right now? Call the police on {number}.",
        "danger_unknown": "Is a child in danger right now? Call the police.",
        "intro": "If you came across pictures or videos of the sexual abuse of a child on a "
        "website, send us the web address. Trained analysts look at it, and if it is illegal "
        "we make sure it is taken down and the police are told. You do not need to give your "
        "name.",
        "never_files": "Send only the web address. Do not download, copy or send the "
        "pictures or videos themselves, not even to us: that is a crime in itself. This form "
        "takes no files.",
        "urls": "Web addresses",
        "urls_hint": "One per line, as they appear in your browser's address bar, starting "
        "with http:// or https://. At most 20.",
        "seen_where": "Where did you come across it?",
        "seen_where_hint": "For example a website, a forum, a social network, an app or a "
        "chat group, and how you got there if you remember.",
        "description": "Anything else we should know? (optional)",
        "description_hint": "For example what you saw on the page. Please do not describe "
        "the children in detail.",
        "contact": "Your e-mail address (optional)",
        "contact_hint": "Only if you want us to be able to ask you something. Leave it empty "
        "to report anonymously. It is deleted after {days} days.",
        "send": "Send the report",
        "error_title": "The report was not sent",
        "detail": "Technical detail (in English):",
        "busy": "Too many reports came from your connection just now. Please try again in "
        "{minutes} minutes.",
        "busy_one": "Too many reports came from your connection just now. Please try again "
        "in a minute.",
        "status_busy": "Many status codes that do not exist were tried from your connection "
        "just now, so looking up is paused. Please try again in {minutes} minutes.",
        "status_busy_one": "Many status codes that do not exist were tried from your "
        "connection just now, so looking up is paused. Please try again in a minute.",
        "received_title": "Thank you: your report has been received",
        "reference": "Report reference",
        "token": "Status code",
        "write_down": "With this status code you can see what happened to your report. "
        "Write it down or keep it somewhere safe: it is shown only this once.",
        "received_next": "What happens now: our analysts look at the web addresses. If the "
        "material is illegal, we ask the company that hosts it to remove it and tell the "
        "police; if it is hosted in another country, we pass it to the hotline there.",
        "report_more": "Report another web address",
        "status_title": "Follow a report",
        "status_intro": "Enter the status code you were given when you sent the report. We "
        "only say how far the report has got: never what was found or where.",
        "status_field": "Status code",
        "show_status": "Show the status",
        "status_unknown": "We do not know that status code. Please check it and try again.",
        "status_is": "The status of your report:",
        "status_received": "Received: our analysts have not finished looking at it yet.",
        "status_assessed": "Assessed: our analysts have looked at everything in your report.",
        "status_action taken": "Action taken: we have asked for the material to be removed, "
        "or passed it to the police or the hotline in the country where it is hosted.",
        "no_hotline": "This service does not run a hotline.",
        "help_title": "Need to talk to someone?",
        "help": "Seeing this material can be upsetting. You can talk to someone in "
        "confidence, for free.",
    },
    "nl": {
        "language_name": "Nederlands",
        "other_language": "English",
        "skip": "Naar de inhoud",
        "exit": "Snel weg",
        "exit_spoken": "Noodgeval, verlaat deze pagina:",
        "exit_hint": "Of druk 3 keer op Shift. Dit wist je browsergeschiedenis niet.",
        "brand": "Meld seksueel kindermisbruikmateriaal",
        "nav": "Deze pagina's",
        "nav_report": "Doe een melding",
        "nav_status": "Volg een melding",
        "title": "Meld seksueel kindermisbruikmateriaal op internet",
        "danger": "Is een kind nu in gevaar? Bel de politie via {number}.",
        "danger_unknown": "Is een kind nu in gevaar? Bel de politie.",
        "intro": "Kwam je op een website foto's of video's tegen van seksueel misbruik van "
        "een kind? Stuur ons het webadres. Getrainde analisten bekijken het, en als het "
        "strafbaar is zorgen wij dat het wordt verwijderd en dat de politie het weet. Je "
        "naam is niet nodig.",
        "never_files": "Stuur alleen het webadres. Download, kopieer of stuur de foto's of "
        "video's zelf niet, ook niet naar ons: dat is op zichzelf strafbaar. Dit formulier "
        "neemt geen bestanden aan.",
        "urls": "Webadressen",
        "urls_hint": "Eén per regel, zoals ze in de adresbalk van je browser staan, beginnend "
        "met http:// of https://. Hooguit 20.",
        "seen_where": "Waar kwam je het tegen?",
        "seen_where_hint": "Bijvoorbeeld een website, een forum, een sociaal netwerk, een app "
        "of een chatgroep, en hoe je er kwam als je dat nog weet.",
        "description": "Moeten we nog iets weten? (niet verplicht)",
        "description_hint": "Bijvoorbeeld wat je op de pagina zag. Beschrijf de kinderen "
        "alsjeblieft niet in detail.",
        "contact": "Je e-mailadres (niet verplicht)",
        "contact_hint": "Alleen als je wilt dat we je iets kunnen vragen. Laat het leeg om "
        "anoniem te melden. Het wordt na {days} dagen gewist.",
        "send": "Verstuur de melding",
        "error_title": "De melding is niet verstuurd",
        "detail": "Technische toelichting (in het Engels):",
        "busy": "Er kwamen zojuist te veel meldingen van je verbinding. Probeer het over "
        "{minutes} minuten opnieuw.",
        "busy_one": "Er kwamen zojuist te veel meldingen van je verbinding. Probeer het over "
        "een minuut opnieuw.",
        "status_busy": "Vanaf je verbinding zijn zojuist veel statuscodes geprobeerd die niet "
        "bestaan, dus opzoeken staat even stil. Probeer het over {minutes} minuten opnieuw.",
        "status_busy_one": "Vanaf je verbinding zijn zojuist veel statuscodes geprobeerd die "
        "niet bestaan, dus opzoeken staat even stil. Probeer het over een minuut opnieuw.",
        "refused_url": "Een van de webadressen klopt niet. Zet elk adres op een eigen regel, "
        "zoals het in de adresbalk van je browser staat, beginnend met https:// of http://.",
        "refused_private": "Een van de webadressen is geen openbaar adres (een adres binnen "
        "een eigen of lokaal netwerk). Het meldpunt kan alleen pagina's bekijken die iedereen "
        "op internet kan bereiken.",
        "refused_too_many": "Er staan te veel webadressen in de melding: hooguit 20 per "
        "melding. Verstuur de rest in een tweede melding.",
        "refused_missing": "Vul de webadressen in en zeg waar je ze tegenkwam.",
        "refused_long": "Een van de velden is te lang. Maak de tekst korter.",
        "refused": "De melding is niet aangenomen. Kijk de webadressen en de velden na.",
        "received_title": "Dank je wel: je melding is ontvangen",
        "reference": "Kenmerk van de melding",
        "token": "Statuscode",
        "write_down": "Met deze statuscode kun je zien wat er met je melding is gebeurd. "
        "Schrijf hem op of bewaar hem goed: hij wordt alleen nu getoond.",
        "received_next": "Wat er nu gebeurt: onze analisten bekijken de webadressen. Is het "
        "materiaal strafbaar, dan vragen we het bedrijf dat het host om het te verwijderen en "
        "melden we het bij de politie; staat het in een ander land, dan geven we het door aan "
        "het meldpunt daar.",
        "report_more": "Meld nog een webadres",
        "status_title": "Volg een melding",
        "status_intro": "Vul de statuscode in die je kreeg toen je de melding verstuurde. We "
        "zeggen alleen hoe ver de melding is: nooit wat er is gevonden of waar.",
        "status_field": "Statuscode",
        "show_status": "Toon de status",
        "status_unknown": "Deze statuscode kennen we niet. Controleer hem en probeer het opnieuw.",
        "status_is": "De status van je melding:",
        "status_received": "Ontvangen: onze analisten zijn er nog niet klaar mee.",
        "status_assessed": "Beoordeeld: onze analisten hebben alles in je melding bekeken.",
        "status_action taken": "Actie ondernomen: we hebben gevraagd het materiaal te "
        "verwijderen, of het doorgegeven aan de politie of aan het meldpunt in het land waar "
        "het gehost wordt.",
        "no_hotline": "Deze dienst heeft geen meldpunt.",
        "help_title": "Wil je met iemand praten?",
        "help": "Dit materiaal zien kan je van streek maken. Je kunt vertrouwelijk en gratis "
        "met iemand praten.",
    },
}
