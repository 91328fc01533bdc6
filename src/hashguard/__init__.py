"""hashguard: match media against verifiable lists of known child-abuse material.

Floor 1 (``media``, ``signals``) is a library without database, web framework or network I/O.
"""

__version__ = "0.1.0"
