"""The device's only network code: ask the OPRF server to evaluate blinded elements.

What is sent: the client token (for the server's rate limit) and blinded elements, which are
uniformly random group elements whatever the file. What comes back: the evaluated elements and
one proof, which ``oprf.finalize`` checks against the public key in the logged release, so a
server using another key (a list of its own for this user) is caught. Nothing about the file,
its tags or the verdict is ever sent.
"""

import base64
import json
import urllib.error
import urllib.request
from typing import Final

from hashguard.device import oprf

PATH: Final = "/v1/device/evaluate"
_TIMEOUT: Final = 10.0


class HttpEvaluator:
    def __init__(self, server: str, token: str, timeout: float = _TIMEOUT) -> None:
        self.url = server.rstrip("/") + PATH
        self.token = token
        self.timeout = timeout

    def evaluate(self, elements: list[bytes]) -> tuple[list[bytes], bytes]:
        """The server's evaluations and proof. Raises OprfError when the server refuses, cannot
        be reached, or answers something that is not an evaluation."""
        body = json.dumps({"elements": [base64.b64encode(e).decode() for e in elements]})
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read(1 << 20))
        except urllib.error.HTTPError as error:
            raise oprf.OprfError(f"the OPRF server refused: {_reason(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            raise oprf.OprfError(f"the OPRF server cannot be reached: {error}") from None
        except ValueError:
            raise oprf.OprfError("the OPRF server's answer is not JSON") from None
        try:
            evaluated = [base64.b64decode(e, validate=True) for e in answer["evaluated"]]
            proof = base64.b64decode(answer["proof"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise oprf.OprfError("the OPRF server's answer is not an evaluation") from None
        return evaluated, proof


def _reason(error: urllib.error.HTTPError) -> str:
    try:
        detail = str(json.loads(error.read(4096))["error"]["message"])
    except (ValueError, KeyError, TypeError, OSError):
        detail = ""
    return f"HTTP {error.code}" + (f": {detail}" if detail else "")
