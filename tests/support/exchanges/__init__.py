"""Stand-ins for the exchanges hashguard fetches from: each a real HTTP server on loopback
implementing the exchange's documented API (pages, checkpoints, tombstones, errors, a corrupt
page, a corrupt record, a slow page, refused credentials) and keeping what it received."""
