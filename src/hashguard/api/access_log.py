"""The access log without case numbers. A victim's case number is half of what opens the case,
and the victims' routes carry it in the path, so the log writes ``/v1/victims/cases/…``."""

import logging
import re
from typing import Final

_CASE: Final = re.compile(r"(/v1/victims/cases/)[^/?\s]+")


class CaseNumbersHidden(logging.Filter):
    """Take case numbers out of the access log's lines (the path is among their arguments:
    a tuple under uvicorn, a mapping under granian)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_hidden(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _hidden(arg) for name, arg in record.args.items()}
        return True


def _hidden(arg: object) -> object:
    return _CASE.sub(r"\1…", arg) if isinstance(arg, str) else arg
