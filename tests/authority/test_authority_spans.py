"""The batch span: attributes, tree.deleted and alias.flipped events, invariant findings (in process)."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.runtime.events import EventPublisher
from services.authority.state import AuthorityState, initial_zones
from services.authority.store import Store
from harness.authority import fleet_planner
from services.core import tree
from services.core.plans import LEGACY_ENDPOINT
from services.core.zone import BatchRejected
from services.runtime.clock import SimClock
from services.runtime.scenario import load_scenario


def test_batch_spans(tmp_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    scenario = load_scenario("oct-2025")

    async def scenario_run():
        store = Store(tmp_path)
        zones, _ = store.recover(lambda present: initial_zones(scenario, present))
        store.start()
        state = AuthorityState(zones, scenario, SimClock(scenario.schedule, scenario.epoch, 0.0), store,
                               provider.get_tracer("t"), EventPublisher(None, "authority"))
        planner = fleet_planner()
        p110, p111 = planner.next_plan(0.0), planner.next_plan(1.0)
        for plan, prev in ((p110, None), (p111, p110)):
            ep = plan.for_endpoint(LEGACY_ENDPOINT)
            await state.apply(LEGACY_ENDPOINT, tree.install_changes(ep, plan.generation, 5))
            await state.apply(LEGACY_ENDPOINT, tree.activation_changes(
                LEGACY_ENDPOINT, False, tree.tree_root(ep), tree.tree_root(prev.for_endpoint(LEGACY_ENDPOINT))
                if prev else None))
        # the stale flip back to 110, then 110's clean-up: the outage
        old = p110.for_endpoint(LEGACY_ENDPOINT)
        await state.apply(LEGACY_ENDPOINT, tree.activation_changes(LEGACY_ENDPOINT, False, tree.tree_root(old),
                                                                   tree.tree_root(p111.for_endpoint(LEGACY_ENDPOINT))))
        snap = state.snapshot(LEGACY_ENDPOINT)
        await state.apply(LEGACY_ENDPOINT, tree.deletion_changes(snap, [tree.tree_root(old)]))
        try:
            await state.apply(LEGACY_ENDPOINT, [])
        except BatchRejected:
            pass
        await store.close()
        return old

    old = asyncio.run(scenario_run())
    spans = [s for s in exporter.get_finished_spans() if s.name == "authority.apply_batch"]
    assert len(spans) == 7  # install+flip for 110 and 111, the flip back, the clean-up, the empty batch
    flip_back, cleanup, rejected = spans[4], spans[5], spans[6]
    assert rejected.attributes["racelab.batch.result"] == "rejected"
    assert rejected.attributes["racelab.batch.error_codes"] == ("INVALID",)
    assert flip_back.attributes["racelab.endpoint.generation.before"] == 111
    assert flip_back.attributes["racelab.endpoint.generation.after"] == 110
    names = [e.name for e in flip_back.events]
    assert "alias.flipped" in names
    assert any(e.attributes.get("racelab.violation") == "generation-went-back" for e in flip_back.events)
    assert cleanup.attributes["racelab.batch.result"] == "committed"
    assert cleanup.attributes["racelab.endpoint.generation.after"] == -1
    deleted = [e for e in cleanup.events if e.name == "tree.deleted"]
    assert [(e.attributes["racelab.tree.id"], e.attributes["racelab.plan.generation"]) for e in deleted] == \
        [(old.tree_id, 110)]
    violations = {e.attributes["racelab.violation"] for e in cleanup.events if e.name == "invariant.violated"}
    assert violations == {"active-tree-deleted", "endpoint-empty"}
