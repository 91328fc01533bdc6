"""What can go wrong, by kind: every error hashguard raises on purpose derives from one of these.

A domain error says what was wrong in its message (which file, which line, what was expected)
and is one of the kinds below by its class. The edges map the kind, never the message: the API
to an HTTP status (``api/errors.py``), the command line to one line on stderr and an exit
status (``cli/common.py``). A class may be of two kinds where it is (a list that does not exist
is a ``ListError`` and ``NotFound``); the most specific kind listed first in ``KINDS`` wins.
"""

from typing import Final


class HashguardError(Exception):
    """An error hashguard raises on purpose; its message says what was wrong."""


class Invalid(HashguardError, ValueError):
    """Bad input: a malformed file, hash, record, request or option."""


class NotFound(HashguardError, LookupError):
    """What was named does not exist (a list, an entry, a detection, a service, a key)."""


class Conflict(HashguardError):
    """The request clashes with the state: the name is taken, the step was taken already."""


class Forbidden(HashguardError):
    """Allowed to no one in this configuration (a legal profile, a role, a scope)."""


class TooLarge(Invalid):
    """Input over a configured limit (bytes, pixels, frames, duration, a batch)."""


class Unsupported(Invalid):
    """Input of a kind hashguard does not handle (a media format, a signal for this media)."""


class Unprocessable(Invalid):
    """Well-formed input that fails the rules it must meet (a report its schema refuses)."""


class Unverified(HashguardError):
    """Material that does not verify: a signature, a log, a release, a chain of events."""


class Unavailable(HashguardError):
    """Something hashguard depends on cannot be reached or used now (a database, a peer)."""


# Most specific first: a class of two kinds is mapped by the first that matches.
KINDS: Final = (NotFound, Forbidden, Conflict, TooLarge, Unsupported, Unprocessable, Unverified,
                Unavailable, Invalid)  # fmt: skip


def kind_of(error: BaseException) -> type[HashguardError] | None:
    """The kind ``error`` is mapped by, or None for an error hashguard did not raise on
    purpose (a bug)."""
    return next((kind for kind in KINDS if isinstance(error, kind)), None)


# The largest id input may name: ids, versions and sequence numbers stay far below it, and a
# JSON client (JavaScript's numbers) reads every integer up to it exactly.
MAX_ID = 2**53 - 1
