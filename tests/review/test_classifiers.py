"""The classifier plug-in: its flags only reach the review queue, and only where the service's
legal profile allows classifiers."""

import pytest
from PIL import Image
from sqlalchemy import Engine

from hashguard.media.synthetic import encode
from hashguard.review.classifiers import FlatImageClassifier, classify
from hashguard.review.detections import Review
from hashguard.review.model import ReviewError, Source, State
from hashguard.review.services import ServiceStore

from support.media import png


def test_classifier_flags_only_reach_the_queue_and_only_where_allowed(engine: Engine) -> None:
    services = ServiceStore(engine)
    review = Review(engine)
    flat = encode(Image.new("L", (64, 64), 128), "PNG")
    with pytest.raises(ReviewError, match="known material only"):
        classify(review, FlatImageClassifier(), services.create("default-profile"), "i-1", flat)
    allowed = services.create("research", legal_profile="csar-council-2025")
    assert classify(review, FlatImageClassifier(), allowed, "i-2", png(3)) is None
    flagged = classify(review, FlatImageClassifier(), allowed, "i-3", flat)
    assert flagged is not None
    assert flagged.source is Source.CLASSIFIER and flagged.state is State.PENDING
    assert flagged.technology == "classifier:demo-flat-image" and not flagged.quarantined
    assert [d.id for d in review.queue()] == [flagged.id]
    with pytest.raises(ReviewError, match="i-4: "):
        classify(review, FlatImageClassifier(), allowed, "i-4", b"not an image")
