"""Network clients for lists held by other services (floor 3): another hashguard's change feed
today; NCMEC, StopNCII and ThreatExchange clients belong here too."""
