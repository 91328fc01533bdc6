"""How much text an imported record may carry, field by field: the one place these limits are
set. Every list format and every exchange checks its records against them
(``hashguard.lists.records.bounded``), so an import cannot grow the database, or the answer to
a match, by whatever a file or a peer chooses to send (docs/formats.md, "Limits").
"""

from typing import Final

# A hash in its text form: PDQ and digests are at most 64 characters; a vPDQ in its one-line
# form takes about 80 characters per frame hashed, so 4 Mi characters hold more than the
# longest video hashguard hashes (6 hours at one frame a second).
VALUE: Final = 1 << 22
LABEL: Final = 256  # one label (an NCMEC classification, a pytx tag)
LABELS: Final = 256  # labels on one record
NAME: Final = 256  # an organisation, who submitted or assessed an entry, an actor
JURISDICTION: Final = 16  # ISO 3166 alpha-2, or INT
REFERENCE: Final = 512  # a source's own reference (case, report or entry id)
REASON: Final = 2048  # why a value was withdrawn or delisted
SOURCES: Final = 64  # sources on one record
TIME: Final = 64  # a change's time, ISO 8601
LEGAL_BASIS: Final = 2048  # a list's legal basis, as an origin describes a list it is followed for
JURISDICTIONS: Final = 1000  # jurisdictions a list names

# The limits by field name, as the refusals and docs/formats.md name them.
TEXT: Final = {
    "value": VALUE,
    "label": LABEL,
    "submitted_by": NAME,
    "assessed_by": NAME,
    "organisation": NAME,
    "jurisdiction": JURISDICTION,
    "reference": REFERENCE,
    "reason": REASON,
    "actor": NAME,
    "at": TIME,
    "legal_basis": LEGAL_BASIS,
}
