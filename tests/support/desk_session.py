"""Signing an httpx client in to the desks, as a browser on the same machine does.

The session cookie is Secure. Browsers keep it over plain http from 127.0.0.1 and localhost
(the test servers' addresses); Python's cookie jar, which httpx uses, sends a Secure cookie
over https only. So the cookie is kept again without its Secure flag, for this client alone."""

import httpx

COOKIE = "hg_desk"


def sign_in(client: httpx.Client, key: str, path: str = "/desk/login") -> httpx.Response:
    """Post ``key`` to the sign-in form at ``path``; the answer (303 when signed in), the
    session cookie kept in ``client`` for its next requests."""
    answer = client.post(path, data={"key": key})
    session = answer.cookies.get(COOKIE)
    if session is not None:
        client.cookies.delete(COOKIE)  # the Secure one, never sent over http
        client.cookies.set(COOKIE, session)
    return answer
