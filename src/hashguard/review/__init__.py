"""Human review before consequences (floor 3): the services whose uploads are checked,
detections and their review (four eyes per list), actions through the service's webhook, the
undoing of false positives, and plug-in classifiers whose flags only ever reach the queue."""
