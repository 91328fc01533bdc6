"""The OPRF server's answer as the device reads it (``oprf_client.HttpEvaluator``, through
urllib's own opener with only the network replaced), then checked as the device checks it
(``oprf.finalize``: as many evaluations as elements, each an element, the proof against the
release's public key). The input's first byte picks the answer's status (an evaluation, or a
refusal the server sends: 400, 401, 429, 503); the rest is its body."""

import io
import urllib.request
import urllib.response
from email.message import Message
from pathlib import Path
from typing import Any

from hashguard.device import oprf
from hashguard.device.oprf_client import HttpEvaluator

STATUSES = (200, 400, 401, 429, 503)
KEY = oprf.ServerKey.derive(b"fuzz", b"device_oprf_answer")
# Two inputs blinded with fixed scalars: the same elements for every input, so a seed that is
# the server's answer to them verifies.
BLINDED = oprf.blind([b"first", b"second"], [oprf.hash_to_scalar(b"blind-1", b"fuzz"),
                                             oprf.hash_to_scalar(b"blind-2", b"fuzz")])  # fmt: skip


class _Answering(urllib.request.BaseHandler):
    """The network, answering every request with one status and body."""

    handler_order = 100  # before urllib's own HTTP handler

    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body

    def http_open(self, request: urllib.request.Request) -> Any:
        headers = Message()
        headers["Content-Type"] = "application/json"
        answer = urllib.response.addinfourl(
            io.BytesIO(self.body), headers, request.full_url, self.status
        )
        answer.msg = "answer"  # what urllib's error processor names
        return answer


def one(data: bytes, scratch: Path) -> None:
    status = STATUSES[data[0] % len(STATUSES)] if data else 200
    evaluator = HttpEvaluator("http://127.0.0.1:9", "device-token")
    evaluator._opener.add_handler(_Answering(status, data[1:]))
    evaluated, proof = evaluator.evaluate(list(BLINDED.elements))
    oprf.finalize(BLINDED, evaluated, proof, KEY.public)
