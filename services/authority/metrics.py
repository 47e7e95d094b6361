"""The authority's Prometheus metrics (names per docs/live.md).

DNS query counts are plain integers kept by the answer cache and read at
scrape time (a labelled prometheus_client counter costs more per query than
answering it).
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from services.core.invariants import Violation

from .dnsserver import QUEUE_WAIT_BUCKETS

BATCHES = Counter("racelab_authority_batches", "Change batches by zone and result (committed, rejected, failed)",
                  ["zone", "result"])
BATCH_DURATION = Histogram("racelab_authority_batch_duration_seconds",
                           "Time to answer a change batch, lock wait and log sync included",
                           buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
WAL_SYNC = Histogram("racelab_authority_wal_sync_seconds", "Time to write and sync one group of log records",
                     buckets=(.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1))
SNAPSHOTS = Counter("racelab_authority_snapshots", "Zone snapshots written (after which the log is emptied)")
ENDPOINT_GENERATION = Gauge("racelab_authority_endpoint_generation",
                            "Generation of the tree the endpoint's alias points at; "
                            "-1 when that tree is missing, 0 before any tree was activated", ["endpoint"])
ENDPOINT_ADDRESSES = Gauge("racelab_authority_endpoint_addresses",
                           "Distinct addresses the endpoint can answer with now (0: it answers empty)",
                           ["endpoint", "qtype"])
ZONE_VERSION = Gauge("racelab_authority_zone_version", "Version of the hosted zone (one per committed batch)",
                     ["zone"])
ZONE_RECORD_SETS = Gauge("racelab_authority_zone_record_sets", "Record sets in the hosted zone", ["zone"])
REBUILD_SECONDS = Histogram("racelab_authority_answer_rebuild_seconds",
                            "Time to re-encode a zone's answers after a batch",
                            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1))
LOOP_LAG = Histogram("racelab_authority_event_loop_lag_seconds",
                     "How late the authority's event loop woke for a 50 ms timer: what a DNS query "
                     "arriving then waited before it was read",
                     buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
LOOP_STALLS = Counter("racelab_authority_event_loop_stalls",
                      "Wake-ups of the 50 ms loop timer later than `over` seconds", ["over"])
STALL_THRESHOLDS = (0.1, 0.5)


def observe_loop_lag(seconds: float) -> None:
    LOOP_LAG.observe(seconds)
    for over in STALL_THRESHOLDS:
        if seconds > over:
            LOOP_STALLS.labels(str(over)).inc()


for _over in STALL_THRESHOLDS:
    LOOP_STALLS.labels(str(_over))
VIOLATIONS = Counter("racelab_invariant_violations", "Invariant violations seen on committed batches",
                     ["violation"])
for _v in Violation:
    VIOLATIONS.labels(_v.value)


class DnsCollector:
    """racelab_dns_queries_total{qtype,rcode}, racelab_dns_malformed_total, ... from an AnswerCache."""

    def __init__(self, cache, server=None):
        self.cache = cache
        self.server = server

    def collect(self):
        queries = CounterMetricFamily("racelab_dns_queries", "DNS queries answered, by query type and rcode",
                                      labels=["qtype", "rcode"])
        for key, n in sorted(self.cache.stats.items()):
            qtype, _, rcode = key.partition("|")
            queries.add_metric([qtype, rcode], n)
        yield queries
        yield CounterMetricFamily("racelab_dns_malformed", "DNS packets that could not be parsed (FORMERR or dropped)",
                                  value=self.cache.malformed)
        yield CounterMetricFamily("racelab_dns_internal_errors", "DNS packets whose handling failed (SERVFAIL or dropped)",
                                  value=self.cache.errors)
        yield GaugeMetricFamily("racelab_dns_answer_entries", "Pre-encoded questions", value=len(self.cache.entries))
        if self.server is not None:
            yield CounterMetricFamily("racelab_dns_tcp_connections", "TCP connections accepted",
                                      value=self.server.tcp_accepted)
            wait = self.server.queue_wait
            if wait.count:
                cumulative, running = [], 0
                for bound, n in zip(QUEUE_WAIT_BUCKETS + (float("inf"),), wait.buckets):
                    running += n
                    cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
                yield HistogramMetricFamily(
                    "racelab_dns_udp_queue_wait_seconds",
                    "How long the oldest UDP query of each wake-up had waited in the socket (kernel arrival "
                    "stamp to read): the authority waiting for a CPU or its event loop busy",
                    buckets=cumulative, sum_value=wait.sum)


def register_dns(cache, server=None) -> DnsCollector:
    collector = DnsCollector(cache, server)
    REGISTRY.register(collector)
    return collector
