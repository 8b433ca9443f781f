"""The process's Prometheus metrics, in their own registry, served over HTTP when asked for.

RPC metrics carry the long-established names of go-grpc-prometheus / go-grpc-middleware
(`grpc_server_started_total`, `grpc_server_handled_total`, `grpc_server_handling_seconds`, ...):
the dashboards and alert rules operators already have read them as they are. The official
`prometheus_client` records them; it costs about a microsecond per observation, well inside the 5 %
budget (docs/benchmarks.md), and brings the standard process collector.

Every label value is bounded: a method of the served protos, a status code, a documented
`ErrorInfo.reason`, a background task's name. Never a user, an email, a token or a request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
disable_created_metrics()  # no `_created` series beside each counter: half the series, nothing lost

# Around a 200 ms objective: fine steps below it, a few above to see how far a miss went.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SIZE_BUCKETS = (32, 128, 512, 2048, 8192, 32768, 131072, 524288, 1048576, 4194304)
RPC = ("grpc_type", "grpc_service", "grpc_method")



class Metrics:
    """One per process (tests build one per server). Counting is always on; `serve` exposes it."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)

        # The gRPC server metrics, as go-grpc-prometheus names them.
        self.rpc_started = Counter("grpc_server_started", "RPCs started on the server.", RPC, registry=registry)
        self.rpc_handled = Counter("grpc_server_handled", "RPCs completed on the server, whatever their outcome.",
                                   (*RPC, "grpc_code"), registry=registry)
        self.rpc_seconds = Histogram("grpc_server_handling_seconds",
                                     "Time the server took to handle an RPC, from its start to its status.", RPC,
                                     buckets=LATENCY_BUCKETS, registry=registry)
        self.messages_received = Counter("grpc_server_msg_received", "Messages received from callers.", RPC,
                                         registry=registry)
        self.messages_sent = Counter("grpc_server_msg_sent", "Messages sent to callers.", RPC, registry=registry)
        self.received_bytes = Histogram("grpc_server_msg_received_bytes", "Size of each message received, in bytes.",
                                        RPC, buckets=SIZE_BUCKETS, registry=registry)
        self.sent_bytes = Histogram("grpc_server_msg_sent_bytes", "Size of each message sent, in bytes.", RPC,
                                    buckets=SIZE_BUCKETS, registry=registry)

        # What explains Foothills' own failures.
        self.rpc_failures = Counter(
            "foothills_rpc_failures", "RPCs that failed, by the ErrorInfo.reason they answered (a booking "
            "refused for SLOT_UNAVAILABLE, a call refused for SERVER_OVERLOADED or CALL_TIMEOUT, ...).",
            (*RPC, "grpc_code", "reason"), registry=registry)
        self.rpc_in_flight = Gauge("foothills_rpc_in_flight",
                                   "Unary calls being served now (FOOTHILLS_MAX_IN_FLIGHT bounds them).",
                                   registry=registry)
        self.pool_size = Gauge("foothills_db_pool_size", "Connections the database pool may hold.",
                               registry=registry)
        self.pool_in_use = Gauge("foothills_db_pool_in_use", "Pool connections checked out now.", registry=registry)
        self.pool_wait = Histogram("foothills_db_pool_wait_seconds",
                                   "Time a transaction waited for a pool connection (opening one included).",
                                   buckets=WAIT_BUCKETS, registry=registry)
        self.transactions = Counter(
            "foothills_db_transactions", "Transactions by kind (write, read) and outcome: ok, refused (a "
            "constraint answered the caller), conflict (still losing a race after every retry), failed.",
            ("kind", "outcome"), registry=registry)
        self.transaction_retries = Counter(
            "foothills_db_transaction_retries",
            "Transactions run again after a serialization failure, a deadlock or a restart the work asked for.",
            ("cause",), registry=registry)
        self.mail_sent = Counter("foothills_outbox_sent", "Mail this process delivered.", registry=registry)
        self.mail_failed = Counter("foothills_outbox_failed_attempts",
                                   "Deliveries that failed and will be retried.", registry=registry)
        self.mail_abandoned = Counter("foothills_outbox_abandoned",
                                      "Mail given up (refused for good, or too old to matter).", registry=registry)
        self.task_runs = Counter("foothills_background_runs", "Runs of a background task.", ("task",),
                                 registry=registry)
        self.task_failures = Counter("foothills_background_failures", "Runs of a background task that failed.",
                                     ("task",), registry=registry)
        self.task_last_success = Gauge("foothills_background_last_success_timestamp_seconds",
                                       "When a background task last ran to the end (Unix time).", ("task",),
                                       registry=registry)
        self.health = Gauge("foothills_health_serving",
                            "1 while the health service answers SERVING for this gRPC service, else 0.",
                            ("service",), registry=registry)

    def watch(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """`gauge` reads `read()` at each scrape (a value the process already keeps)."""
        gauge.set_function(read)

    def watch_outbox(self, backlog: Callable[[], Awaitable[tuple[int, float]]],
                     loop: asyncio.AbstractEventLoop) -> None:
        """The outbox's backlog (unsent mail, age of the oldest), read from the database at each scrape."""
        self.registry.register(_Backlog(backlog, loop))

    def serve(self, listen: str) -> Callable[[], None]:
        """Serves the text format on HOST:PORT (port 0: any free one); returns the stop function."""
        host, _, port = listen.rpartition(":")
        server, thread = start_http_server(int(port), host.strip("[]"), registry=self.registry)
        self.port = server.server_port

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join()
        return stop


class _Backlog(Collector):
    """Asks the process's event loop for the outbox's backlog: a scrape runs in the HTTP server's thread."""

    TIMEOUT_SECONDS = 2.0

    def __init__(self, backlog: Callable[[], Awaitable[tuple[int, float]]], loop: asyncio.AbstractEventLoop) -> None:
        self._backlog = backlog
        self._loop = loop

    def describe(self) -> list[Metric]:
        return []  # not collected at registration: the loop may not be running yet

    def collect(self) -> Iterator[Metric]:
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is self._loop:
                return  # collected on the loop itself, which cannot also run the query it would wait for

        async def read() -> tuple[int, float]:
            return await self._backlog()
        try:
            pending, oldest = asyncio.run_coroutine_threadsafe(read(), self._loop).result(self.TIMEOUT_SECONDS)
        except Exception:  # a database away: the scrape still answers, without these two
            log.warning("cannot read the outbox's backlog for a scrape", exc_info=True)
            return
        yield GaugeMetricFamily("foothills_outbox_pending", "Unsent, not abandoned mail in the whole outbox.",
                                value=pending)
        yield GaugeMetricFamily("foothills_outbox_oldest_unsent_age_seconds",
                                "Age of the oldest unsent mail in the whole outbox; 0 when it is empty.", value=oldest)
