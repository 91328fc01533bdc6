"""Scanning stored files in bulk (``hashguard scan``): a directory or an object-store prefix,
hashed and matched part by part, one Parquet row per file, resumable. The work is pure
functions over bytes and arrays; an engine (``hashguard.scan`` runs them in a process pool,
``hashguard.cluster`` on Ray) only decides where they run."""
