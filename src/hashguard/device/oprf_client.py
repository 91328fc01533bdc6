"""The device's only network code: ask the OPRF server to evaluate blinded elements.

What is sent: the client token (for the server's rate limit) and blinded elements, which are
uniformly random group elements whatever the file. What comes back: the evaluated elements and
one proof, which ``oprf.finalize`` checks against the public key in the logged release, so a
server using another key (a list of its own for this user) is caught. Nothing about the file,
its tags or the verdict is ever sent.
"""

import base64
import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

from hashguard.device import oprf

PATH: Final = "/v1/device/evaluate"
_TIMEOUT: Final = 10.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The token is for the server named, never for a host it redirects to."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpEvaluator:
    def __init__(self, server: str, token: str, timeout: float = _TIMEOUT) -> None:
        """Raises OprfError for a server address that is not https (plain http only to this
        machine: the token would travel in the clear)."""
        try:
            address = urllib.parse.urlsplit(server)
            local = _loopback(address.hostname or "")
        except ValueError:
            raise oprf.OprfError(f"{server!r}: not a URL") from None
        if address.scheme != "https" and not (address.scheme == "http" and local):
            raise oprf.OprfError(
                f"{server}: the OPRF server must be an https:// address (http only on this machine)"
            )
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            raise oprf.OprfError("the device token: expected printable characters, no spaces")
        self.url = server.rstrip("/") + PATH
        self.token = token
        self.timeout = timeout
        # No proxy for this machine: the token would go to whatever $http_proxy names.
        handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
        if local:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def evaluate(self, elements: list[bytes]) -> tuple[list[bytes], bytes]:
        """The server's evaluations and proof. Raises OprfError when the server refuses, cannot
        be reached, or answers something that is not an evaluation."""
        body = json.dumps({"elements": [base64.b64encode(e).decode() for e in elements]})
        try:
            request = urllib.request.Request(
                self.url,
                data=body.encode(),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                },
                method="POST",
            )
            with self._opener.open(request, timeout=self.timeout) as response:
                answer = json.loads(response.read(1 << 20))
        except urllib.error.HTTPError as error:
            raise oprf.OprfError(f"the OPRF server refused: {_reason(error)}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise oprf.OprfError(f"the OPRF server cannot be reached: {error!r}") from None
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise oprf.OprfError("the OPRF server's answer is not JSON") from None
        try:
            evaluated = [base64.b64decode(e, validate=True) for e in answer["evaluated"]]
            proof = base64.b64decode(answer["proof"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise oprf.OprfError("the OPRF server's answer is not an evaluation") from None
        return evaluated, proof


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reason(error: urllib.error.HTTPError) -> str:
    try:
        detail = str(json.loads(error.read(4096))["error"]["message"])[:200]
    except (ValueError, RecursionError, KeyError, TypeError, OSError):
        detail = ""
    return f"HTTP {error.code}" + (f": {detail}" if detail else "")
