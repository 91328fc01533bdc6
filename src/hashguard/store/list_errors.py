"""The errors of list operations, raised by the list store and its import engine alike: each a
``ListError`` (bad input, by default) and, where it is, of a more specific kind."""

from hashguard.errors import Conflict, Invalid, NotFound


class ListError(Invalid):
    """A list operation that cannot be done; the message says which list and why."""


class ListNotFound(ListError, NotFound):
    """No list of that name."""


class EntryNotFound(ListError, NotFound):
    """The list holds no such entry."""


class ListExists(ListError, Conflict):
    """A list of that name exists already."""


class Unchanged(ListError, Conflict):
    """The entry is already as the change would make it (contested, delisted, deleted)."""


class ListInUse(ListError, Conflict):
    """The list cannot be removed while something fills it (an exchange); the message names
    what, and what to remove first."""
