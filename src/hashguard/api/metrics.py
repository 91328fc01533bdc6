"""Prometheus metrics: requests and their latency by route, matches by list and signal, the
index's size, age and lag behind the database (versions applied and stored per list, changes
not applied, the oldest one's age), and deliveries (webhook calls and reports: attempts by
outcome, what waits and for how long, what was given up), the decode budget (decodes and
memory in flight, waiting, refused), and the watch for keys changed by other processes. One
registry per app, so several apps in one process stay apart."""

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from hashguard.api.service import Service

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, service: "Service") -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hashguard_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "hashguard_request_seconds", "Time to answer a request", ["route"],
            buckets=_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.matches = Counter(
            "hashguard_matches", "Matches answered", ["list", "signal"], registry=self.registry
        )
        self.queries = Counter(
            "hashguard_match_queries", "Items matched (hashes or media)", registry=self.registry
        )
        self.limited = Counter(
            "hashguard_rate_limited", "Requests refused with 429 by a rate limit, by the scope "
            "past its limit (address: the client's; credential: a case, link or key; server: the "
            "whole server's, whoever asks)",
            ["route", "scope"], registry=self.registry,
        )  # fmt: skip
        self.started = Gauge(
            "hashguard_start_time_seconds", "When the service started (Unix time)",
            registry=self.registry,
        )  # fmt: skip
        self.started.set(time.time())
        self.registry.register(_IndexCollector(service))
        self.registry.register(_DeliveryCollector(service))
        self.registry.register(_DecodeCollector(service))
        self.registry.register(_KeyWatchCollector(service))


class _IndexCollector(Collector):
    """Read at scrape time: entries per signal, list versions, the index's age."""

    def __init__(self, service: "Service") -> None:
        self.service = service

    def collect(self) -> Any:
        matcher = self.service.matcher
        size = GaugeMetricFamily(
            "hashguard_index_entries", "Matchable entries held", labels=["signal"]
        )
        versions = GaugeMetricFamily("hashguard_list_version", "List version the index reflects",
                                     labels=["list"])  # fmt: skip
        if matcher is not None:
            for signal, count in matcher.sizes().items():
                size.add_metric([signal], count)
            for name, version in matcher.versions().items():
                versions.add_metric([name], version)
        readiness = self.service.readiness()
        age = GaugeMetricFamily(
            "hashguard_index_age_seconds", "Seconds since the index last caught up with the lists"
        )
        age.add_metric([], readiness.age if readiness.age is not None else float("nan"))
        ready = GaugeMetricFamily("hashguard_ready", "1 when the index is loaded and current")
        ready.add_metric([], 1.0 if readiness.ready else 0.0)
        heads = GaugeMetricFamily("hashguard_list_database_version",
                                  "List version in the database", labels=["list"])  # fmt: skip
        behind = GaugeMetricFamily("hashguard_list_lag_changes",
                                   "Changes in the database not applied yet",
                                   labels=["list"])  # fmt: skip
        changes = GaugeMetricFamily(
            "hashguard_lag_changes", "Changes in the database not applied yet, all lists"
        )
        seconds = GaugeMetricFamily(
            "hashguard_lag_seconds",
            "Seconds the index has been behind the database, by this replica's clock (0: none)",
        )
        lag = readiness.lag
        if lag is not None:
            for held in lag.lists:
                heads.add_metric([held.name], held.version)
                behind.add_metric([held.name], held.changes)
        changes.add_metric([], float("nan") if lag is None else lag.changes)
        seconds.add_metric([], float("nan") if lag is None else lag.seconds)
        yield from (size, versions, age, ready, heads, behind, changes, seconds)


class _DeliveryCollector(Collector):
    """Read at scrape time from the service's tally: attempts by kind and outcome (since the
    process started), and the backlog the webhook thread last took stock of (each second)."""

    def __init__(self, service: "Service") -> None:
        self.service = service

    def collect(self) -> Any:
        deliveries = self.service.deliveries
        attempts = CounterMetricFamily(
            "hashguard_deliveries", "Delivery attempts (webhook calls, reports) by outcome",
            labels=["kind", "outcome"],
        )  # fmt: skip
        for (kind, outcome), count in sorted(deliveries.attempts.items()):
            attempts.add_metric([kind, outcome], count)
        pending = GaugeMetricFamily(
            "hashguard_deliveries_pending", "Deliveries not made yet, still to be tried",
            labels=["kind"],
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "hashguard_deliveries_oldest_pending_seconds",
            "Age of the oldest pending delivery (0 when none waits)", labels=["kind"],
        )  # fmt: skip
        failed = GaugeMetricFamily(
            "hashguard_deliveries_failed",
            "Deliveries whose every attempt failed (webhook calls given up; reports to send "
            "again)", labels=["kind"],
        )  # fmt: skip
        for kind, backlog in sorted(deliveries.backlog.items()):
            pending.add_metric([kind], backlog.pending)
            oldest.add_metric([kind], backlog.oldest_seconds)
            failed.add_metric([kind], backlog.failed)
        yield from (attempts, pending, oldest, failed)


class _KeyWatchCollector(Collector):
    """Read at scrape time: whether the watch for keys changed by other processes is up (down,
    a key revoked by the CLI stops working within ``key_cache_seconds``, not at once), and
    how many times it went down since the process started."""

    def __init__(self, service: "Service") -> None:
        self.service = service

    def collect(self) -> Any:
        watch = self.service.key_watch
        up = GaugeMetricFamily(
            "hashguard_key_watch_up",
            "1 when the service is told at once of keys changed by another process (the CLI); "
            "0: it learns of them within key_cache_seconds",
        )  # fmt: skip
        up.add_metric([], 1.0 if watch is not None and watch.watching else 0.0)
        lost = CounterMetricFamily(
            "hashguard_key_watch_lost", "Times the watch for changed keys lost its connection"
        )
        lost.add_metric([], watch.lost if watch is not None else 0)
        yield from (up, lost)


class _DecodeCollector(Collector):
    """Read at scrape time from the decode budget: what it holds, what waits, what it let in
    and refused since the process started."""

    def __init__(self, service: "Service") -> None:
        self.service = service

    def collect(self) -> Any:
        load = self.service.decodes.load()
        for name, text, value in (
            ("hashguard_decodes_in_flight", "Uploads being decoded now", load.decodes),
            (
                "hashguard_decode_bytes_in_flight",
                "Memory the decodes now hold (estimated)",
                load.memory,
            ),
            ("hashguard_decodes_waiting", "Uploads waiting for room to be decoded", load.waiting),
        ):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], value)
            yield gauge
        for name, text, value in (
            ("hashguard_decodes_admitted", "Uploads let into the decode budget", load.admitted),
            ("hashguard_decodes_refused", "Uploads refused (503): the budget stayed full",
             load.refused),
        ):  # fmt: skip
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            yield counter


class MetricsMiddleware:
    """Counts and times every request under its route's template (``/v1/lists/{name}``), so
    that list names and hashes in paths never become label values."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or scope.get("route_template", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)
