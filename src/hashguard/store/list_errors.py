"""The error of list operations, raised by the list store and its import engine alike."""


class ListError(ValueError):
    """A list operation that cannot be done; the message says which list and why."""
