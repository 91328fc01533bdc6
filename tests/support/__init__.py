"""What tests share: generated media, scratch databases, real servers on loopback, the command
run in this process. Fixtures and pytest hooks live in ``conftest.py``; everything else here."""
