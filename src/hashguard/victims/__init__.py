"""Victim-initiated removal (floor 3): a person hashes their own images on their device and
opens a case with the hashes alone; the hashes go into a victim list whose every match goes to
human review; the person follows the case with its number and PIN, and can withdraw it
everywhere (tombstones followers apply, with receipts). ``model`` (numbers, PINs, hashes,
outcomes), ``pins`` (slow PIN hashes, guessing limits), ``cases`` (open, status, withdraw),
``feedback`` (partners' outcomes), ``referrals`` (under-18 cases to the hotline)."""
