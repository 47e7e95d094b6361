"""The authority's zones and the path of a change batch.

A batch is prepared by the core (HostedZone.prepare: a new snapshot, the zone
untouched), made durable in the write-ahead log, and only then published: the DNS answers and
ListResourceRecordSets never show a batch that is not acknowledged-or-about-to-be.
Batches to one zone are serialized by that zone's lock; zones are independent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from opentelemetry import trace

from services.core import tree
from services.core.invariants import Finding, InvariantChecker, Violation
from services.core.nlbdns import NLB_ZONE
from services.core.plans import ACCOUNT_ZONE, LEGACY_ENDPOINT, Endpoint, account_ids
from services.core.records import Change, RecordSet, RRType, normalize_name, record_sets_alike
from services.core.resolve import resolve
from services.core.zone import BatchRejected, HostedZone, ZoneSet, ZoneSnapshot, apex_records
from services.runtime.clock import SimClock
from services.runtime.scenario import Scenario
from services.runtime.telemetry import trace_id_hex

from . import metrics
from .answers import AnswerCache
from services.runtime.events import EventPublisher
from .store import Store, WalRecord

log = logging.getLogger(__name__)


class UnknownZone(KeyError):
    pass


def initial_zones(scenario: Scenario, present: frozenset[str] = frozenset()) -> list[HostedZone]:
    """One hosted zone per endpoint, the account zone whose wildcard CNAMEs the legacy name, and the
    NLBs' zone when the scenario has NLBs (their records are written by the nlb service). Zones in
    `present` (already recovered) are not built: the account zone can hold a million record sets."""
    dns = scenario.dns

    def apex(origin: str) -> list[RecordSet]:
        return apex_records(origin, soa_ttl=dns.soa_ttl_seconds, negative_ttl=dns.negative_ttl_seconds)

    zones = {ep.zone: HostedZone(ep.zone, apex(ep.zone)) for ep in scenario.endpoints if ep.zone not in present}
    taken = present | {ep.zone for ep in scenario.endpoints}  # made above, or recovered
    if ACCOUNT_ZONE not in taken:
        if dns.account_endpoints:  # one CNAME per account, as us-east-1 holds them
            accounts = record_sets_alike([f"{a}.{ACCOUNT_ZONE}" for a in account_ids(scenario.workload.accounts,
                                                                                      dns.account_endpoints)],
                                         RRType.CNAME, dns.record_ttl_seconds, (LEGACY_ENDPOINT,))
        else:
            accounts = [RecordSet(f"*.{ACCOUNT_ZONE}", RRType.CNAME, dns.record_ttl_seconds, (LEGACY_ENDPOINT,))]
        zones[ACCOUNT_ZONE] = HostedZone(ACCOUNT_ZONE, apex(ACCOUNT_ZONE) + accounts)
    if scenario.nlb.names and NLB_ZONE not in taken:
        zones[NLB_ZONE] = HostedZone(NLB_ZONE, apex(NLB_ZONE))
    return list(zones.values())


@dataclass
class Committed:
    change_id: str
    version: int


def _tree_label(root: str | None) -> str:
    return root.split(".", 1)[0] if root else ""


class AuthorityState:
    def __init__(self, zones: dict[str, HostedZone], scenario: Scenario, clock: SimClock, store: Store,
                 tracer: trace.Tracer, events: EventPublisher):
        self.zones = ZoneSet()
        self.zones.zones.update(zones)
        self.scenario = scenario
        self.clock = clock
        self.store = store
        self.tracer = tracer
        self.events = events
        self.locks = {origin: asyncio.Lock() for origin in zones}
        self.endpoints: dict[str, Endpoint] = {ep.zone: ep for ep in scenario.endpoints}
        self.checker = InvariantChecker()
        now = clock.now()
        for origin, ep in self.endpoints.items():
            if origin in zones:  # prime: remember where each endpoint stands after a restart
                snap = zones[origin].snapshot
                self.checker.observe(ep.name, ep.dual_stack, snap, snap, now)
        self.answers = AnswerCache(self.zones)  # empty: answered on demand until warm() has encoded them
        for origin in zones:
            self._update_gauges(origin)

    def snapshot(self, zone: str) -> ZoneSnapshot:
        hz = self.zones.zones.get(normalize_name(zone))
        if hz is None:
            raise UnknownZone(zone)
        return hz.snapshot

    async def apply(self, zone_name: str, changes: list[Change], comment: str = "") -> Committed:
        origin = normalize_name(zone_name)
        if origin not in self.zones.zones:
            raise UnknownZone(zone_name)
        started = time.perf_counter()
        with self.tracer.start_as_current_span("authority.apply_batch") as span:
            span.set_attribute("racelab.zone", origin)
            span.set_attribute("racelab.batch.changes", len(changes))
            if comment:
                span.set_attribute("racelab.batch.comment", comment)
            result = "failed"
            try:
                # Once started, a batch runs to the end under its zone's lock even if the caller
                # goes away: what reaches the log must also be published.
                committed = await asyncio.shield(asyncio.ensure_future(
                    self._apply_locked(span, origin, changes, comment)))
                result = "committed"
                return committed
            except BatchRejected:
                result = "rejected"
                raise
            finally:
                metrics.BATCHES.labels(origin, result).inc()
                metrics.BATCH_DURATION.observe(time.perf_counter() - started,
                                               exemplar={"trace_id": trace_id_hex(span)})

    async def _apply_locked(self, span: trace.Span, origin: str, changes: list[Change], comment: str) -> Committed:
        async with self.locks[origin]:
            # Route 53 works through a zone's changes one batch at a time, and a big
            # batch (a whole tree) takes longer than a small one (an alias flip).
            await self.clock.sleep(len(changes) * self.scenario.dns.change_seconds_per_change)
            zone = self.zones.zones[origin]
            before = zone.snapshot
            try:
                after = zone.prepare(changes)  # O(changes); the zone is untouched until published
            except BatchRejected as rejected:
                span.set_attribute("racelab.batch.result", "rejected")
                span.set_attribute("racelab.batch.error_codes", sorted(rejected.codes))
                span.set_attribute("racelab.batch.error_indexes", sorted({e.index for e in rejected.errors}))
                span.set_attribute("error.type", "BatchRejected")
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(rejected)))
                raise
            change_id = "C" + uuid.uuid4().hex[:20].upper()
            changed = {c.record_set.name for c in changes}
            if any(c.record_set.rtype is RRType.SOA for c in changes):
                changed = None  # the SOA is in every negative answer
            # The answers the batch makes are encoded a slice at a time while its log record is made durable:
            # the DNS keeps answering between slices, from the zone as it still is. This zone's answers
            # only: none lean on another's.
            encoding = asyncio.ensure_future(self.answers.prepare(origin, after, changed))
            try:
                await self.store.commit(WalRecord(origin, after.version, change_id, changes, comment), after)
            except BaseException:
                encoding.cancel()
                raise
            try:
                pending = await encoding
            except Exception:
                log.exception("encoding the answers of %s version %d", origin, after.version)
                pending = None
            zone.publish(after)  # published: DNS and List see it from here on, its answers with it
            span.set_attribute("racelab.batch.result", "committed")
            span.set_attribute("racelab.zone.version", after.version)
            span.set_attribute("racelab.change.id", change_id)
            try:  # the batch is committed whatever happens below
                if pending is not None:
                    self.answers.install(pending)
                    metrics.REBUILD_SECONDS.observe(pending.seconds)
                else:
                    self.answers.rebuild(origin, changed)
                self._observe(span, origin, before, after)
            except Exception:
                log.exception("after committing %s version %d", origin, after.version)
            return Committed(change_id, after.version)

    def _observe(self, span: trace.Span, origin: str, before: ZoneSnapshot, after: ZoneSnapshot) -> None:
        """Span details, gauges and invariants for one committed batch."""
        trees_before, trees_after = tree.trees_in(before), tree.trees_in(after)
        for root, generation in sorted(trees_before.items(), key=lambda kv: kv[1]):
            if root not in trees_after:
                span.add_event("tree.deleted", {"racelab.tree.id": _tree_label(root),
                                                "racelab.plan.generation": generation})
        ep = self.endpoints.get(origin)
        if ep is not None:
            gen_before = tree.active_generation(before, ep.name)
            gen_after = tree.active_generation(after, ep.name)
            span.set_attribute("racelab.endpoint", ep.name)
            span.set_attribute("racelab.endpoint.generation.before", -1 if gen_before is None else gen_before)
            span.set_attribute("racelab.endpoint.generation.after", -1 if gen_after is None else gen_after)
            for name in (ep.name, tree.rollback_name(ep.name)):
                old, new = tree.active_tree(before, name), tree.active_tree(after, name)
                if old != new:
                    span.add_event("alias.flipped", {
                        "racelab.endpoint": ep.name, "racelab.alias": name,
                        "racelab.tree.id": _tree_label(new), "racelab.tree.previous_id": _tree_label(old),
                        "racelab.plan.generation": _gen(after, new),
                        "racelab.plan.previous_generation": _gen(before, old)})
            now = self.clock.now()
            for finding in self.checker.observe(ep.name, ep.dual_stack, before, after, now):
                self._violation(span, origin, after, finding)
        self._update_gauges(origin)

    def _violation(self, span: trace.Span, origin: str, after: ZoneSnapshot, finding: Finding) -> None:
        metrics.VIOLATIONS.labels(finding.violation.value).inc()
        span.add_event("invariant.violated", {"racelab.violation": finding.violation.value,
                                              "racelab.endpoint": finding.endpoint, "message": finding.detail})
        if finding.violation is Violation.ENDPOINT_EMPTY:
            message = f"{finding.endpoint} now answers NODATA for every address type"
        else:
            message = f"{finding.endpoint}: {finding.detail}"
        log.warning("invariant violated: %s", message)
        generation = tree.active_generation(after, finding.endpoint)
        self.events.publish("authority.violation", message, {
            "violation": finding.violation.value, "endpoint": finding.endpoint, "zone": origin,
            "zone_version": str(after.version),
            "generation": "" if generation is None else str(generation)}, finding.at)

    def _update_gauges(self, origin: str) -> None:
        snap = self.zones.zones[origin].snapshot
        metrics.ZONE_VERSION.labels(origin).set(snap.version)
        metrics.ZONE_RECORD_SETS.labels(origin).set(len(snap.records))
        ep = self.endpoints.get(origin)
        if ep is None:
            return
        root = tree.active_tree(snap, ep.name)
        generation = tree.tree_generation(snap, root)
        metrics.ENDPOINT_GENERATION.labels(ep.name).set(0 if root is None else -1 if generation is None
                                                        else generation)
        for rtype in tree.address_types(ep.dual_stack):
            addresses = set()
            for p, response in resolve(self.zones, ep.name, rtype).choices:
                if p > 0:
                    addresses.update(response.addresses(rtype))
            metrics.ENDPOINT_ADDRESSES.labels(ep.name, rtype.value).set(len(addresses))


def _gen(snap: ZoneSnapshot, root: str | None) -> int:
    generation = tree.tree_generation(snap, root)
    return -1 if generation is None else generation
