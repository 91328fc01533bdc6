"""Hash lists: entries, provenance, versions, releases, and their file formats."""
