"""Notice and takedown (floor 3): notices to hosters that meet DSA Art 16 and XARF v4
``content/csam``, signed; their delivery by e-mail and API; deadlines per legal profile;
removal verified by re-fetching and hashing; re-notices and an escalation ladder; reappearance;
removal orders; the bad-hoster monitor (docs/takedown.md)."""
