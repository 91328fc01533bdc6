"""Signing and the transparency log: Ed25519 keys, RFC 9162 Merkle trees, an append-only log
of signed records, and the signed manifests that list and device releases log in it."""
