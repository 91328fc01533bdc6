"""The on-device check: before a file is sent or forwarded, block it if it is known material.

``DeviceChecker.check(media)`` hashes the file here, looks its tags up in the verified release's
filters and returns a Verdict. The verdict stays with the caller: nothing in this package sends
content, hashes or verdicts anywhere. In server-assisted mode the only thing that leaves is one
blinded element per tag (uniformly random group elements that say nothing about the file),
always the same number per check, through the ``Evaluator`` the app gives.
"""

import os
from dataclasses import dataclass
from typing import Final, Protocol

from hashguard.device import oprf
from hashguard.device.messages import Helpline, Referral, referral, warning
from hashguard.device.release import OFFLINE
from hashguard.device.tags import EXACT_KINDS, TagKind, media_tags, offline_key, oprf_key
from hashguard.device.verify import DeviceRelease
from hashguard.errors import Unavailable
from hashguard.media.limits import DEFAULT_LIMITS, Limits

# Server-assisted checks always send this many elements: a file tag, a pixel tag (random when
# the file is not an image), and six segment tags in near-duplicate mode, so the server cannot
# tell images from other files, or which tags were found.
_EXACT_SLOTS: Final = 2
_NEAR_SLOTS: Final = 6


class Evaluator(Protocol):
    """The server half of a VOPRF evaluation (oprf_client.HttpEvaluator, or a test's)."""

    def evaluate(self, elements: list[bytes]) -> tuple[list[bytes], bytes]: ...


class DeviceCheckError(Unavailable):
    """A check that could not be completed (the server's answer did not verify, or it could
    not be reached); the file's status is unknown. The message says why."""


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    reason: str  # "no match", or which tag matched: "match: sha256" ...
    message: str | None  # the warning to show, in the chosen language
    helpline: Helpline | None  # for people worried about their own thoughts or viewing
    support: Helpline | None = None  # for people shown in the images
    note: str | None = None  # e.g. the file was matched on its bytes only


class DeviceChecker:
    def __init__(
        self,
        release: DeviceRelease,
        *,
        language: str = "en",
        country: str = "NL",
        referrals: dict[str, Referral] | None = None,
        evaluator: Evaluator | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        """Raises ReferralError for a language or country without texts or helplines, and
        ValueError when a server-assisted release comes without an evaluator."""
        self.release = release
        self.referral = referral(country, referrals)
        self.message = warning(language, self.referral)
        if release.mode != OFFLINE and evaluator is None:
            raise ValueError("a server-assisted release needs an evaluator (the OPRF server)")
        self.evaluator = evaluator
        self.limits = limits

    def check(self, media: bytes) -> Verdict:
        """The verdict on ``media``. Raises DeviceCheckError when a server-assisted check
        cannot be completed."""
        near = self.release.near is not None
        found, note = media_tags(self.release.category, media, near, self.limits)
        keys = self._keys(found)
        for (kind, _), key in zip(found, keys, strict=True):
            layer = self.release.exact if kind in EXACT_KINDS else self.release.near
            if layer is not None and key in layer:
                return Verdict(
                    True, f"match: {kind.value}", self.message, self.referral.helpline,
                    self.referral.support, note,
                )  # fmt: skip
        return Verdict(False, "no match", None, None, None, note)

    def _keys(self, found: list[tuple[TagKind, bytes]]) -> list[int]:
        if self.release.mode == OFFLINE:
            tag_key = self.release.tag_key
            return [offline_key(tag_key, data) for _, data in found]
        inputs = [data for _, data in found]
        slots = _EXACT_SLOTS + (_NEAR_SLOTS if self.release.near is not None else 0)
        padding = [os.urandom(32) for _ in range(slots - len(inputs))]
        state = oprf.blind(inputs + padding)
        assert self.evaluator is not None
        try:
            evaluated, proof = self.evaluator.evaluate(list(state.elements))
            outputs = oprf.finalize(state, evaluated, proof, self.release.public_key)
        except oprf.OprfError as error:
            raise DeviceCheckError(f"the check could not be completed: {error}") from None
        return [oprf_key(output) for output in outputs[: len(inputs)]]
