"""Provider reports (floor 3): for confirmed detections only, as the EU CSA Regulation's Art 13
report (signed JSON) or NCMEC's CyberTipline report (XML), submitted by adapters with retries;
and the services' risk assessment records."""
