"""Loopback stand-ins for the exchanges hashguard fetches from: real HTTP servers on 127.0.0.1
implementing each exchange's documented API, one module per exchange."""
