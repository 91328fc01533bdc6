"""Loopback stand-ins of the exchanges' APIs (a real HTTP server on 127.0.0.1 each)."""
