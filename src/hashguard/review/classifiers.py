"""Classifiers of unknown material, as plug-ins: their flags go to the review queue, always, and
never act on their own (no quarantine, no confirmation without a person), and only where the
service's legal profile accepts detection of new material (the default profile does not).

hashguard ships no model of abuse material, ever. ``FlatImageClassifier`` is a benign demo for
tests: it flags images with almost no detail (a blank upload), which says nothing about abuse.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hashguard.media.errors import MediaError
from hashguard.media.image import LumaImage, decode_luma
from hashguard.review.detections import Review
from hashguard.review.model import Detection, ReviewError, Source
from hashguard.review.services import Service


@dataclass(frozen=True)
class Flag:
    label: str  # what the classifier saw, in its own words
    score: float  # 0..1


class Classifier(Protocol):
    name: str

    def classify(self, image: LumaImage) -> Flag | None:
        """A flag for the reviewers, or None."""


class FlatImageClassifier:
    """The demo: flags images whose luma barely varies. Benign by construction."""

    name = "demo-flat-image"

    def __init__(self, spread: float = 2.0) -> None:
        self.spread = spread

    def classify(self, image: LumaImage) -> Flag | None:
        pixels = np.asarray(image.pixels, dtype=np.float64)
        deviation = float(pixels.std())
        if deviation > self.spread:
            return None
        return Flag("almost no detail", round(1.0 - deviation / max(self.spread, 1e-9), 3))


def classify(
    review: Review,
    classifier: Classifier,
    service: Service,
    content_ref: str,
    media: bytes,
    account_ref: str = "",
    subject: Mapping[str, Any] | None = None,
) -> Detection | None:
    """Run ``classifier`` on an upload (decoded in memory, never stored); a flag becomes a
    pending detection, nothing more. Raises ReviewError for media that cannot be decoded or a
    profile that accepts known material only."""
    try:
        image = decode_luma(media)
    except MediaError as error:
        raise ReviewError(f"{content_ref}: {error}") from None
    flag = classifier.classify(image)
    if flag is None:
        return None
    details = {**dict(subject or {}), "classifier": {"label": flag.label, "score": flag.score}}
    technology = f"classifier:{classifier.name}"
    return review.open(service, content_ref, [], account_ref=account_ref, subject=details,
                       source=Source.CLASSIFIER, technology=technology)  # fmt: skip
