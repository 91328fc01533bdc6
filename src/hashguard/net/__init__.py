"""Network clients: the SSRF-safe fetcher and DNS (floor 3)."""
