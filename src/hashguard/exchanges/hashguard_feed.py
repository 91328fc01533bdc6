"""A list's change feed on another hashguard service (``GET /v1/lists/{name}/changes?since=N``),
read over HTTP for hashguard.lists.mirror."""

from typing import Any

import httpx

from hashguard.lists.mirror import MirrorError
from hashguard.lists.model import Change

_PAGE = 1000


class Feed:
    """A list's change feed on a hashguard service (a hashguard.lists.mirror.ChangeFeed)."""

    def __init__(self, base: str, name: str, key: str, timeout: float = 60.0) -> None:
        self.name = name
        self.client = httpx.Client(
            base_url=base.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )
        self.origin = str(self.client.base_url)

    def _get(self, path: str, **params: Any) -> Any:
        try:
            answer = self.client.get(path, params=params)
        except httpx.HTTPError as error:
            raise MirrorError(f"{self.client.base_url}: {error}") from None
        if answer.status_code != 200:
            raise MirrorError(f"{self.client.base_url}{path}: {answer.status_code} "
                              f"{_message(answer)}")  # fmt: skip
        try:
            return answer.json()
        except ValueError:
            raise MirrorError(f"{self.client.base_url}{path}: the answer is not JSON") from None

    def acknowledge(self, version: int) -> None:
        """Tell the origin the list's ``version`` is applied here (a receipt: a victim's case
        shows how many followers applied a withdrawal). Raises MirrorError if it is refused."""
        path = f"/v1/lists/{self.name}/acknowledgements"
        try:
            answer = self.client.post(path, json={"version": version})
        except httpx.HTTPError as error:
            raise MirrorError(f"{self.client.base_url}: {error}") from None
        if answer.status_code != 200:
            raise MirrorError(f"{self.client.base_url}{path}: {answer.status_code} "
                              f"{_message(answer)}")  # fmt: skip

    def about(self) -> dict[str, Any]:
        document: dict[str, Any] = self._get(f"/v1/lists/{self.name}")
        return document

    def page(self, since: int) -> tuple[int, list[Change]]:
        """The origin's version and its changes after ``since`` (at most a page)."""
        document = self._get(f"/v1/lists/{self.name}/changes", since=since, limit=_PAGE)
        try:
            changes = [Change.from_json(item) for item in document["changes"]]
            return int(document["version"]), changes
        except (KeyError, TypeError, ValueError) as error:
            raise MirrorError(f"{self.name}: a malformed change in the feed ({error})") from None


def _message(answer: httpx.Response) -> str:
    """The error message of a refused request (or the start of its body)."""
    try:
        return str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]
