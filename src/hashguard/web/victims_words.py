"""The words of the victims' pages, in English and Dutch: plain, calm, never blaming, saying
what happens and what the person can decide. The pages' script reads the ones marked for it
(``SCRIPT``) from the page itself, so that both languages live in this one file."""

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "language_name": "English",
        "other_language": "Nederlands",
        "skip": "Skip to the content",
        "exit": "Quick exit",
        "exit_spoken": "Emergency, leave this page:",
        "exit_hint": "Or press Shift 3 times. This does not erase your browser history.",
        "brand": "Help to stop sharing",
        "nav": "These pages",
        "nav_start": "Make fingerprints",
        "nav_follow": "Follow your case",
        "start_title": "Your pictures never leave this device",
        "promise": "Only fingerprints are sent: short codes made here, on your device, from "
        "your pictures and videos. The pictures and videos themselves are never sent.",
        "intro": "If a private picture or video of you has been shared, or you are afraid it "
        "will be, you can make its fingerprints here. Platforms that work with us use them to "
        "find copies, and a person there checks every copy found. You do not need to give "
        "your name.",
        "not_your_fault": "What happened is not your fault. You decide what to send, and you "
        "can withdraw it at any time.",
        "step_files": "1. Choose the pictures or videos",
        "choose": "Choose pictures or videos",
        "choose_hint": "They are opened only in this browser. You see them small below; "
        "nobody else does.",
        "chosen": "Chosen",
        "step_age": "2. Were you under 18 when it was taken?",
        "age_hint": "This decides which list the fingerprints go on. If you were under 18, a "
        "child protection hotline is also told about the case: without any picture and "
        "without your name.",
        "under_18": "Yes, I was under 18",
        "adult": "No, I was 18 or older",
        "step_send": "3. Send the fingerprints",
        "send_hint": "Only the fingerprints of the files above are sent.",
        "send": "Send the fingerprints",
        "case_opened": "Your case is open",
        "case_number": "Case number",
        "pin": "PIN",
        "write_down": "Please write these down now and keep them somewhere safe. This is the "
        "only time the PIN is shown, and nobody can find it again, not even us. With the case "
        "number and PIN you can follow your case or withdraw it at any time.",
        "copy_label": "Copy",
        "print_label": "Print",
        "what_next": "Platforms that work with us now look for copies. A person at the "
        "platform checks every copy found before anything is done.",
        "follow_title": "Follow your case",
        "follow_promise": "No pictures are shown or kept here: only what happened to the "
        "fingerprints.",
        "case_field": "Case number",
        "pin_field": "PIN",
        "show_case": "Show my case",
        "status_title": "Your case",
        "fingerprints": "Fingerprints",
        "show_each": "Show each fingerprint",
        "platforms": "Platforms",
        "js_matches": "Copies found",
        "js_pending_review": "Waiting for a person to check",
        "js_blocked": "Removed or blocked",
        "js_not_blocked": "Not blocked",
        "no_platforms": "No platform has reported a copy yet.",
        "withdraw_title": "Withdraw",
        "withdraw_hint": "You can withdraw the whole case or only some fingerprints. "
        "Platforms then stop looking for them. To send them again later, open a new case.",
        "withdraw_all": "The whole case",
        "withdraw_some": "Only the fingerprints I choose",
        "withdraw_what": "What do you want to withdraw?",
        "withdraw": "Withdraw",
        "confirm_yes": "Yes, withdraw",
        "confirm_no": "No, go back",
        "needs_script": "This page makes the fingerprints in your browser, which needs "
        "JavaScript. Please turn it on, or use another browser.",
        # the pages' script
        "js_working": "Making fingerprints: {done} of {total} files",
        "js_working_one": "Making the fingerprint of 1 file",
        "js_done": "Fingerprints ready for {total} files.",
        "js_done_one": "Fingerprint ready for 1 file.",
        "js_file_working": "Making its fingerprint",
        "js_file_ready": "Fingerprint ready",
        "js_file_failed": "This file could not be opened here, so it has no fingerprint. You "
        "could try another copy of it.",
        "js_digests_only": "This file could not be opened here as a picture or video, so "
        "only its exact fingerprint is sent: it finds identical copies.",
        "js_low_quality": "This picture is very plain or dark, so its picture fingerprint "
        "could be mistaken for someone else's picture. To avoid that, we will not send it. "
        "Its exact fingerprint is still sent, so identical copies can still be found.",
        "js_duplicates": "These {count} files look the same, so they are shown and sent as one.",
        "js_remove": "Remove {name}",
        "js_need_files": "Please choose at least one picture or video first.",
        "js_need_age": "Please answer the question about your age.",
        "js_still_working": "Please wait until all fingerprints are ready.",
        "js_nothing": "None of the chosen files gave a fingerprint that can be sent.",
        "js_sending": "Sending the fingerprints",
        "js_not_sent": "The fingerprints could not be sent. Nothing was saved. Please try "
        "again in a moment.",
        "js_refused_bad_request": "One of the fingerprints was not accepted: it was not in "
        "the expected form, or its picture has too little detail to be recognised safely. "
        "Nothing was saved.",
        "js_refused_too_large": "That is more fingerprints than one case can take. Nothing "
        "was saved. Please send fewer files, and the others in a second case.",
        "js_refused_invalid": "The fingerprints were not sent in the expected form. Nothing "
        "was saved. Please reload this page and try again.",
        "js_refused_rate_limited": "Many cases have been opened from this connection just "
        "now. Nothing was saved. Please try again in {minutes} minutes.",
        "js_refused_rate_limited_one": "Many cases have been opened from this connection just "
        "now. Nothing was saved. Please try again in 1 minute.",
        "js_detail": "Technical detail (in English):",
        "js_copied": "Copied",
        "js_copy_failed": "Could not copy: please write them down.",
        "js_wrong": "That case number and PIN do not match a case. Please check them and try "
        "again.",
        "js_locked": "Too many tries. To keep your case safe it is locked for {minutes} "
        "minutes. Please try again after that.",
        "js_locked_one": "Too many tries. To keep your case safe it is locked for 1 minute. "
        "Please try again after that.",
        "js_unavailable": "Your case cannot be shown just now. Please try again in a moment.",
        "js_state_received": "Received: we hold it; platforms are not looking for it just now",
        "js_state_active": "Active: platforms are looking for copies",
        "js_state_withdrawn": "Withdrawn: platforms stop looking for it",
        "js_applied": "Withdrawal applied by {applied} of {partners} platforms",
        "js_applied_here": "Withdrawn here at once; no other platform follows this list yet.",
        "js_frames": "a video of {frames} seconds",
        "js_summary_active": "{count} active",
        "js_summary_received": "{count} received",
        "js_summary_withdrawn": "{count} withdrawn",
        "js_signal_pdq": "Picture (finds similar copies)",
        "js_signal_vpdq": "Video (finds similar copies)",
        "js_signal_md5": "File (finds exact copies)",
        "js_signal_sha256": "File (finds exact copies)",
        "js_signal_other": "Fingerprint",
        "js_confirm_all": "Withdraw the whole case? Platforms will stop looking for all "
        "{count} fingerprints. This cannot be undone.",
        "js_confirm_all_one": "Withdraw the whole case? Platforms will stop looking for its "
        "one fingerprint. This cannot be undone.",
        "js_confirm_one": "Withdraw this fingerprint? Platforms will stop looking for it. "
        "This cannot be undone.",
        "js_confirm_some": "Withdraw {count} fingerprints? Platforms will stop looking for "
        "them. This cannot be undone.",
        "js_choose_some": "Please choose at least one fingerprint to withdraw.",
        "js_withdraw_not_found": "The withdrawal did not go through: this case does not "
        "hold one of the chosen fingerprints. Nothing was withdrawn. Please show your case "
        "again to see it as it is now.",
        "js_withdraw_invalid": "The withdrawal did not go through: it was not sent in the "
        "expected form. Nothing was withdrawn. Please reload this page and try again.",
        "js_withdrawn": "Withdrawn. Platforms stop looking for them; the list above shows "
        "where it has been applied.",
    },
    "nl": {
        "language_name": "Nederlands",
        "other_language": "English",
        "skip": "Naar de inhoud",
        "exit": "Snel weg",
        "exit_spoken": "Snel deze pagina verlaten:",
        "exit_hint": "Of druk 3 keer op Shift. Dit wist je browsergeschiedenis niet.",
        "brand": "Hulp om delen te stoppen",
        "nav": "Deze pagina's",
        "nav_start": "Vingerafdrukken maken",
        "nav_follow": "Je zaak volgen",
        "start_title": "Je beelden verlaten dit apparaat nooit",
        "promise": "Alleen vingerafdrukken worden verstuurd: korte codes die hier, op je "
        "apparaat, van je foto's en video's worden gemaakt. De foto's en video's zelf worden "
        "nooit verstuurd.",
        "intro": "Is een privéfoto of -video van jou gedeeld, of ben je bang dat dat gebeurt? "
        "Dan kun je hier de vingerafdrukken ervan maken. Platforms die met ons samenwerken "
        "zoeken daarmee naar kopieën, en daar bekijkt een mens elke gevonden kopie. Je hoeft "
        "je naam niet te geven.",
        "not_your_fault": "Wat er is gebeurd, is niet jouw schuld. Jij beslist wat je "
        "verstuurt, en je kunt het altijd weer intrekken.",
        "step_files": "1. Kies de foto's of video's",
        "choose": "Foto's of video's kiezen",
        "choose_hint": "Ze worden alleen in deze browser geopend. Jij ziet ze hieronder klein; "
        "niemand anders.",
        "chosen": "Gekozen",
        "step_age": "2. Was je jonger dan 18 toen het werd gemaakt?",
        "age_hint": "Dit bepaalt op welke lijst de vingerafdrukken komen. Was je jonger dan "
        "18, dan hoort ook een meldpunt voor kinderbescherming van de zaak: zonder beeld en "
        "zonder je naam.",
        "under_18": "Ja, ik was jonger dan 18",
        "adult": "Nee, ik was 18 of ouder",
        "step_send": "3. Verstuur de vingerafdrukken",
        "send_hint": "Alleen de vingerafdrukken van de bestanden hierboven worden verstuurd.",
        "send": "Vingerafdrukken versturen",
        "case_opened": "Je zaak is geopend",
        "case_number": "Zaaknummer",
        "pin": "Pincode",
        "write_down": "Schrijf deze nu op en bewaar ze op een veilige plek. Alleen nu wordt de "
        "pincode getoond, en niemand kan hem terugvinden, ook wij niet. Met het zaaknummer en "
        "de pincode kun je je zaak volgen of altijd weer intrekken.",
        "copy_label": "Kopiëren",
        "print_label": "Afdrukken",
        "what_next": "Platforms die met ons samenwerken zoeken nu naar kopieën. Een mens bij "
        "het platform bekijkt elke gevonden kopie voordat er iets gebeurt.",
        "follow_title": "Je zaak volgen",
        "follow_promise": "Hier worden geen beelden getoond of bewaard: alleen wat er met de "
        "vingerafdrukken is gebeurd.",
        "case_field": "Zaaknummer",
        "pin_field": "Pincode",
        "show_case": "Mijn zaak tonen",
        "status_title": "Je zaak",
        "fingerprints": "Vingerafdrukken",
        "show_each": "Toon elke vingerafdruk",
        "platforms": "Platforms",
        "js_matches": "Kopieën gevonden",
        "js_pending_review": "Wachten op controle door een mens",
        "js_blocked": "Verwijderd of geblokkeerd",
        "js_not_blocked": "Niet geblokkeerd",
        "no_platforms": "Nog geen platform heeft een kopie gemeld.",
        "withdraw_title": "Intrekken",
        "withdraw_hint": "Je kunt de hele zaak intrekken of alleen sommige vingerafdrukken. "
        "Platforms zoeken daar dan niet meer naar. Wil je ze later opnieuw versturen, open "
        "dan een nieuwe zaak.",
        "withdraw_all": "De hele zaak",
        "withdraw_some": "Alleen de vingerafdrukken die ik kies",
        "withdraw_what": "Wat wil je intrekken?",
        "withdraw": "Intrekken",
        "confirm_yes": "Ja, intrekken",
        "confirm_no": "Nee, terug",
        "needs_script": "Deze pagina maakt de vingerafdrukken in je browser, en daarvoor is "
        "JavaScript nodig. Zet het aan, of gebruik een andere browser.",
        "js_working": "Vingerafdrukken maken: {done} van {total} bestanden",
        "js_working_one": "Vingerafdruk maken van 1 bestand",
        "js_done": "Vingerafdrukken klaar voor {total} bestanden.",
        "js_done_one": "Vingerafdruk klaar voor 1 bestand.",
        "js_file_working": "Vingerafdruk wordt gemaakt",
        "js_file_ready": "Vingerafdruk klaar",
        "js_file_failed": "Dit bestand kon hier niet worden geopend en heeft dus geen "
        "vingerafdruk. Je kunt een andere kopie ervan proberen.",
        "js_digests_only": "Dit bestand kon hier niet als foto of video worden geopend; "
        "alleen de exacte vingerafdruk wordt verstuurd, die precies dezelfde kopieën vindt.",
        "js_low_quality": "Deze foto is erg egaal of donker, waardoor de beeldvingerafdruk "
        "verward kan worden met de foto van iemand anders. Om dat te voorkomen versturen we "
        "die niet. De exacte vingerafdruk wordt wel verstuurd, dus precies dezelfde kopieën "
        "kunnen nog steeds worden gevonden.",
        "js_duplicates": "Deze {count} bestanden lijken hetzelfde en worden daarom als één "
        "getoond en verstuurd.",
        "js_remove": "{name} weghalen",
        "js_need_files": "Kies eerst minstens één foto of video.",
        "js_need_age": "Beantwoord alsjeblieft de vraag over je leeftijd.",
        "js_still_working": "Wacht alsjeblieft tot alle vingerafdrukken klaar zijn.",
        "js_nothing": "Geen van de gekozen bestanden gaf een vingerafdruk die verstuurd kan "
        "worden.",
        "js_sending": "De vingerafdrukken worden verstuurd",
        "js_not_sent": "De vingerafdrukken konden niet worden verstuurd. Er is niets bewaard. "
        "Probeer het zo nog eens.",
        "js_refused_bad_request": "Een van de vingerafdrukken is niet aangenomen: hij had "
        "niet de verwachte vorm, of de foto heeft te weinig details om veilig te herkennen. "
        "Er is niets bewaard.",
        "js_refused_too_large": "Dat zijn meer vingerafdrukken dan één zaak kan bevatten. Er "
        "is niets bewaard. Verstuur minder bestanden, en de rest in een tweede zaak.",
        "js_refused_invalid": "De vingerafdrukken zijn niet in de verwachte vorm verstuurd. "
        "Er is niets bewaard. Laad deze pagina opnieuw en probeer het nog eens.",
        "js_refused_rate_limited": "Er zijn net veel zaken geopend vanaf deze verbinding. Er "
        "is niets bewaard. Probeer het over {minutes} minuten opnieuw.",
        "js_refused_rate_limited_one": "Er zijn net veel zaken geopend vanaf deze verbinding. "
        "Er is niets bewaard. Probeer het over 1 minuut opnieuw.",
        "js_detail": "Technische toelichting (in het Engels):",
        "js_copied": "Gekopieerd",
        "js_copy_failed": "Kopiëren lukte niet: schrijf ze alsjeblieft op.",
        "js_wrong": "Dit zaaknummer en deze pincode horen niet bij een zaak. Controleer ze en "
        "probeer het opnieuw.",
        "js_locked": "Te vaak geprobeerd. Om je zaak te beschermen is die {minutes} minuten "
        "op slot. Probeer het daarna opnieuw.",
        "js_locked_one": "Te vaak geprobeerd. Om je zaak te beschermen is die 1 minuut op "
        "slot. Probeer het daarna opnieuw.",
        "js_unavailable": "Je zaak kan nu niet worden getoond. Probeer het zo nog eens.",
        "js_state_received": "Ontvangen: wij bewaren hem; platforms zoeken er nu niet naar",
        "js_state_active": "Actief: platforms zoeken naar kopieën",
        "js_state_withdrawn": "Ingetrokken: platforms zoeken er niet meer naar",
        "js_applied": "Intrekking verwerkt door {applied} van {partners} platforms",
        "js_applied_here": "Hier meteen ingetrokken; nog geen ander platform volgt deze lijst.",
        "js_frames": "een video van {frames} seconden",
        "js_summary_active": "{count} actief",
        "js_summary_received": "{count} ontvangen",
        "js_summary_withdrawn": "{count} ingetrokken",
        "js_signal_pdq": "Foto (vindt gelijkende kopieën)",
        "js_signal_vpdq": "Video (vindt gelijkende kopieën)",
        "js_signal_md5": "Bestand (vindt exacte kopieën)",
        "js_signal_sha256": "Bestand (vindt exacte kopieën)",
        "js_signal_other": "Vingerafdruk",
        "js_confirm_all": "De hele zaak intrekken? Platforms zoeken dan niet meer naar alle "
        "{count} vingerafdrukken. Dit kan niet ongedaan worden gemaakt.",
        "js_confirm_all_one": "De hele zaak intrekken? Platforms zoeken dan niet meer naar de "
        "enige vingerafdruk ervan. Dit kan niet ongedaan worden gemaakt.",
        "js_confirm_one": "Deze vingerafdruk intrekken? Platforms zoeken er dan niet meer naar. "
        "Dit kan niet ongedaan worden gemaakt.",
        "js_confirm_some": "{count} vingerafdrukken intrekken? Platforms zoeken er dan niet "
        "meer naar. Dit kan niet ongedaan worden gemaakt.",
        "js_choose_some": "Kies minstens één vingerafdruk om in te trekken.",
        "js_withdraw_not_found": "Het intrekken is niet gelukt: een van de gekozen "
        "vingerafdrukken hoort niet bij deze zaak. Er is niets ingetrokken. Toon je "
        "zaak opnieuw om te zien hoe die er nu voor staat.",
        "js_withdraw_invalid": "Het intrekken is niet gelukt: het verzoek had niet de "
        "verwachte vorm. Er is niets ingetrokken. Laad deze pagina opnieuw en probeer het nog "
        "eens.",
        "js_withdrawn": "Ingetrokken. Platforms zoeken er niet meer naar; de lijst hierboven "
        "toont waar dat al is verwerkt.",
    },
}


def script_words(language: str) -> dict[str, str]:
    """The words the pages' script shows, without their ``js_`` mark."""
    return {key[3:]: text for key, text in WORDS[language].items() if key.startswith("js_")}
