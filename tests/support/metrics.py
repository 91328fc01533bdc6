"""Reading what ``/metrics`` shows (Prometheus's text format)."""

from prometheus_client.parser import text_string_to_metric_families


def sample(shown: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` with exactly ``labels`` in the metrics text ``shown``,
    or None when there is none."""
    for family in text_string_to_metric_families(shown):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None
