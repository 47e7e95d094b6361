#!/usr/bin/env python3
"""Write grafana/dashboards/*.json from the panel lists below; --check fails if the files differ.

Every query also says WHEN it is meant to show data (`when`), which
tests/observability/test_live_prometheus.py checks against a real Prometheus
during a live `racelab run`:

  always            at several moments of the run (23:40, 01:00 and 02:35 PDT)
  race              while enactors race (23:32-23:50 PDT)
  empty             while the regional name answers empty (from the run's summary)
  event:<name>      within seconds of the first such event in the director's log: stale-flip,
                    tree-deleted, phase, operator-action, or a kind with attributes it must
                    have (`event:nlb.failover,action=remove`)
  pdt:HH:MM-HH:MM   at some moment of that stretch of simulated time

`nonzero=True`: a value other than 0 then, not just a series (a counter's rate that is 0
all night says nothing about the collapse it is meant to show).
`cascade=True` marks queries of metrics the cascade (issue 4) adds: the live test
requires them as soon as the run's topology has the cascade's processes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as prom

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "grafana" / "dashboards"

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="racelab-prometheus")  # provisioned: grafana/provisioning
LEGACY = "dynamodb.us-east-1.amazonaws.com"
PDT_OFFSET_SECONDS = 7 * 3600  # the dashboards show UTC; PDT is UTC-7


@dataclass
class Q:
    expr: str
    legend: str = ""
    when: str = "always"
    cascade: bool = False
    exemplar: bool = False
    nonzero: bool = False


Step = tuple[float | None, str]  # (from value, colour) of a threshold step; None: from -infinity
PanelKind = Literal["timeseries", "stat", "state-timeline"]


@dataclass
class Panel:
    title: str
    queries: list[Q]
    width: int = 12
    kind: PanelKind = "timeseries"
    unit: str = ""
    description: str = ""
    bounds: tuple[float, float] | None = None  # the value axis (min, max)
    thresholds: list[Step] = field(default_factory=list)
    value_names: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # value -> (text, colour)
    right_axis: tuple[str, str] | None = None  # (series name regex, unit) drawn on a right-hand axis
    text_mode: str = "value"  # stat panels: what the big text shows (common.BigValueTextMode)
    color_mode: str = "value"  # stat panels: what the colour paints (common.BigValueColorMode)


@dataclass
class Annotation:
    name: str
    expr: str
    title: str
    colour: str
    when: str
    text: str = ""
    tags: str = ""
    cascade: bool = False


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[tuple[int, list[Panel]]]  # (height, panels left to right)
    annotations: list[Annotation]


# ---- pieces every dashboard shares ----

def clock_stat(width: int = 4) -> Panel:
    return Panel("Simulated clock (PDT)", [Q(f"(max(racelab_sim_timestamp_seconds) - {PDT_OFFSET_SECONDS}) * 1000")],
                 width, "stat", "time:HH:mm:ss",
                 "The scenario's simulated time of day in PDT. The time axis is wall-clock UTC: the race runs "
                 "at 40x, the recovery hundreds of times faster. Hover a graph to read the clock at that moment.")


def clock_series(width: int = 24) -> Panel:
    return Panel("Simulated PDT along the wall-clock axis",
                 [Q(f"(max(racelab_sim_timestamp_seconds) - {PDT_OFFSET_SECONDS}) * 1000", "simulated PDT")],
                 width, unit="time:HH:mm",
                 description="Hover any panel (shared crosshair) and read here the simulated time of that moment.")


def phase_stat(width: int = 8) -> Panel:
    return Panel("Incident phase (INCIDENT.md §3)", [Q("max by (phase) (racelab_phase_info) == 1", "{{phase}}")],
                 width, "stat", text_mode="name", color_mode="none")


# Event annotations look back 3 s over a 1 s scrape: a change stays visible for two evaluations, so a
# 1 s query step sees it whatever its phase ([2s] showed it for one, and a step could fall either side).
def changed(metric: str) -> str:
    return f"changes({metric}[3s])"


PHASES = Annotation("Phases", f"max by (phase) ({changed('racelab_phase_info')} > 0) "
                    "and max by (phase) (racelab_phase_info == 1)", "{{phase}}", "blue", "event:phase",
                    tags="phase")
NLB_FAILOVER = Annotation("NLB failover", f"sum by (nlb) ({changed('racelab_nlb_failovers_total')}) > 0",
                          "{{nlb}}: automatic failover took an AZ out of DNS", "red",
                          "event:nlb.failover,action=remove", tags="nlb", cascade=True)
OPERATORS = Annotation("Operators' actions", f"sum by (action) ({changed('racelab_operator_actions_total')}) > 0",
                       "operators: {{action}}", "purple", "event:operator-action", tags="action")


PERCENT = (0.0, 1.0)


def red_below(threshold: float) -> list[Step]:
    return [(None, "red"), (threshold, "green")]


def p99(metric: str, by: str, selector: str = "") -> str:
    return (f"histogram_quantile(0.99, sum by (le{', ' + by if by else ''}) "
            f"(rate({metric}_bucket{selector}[$__rate_interval])))")


# ---- The race ----

RACE = Dashboard(
    "racelab-race", "racelab · The race",
    "DynamoDB's DNS Enactor race of October 2025: read the stale plan being applied (orange marks) and the "
    "active tree being deleted (red marks) on one time axis.",
    rows=[
        (4, [clock_stat(),
             phase_stat(),
             Panel("Regional name: A addresses",
                   [Q(f'max(racelab_authority_endpoint_addresses{{endpoint="{LEGACY}", qtype="A"}})')],
                   4, "stat", description=f"{LEGACY}: 0 means it answers NOERROR with no records (NODATA).",
                   thresholds=red_below(1)),
             Panel("Stale flips", [Q("sum(racelab_enactor_stale_flips_total)")], 4, "stat",
                   description="Flips that replaced an endpoint's plan with an older one."),
             Panel("Active trees deleted",
                   [Q('sum(racelab_invariant_violations_total{violation="active-tree-deleted"})')], 4, "stat",
                   thresholds=[(None, "green"), (1, "red")])]),
        (4, [clock_series()]),
        (8, [Panel("Active generation per endpoint (authority)",
                   [Q("max by (endpoint) (racelab_authority_endpoint_generation)", "{{endpoint}}")],
                   description="The generation whose tree each endpoint's alias points at. A step down is a stale "
                   "plan applied; -1: the alias points at a tree that no longer exists."),
             Panel("Addresses each endpoint answers with",
                   [Q("max by (endpoint, qtype) (racelab_authority_endpoint_addresses)", "{{endpoint}} {{qtype}}")],
                   description="Distinct addresses in the endpoint's answer now; 0 after activation is the empty "
                   "window (NODATA).")]),
        (8, [Panel("Enactors: plan in progress and applied, beside the planner's newest",
                   [Q("max by (enactor) (racelab_enactor_plan_generation > 0)", "{{enactor}} applying"),
                    Q("max by (enactor) (racelab_enactor_applied_generation)", "{{enactor}} applied"),
                    Q("max(racelab_planner_generation)", "planner: newest plan")],
                   description="An enactor whose plan in progress falls far below the planner's newest is working "
                   "on a stale plan: its freshness check passed long ago."),
             Panel("Generations behind the planner's newest plan",
                   [Q("enactor:racelab_enactor_plan_lag:generations", "{{enactor}} (plan in progress)", when="race"),
                    Q("endpoint:racelab_authority_endpoint_lag:generations", "{{endpoint}} (active)", when="race")],
                   unit="none", description="How stale each enactor's plan in progress is (no line while idle), "
                   "and each endpoint's active tree (no line while it is missing). A stale plan applied: an "
                   "endpoint's line jumps up to the stale enactor's.")]),
        (5, [Panel("Enactor phase: idle, applying, clean-up, backing off",
                   [Q("enactor:racelab_enactor_phase:code", "{{enactor}}")], 24, "state-timeline",
                   value_names={0: ("idle", "green"), 1: ("applying", "blue"), 2: ("clean-up", "purple"),
                                3: ("backing off", "orange")})]),
        (8, [Panel("Lock contention",
                   [Q("sum by (enactor, outcome) (rate(racelab_enactor_lock_contention_total[$__rate_interval]))",
                      "{{enactor}} {{outcome}}")], 6, unit="ops",
                   description="busy: the zone's lock record was held by another enactor; lost: another enactor "
                   "wrote the zone between this one's read and its batch."),
             Panel("Mean back-off sleep (simulated seconds)",
                   [Q("sum by (enactor) (rate(racelab_enactor_backoff_seconds_sum[$__rate_interval])) / "
                      "sum by (enactor) (rate(racelab_enactor_backoff_seconds_count[$__rate_interval]))",
                      "{{enactor}}", when="race")], 6, unit="s"),
             Panel("Batch failures: flips not committed, per endpoint",
                   [Q('sum by (endpoint) (endpoint_step_result:racelab_enactor_batches:rate10s'
                      '{step="flip", result!="committed"})', "{{endpoint}}")], 6, unit="ops",
                   description="Flips that lost the lock or were rejected. After the active tree is deleted every "
                   "flip of that endpoint is rejected: the rollback record points at nothing."),
             Panel("Endpoints given up by enactors",
                   [Q("sum by (endpoint) (increase(racelab_enactor_endpoints_abandoned_total[1m]))",
                      "{{endpoint}}")], 6, unit="none",
                   description="An enactor gives an endpoint up for the run after repeated failed batches.")]),
        (8, [Panel("The empty window: the regional name and its clients",
                   [Q(f'max by (qtype) (racelab_authority_endpoint_addresses{{endpoint="{LEGACY}"}})',
                      "addresses ({{qtype}})", when="empty"),
                    Q('sum by (client) (rate(racelab_client_requests_total{outcome="dns_nodata"}'
                      '[$__rate_interval]))', "{{client}} clients: NODATA answers/s", when="empty")], 9,
                   right_axis=(".*NODATA.*", "ops")),
             Panel("Simulated time the regional name answered empty",
                   [Q(f'sum_over_time((max(endpoint_qtype:racelab_authority_endpoint_empty:bool{{endpoint="{LEGACY}",'
                      f' qtype="A"}}) * max(racelab_sim_speed))[$__range:1s])', when="empty")],
                   3, "stat", "s", "Over the dashboard's time range, in simulated time."),
             Panel("DynamoDB clients' success ratio (10 s)",
                   [Q("client:racelab_client_requests:success_ratio_rate10s", "{{client}}")], 6, unit="percentunit",
                   bounds=PERCENT),
             Panel("Clients' DNS cache",
                   [Q("sum by (state) (racelab_dns_cache_entries)", "{{state}}")], 6, unit="none",
                   description="negative: NODATA answers the clients keep for the SOA's TTL (15 simulated "
                   "minutes), even after the records come back.")]),
        (8, [Panel("Change batches at the authority, by zone and result",
                   [Q("zone_result:racelab_authority_batches:rate10s", "{{zone}} {{result}}")], 8, unit="ops",
                   description="rejected: the batch's lock record did not match, or a change was invalid (an "
                   "alias to a tree that no longer exists)."),
             Panel("Change batch latency at the authority (p99)",
                   [Q(p99("racelab_authority_batch_duration_seconds", ""), "p99", exemplar=True)], 8, unit="s",
                   description="Exemplars (dots) lead to the authority.apply_batch trace."),
             Panel("DynamoDB client request latency (p99)",
                   [Q(p99("racelab_client_request_duration_seconds", "client"), "{{client}} p99", exemplar=True)],
                   8, unit="s", description="Exemplars lead to the client.request trace: DNS lookup and call.")]),
    ],
    annotations=[
        Annotation("Stale plan applied", "sum by (enactor, endpoint) "
                   f"({changed('racelab_enactor_stale_flips_total')}) > 0",
                   "{{enactor}} applied a stale plan to {{endpoint}}", "orange", "event:stale-flip",
                   tags="enactor,endpoint"),
        Annotation("Active tree deleted", f"max by (endpoint) ({changed('racelab_authority_endpoint_generation')} > 0 "
                   "and racelab_authority_endpoint_generation == -1)",
                   "clean-up deleted the active tree of {{endpoint}}", "red", "event:tree-deleted", tags="endpoint"),
        Annotation("Endpoint answering empty", "max by (endpoint, qtype) "
                   "(endpoint_qtype:racelab_authority_endpoint_empty:bool) == 1",
                   "{{endpoint}} answers no {{qtype}} record", "dark-red", "empty", tags="endpoint"),
        PHASES, OPERATORS,
    ])


# ---- The cascade ----

CASCADE = Dashboard(
    "racelab-cascade", "racelab · The cascade",
    "Every service's success rate on one time axis, with the incident's phases and the operators' actions.",
    rows=[
        (4, [clock_stat(), phase_stat(12),
             Panel("Operators' actions so far", [Q("sum(racelab_operator_actions_total)")], 4, "stat"),
             Panel("Simulated speed", [Q("max(racelab_sim_speed)")], 4, "stat", "x",
                   "Simulated seconds per wall second right now.")]),
        (10, [Panel("Success rate of every service",
                    [Q("client:racelab_client_requests:success_ratio_rate10s", "DynamoDB ({{client}} clients)"),
                     Q('sum(rate(racelab_dynamodb_requests_total{result="ok"}[$__rate_interval])) / '
                       'sum(rate(racelab_dynamodb_requests_total[$__rate_interval]))', "DynamoDB LB fleet (served)",
                       "race"),
                     Q("dependent:racelab_dependent_requests:success_ratio_rate10s", "{{dependent}}",
                       cascade=True)],
                    24, unit="percentunit", bounds=PERCENT,
                    description="Share of requests that succeeded over the last 10 s, per service.")]),
        (8, [Panel("DynamoDB clients: failures by kind",
                   [Q('client_outcome:racelab_client_requests:rate10s{outcome!="ok"}', "{{client}} {{outcome}}")],
                   unit="ops"),
             Panel("Dependents: failures by kind",
                   [Q('sum by (dependent, result) (rate(racelab_dependent_requests_total{result!="ok"}'
                      '[$__rate_interval]))', "{{dependent}} {{result}}", cascade=True)], unit="ops")]),
        (8, [Panel("DynamoDB client latency (p99)",
                   [Q(p99("racelab_client_request_duration_seconds", "client"), "{{client}} p99", exemplar=True)],
                   unit="s"),
             Panel("Dependent request latency (p99)",
                   [Q(p99("racelab_dependent_request_duration_seconds", "dependent"), "{{dependent}} p99",
                      cascade=True, exemplar=True)], unit="s")]),
        (8, [Panel("DWFM: droplets holding a lease, and lease work timing out",
                   [Q('sum(racelab_dwfm_droplets{state="leased"})', "droplets leased", cascade=True),
                    Q("sum(rate(racelab_dwfm_leases_established_total[$__rate_interval]))", "leases established/s",
                      "event:dwfm.leases,state=expiring", cascade=True),
                    Q("sum(rate(racelab_dwfm_work_timeouts_total[$__rate_interval]))", "lease work timed out/s",
                      "event:dwfm.collapse,state=collapsed", cascade=True, nonzero=True)],
                   8, unit="none", right_axis=(".*/s", "ops"),
                   description="Leases expire while state checks cannot reach DynamoDB. After the restore DWFM "
                   "re-leases the whole fleet at once: work times out and is queued again, no lease is "
                   "established (congestive collapse) until the operators throttle it and restart hosts."),
             Panel("RunInstances by result",
                   [Q("sum by (result) (rate(racelab_dwfm_run_instances_total[$__rate_interval]))", "{{result}}",
                      "event:dwfm.leases,state=none", cascade=True, nonzero=True)], 8, unit="ops",
                   description="insufficient_capacity: no droplet with a lease; request_limit_exceeded: the "
                   "operators' launch throttle."),
             Panel("Network Manager: backlog and instances without network",
                   [Q("sum by (kind) (racelab_netmgr_backlog)", "{{kind}} waiting",
                      "event:netmgr.backlog,state=behind", cascade=True, nonzero=True),
                    Q("sum(increase(racelab_netmgr_instances_without_network_total[1m]))",
                      "booted without network (1 m)", cascade=True)], 8, unit="none",
                   description="Propagations waiting; instances that finished booting before their network "
                   "state propagated.")]),
        (8, [Panel("NLB target flaps (healthy <-> unhealthy)",
                   [Q("sum by (nlb) (rate(racelab_nlb_target_transitions_total[$__rate_interval]))", "{{nlb}}",
                      "event:nlb.flapping,state=flapping", cascade=True, nonzero=True)], 8, unit="ops",
                   description="Targets without network pass some checks and fail others: each flip costs the "
                   "health checker work, and its checks run late."),
             Panel("NLB: AZs in service and automatic failovers",
                   [Q("max by (nlb) (racelab_nlb_zones_in_service)", "{{nlb}} AZs in service", cascade=True),
                    Q("sum by (nlb) (increase(racelab_nlb_failovers_total[1m]))", "{{nlb}} failovers (1 m)",
                      "event:nlb.failover,action=remove", cascade=True, nonzero=True)], 8, unit="none",
                   description="Late health checks make a zone look sick: automatic failover takes it out of "
                   "DNS, healthy capacity with it."),
             Panel("Dependents' success ratio (10 s)",
                   [Q("dependent:racelab_dependent_requests:success_ratio_rate10s", "{{dependent}}",
                      cascade=True)], 8, unit="percentunit", bounds=PERCENT)]),
        (6, [Panel("Operators' actions", [Q("max by (action) (racelab_operator_actions_total)", "{{action}}")],
                   unit="none"),
             Panel("Notable events recorded by the director",
                   [Q("sum by (kind) (increase(racelab_events_total[1m]))", "{{kind}}")], unit="none")]),
    ],
    annotations=[PHASES, OPERATORS,
                 Annotation("Regional name empty", f'max(endpoint_qtype:racelab_authority_endpoint_empty:bool'
                            f'{{endpoint="{LEGACY}", qtype="A"}}) == 1', f"{LEGACY} answers empty", "dark-red",
                            "empty"),
                 Annotation("Alerts firing", 'ALERTS{alertstate="firing"}', "{{alertname}}", "red",
                            "event:tree-deleted", tags="alertname"),
                 NLB_FAILOVER])


# ---- EC2 recovery ----

EC2 = Dashboard(
    "racelab-ec2", "racelab · EC2 recovery",
    "Droplet leases and DWFM's congestive collapse, Network Manager's propagation backlog, NLB health checks "
    "and the capacity automatic failover removed.",
    rows=[
        (4, [clock_stat(), phase_stat(),
             Panel("Droplets holding a lease",
                   [Q('sum(racelab_dwfm_droplets{state="leased"}) / sum(racelab_dwfm_droplets)', cascade=True)],
                   4, "stat", "percentunit", thresholds=red_below(0.8)),
             Panel("NLB automatic failover", [Q("max(racelab_nlb_automatic_failover_enabled)", cascade=True)], 4,
                   "stat", value_names={0: ("disabled", None), 1: ("enabled", None)}),
             Panel("EC2 throttle",
                   [Q("max(racelab_dwfm_throttle_requests_per_second)", "lease work", cascade=True),
                    Q("max(racelab_dwfm_throttle_launches_per_second)", "launches", cascade=True)], 4, "stat",
                   "reqps", "Lease work each DWFM host admits and launches admitted per simulated second under "
                   "the operators' throttle; 0: no throttle.", text_mode="value_and_name")]),
        (8, [Panel("Droplet leases", [Q("sum by (state) (racelab_dwfm_droplets)", "{{state}}", cascade=True)],
                   8, unit="none"),
             Panel("DWFM queue depth and work in flight",
                   [Q("sum(racelab_dwfm_queue_depth)", "queue depth", cascade=True),
                    Q("sum(racelab_dwfm_work_in_flight)", "in flight", cascade=True)], 8, unit="none"),
             Panel("DWFM lease work: established, expired, timed out",
                   [Q("sum(rate(racelab_dwfm_leases_established_total[$__rate_interval]))", "leases established",
                      cascade=True),
                    Q("sum(rate(racelab_dwfm_leases_expired_total[$__rate_interval]))", "leases expired",
                      cascade=True),
                    Q("sum(rate(racelab_dwfm_work_timeouts_total[$__rate_interval]))", "work timed out",
                      "event:dwfm.collapse,state=collapsed", cascade=True, nonzero=True)], 8, unit="ops",
                   description="More work timing out than leases established: congestive collapse.")]),
        (8, [Panel("DWFM state checks by result",
                   [Q("sum by (result) (rate(racelab_dwfm_state_checks_total[$__rate_interval]))", "{{result}}",
                      cascade=True)], 8, unit="ops"),
             Panel("RunInstances by result",
                   [Q("sum by (result) (rate(racelab_dwfm_run_instances_total[$__rate_interval]))", "{{result}}",
                      cascade=True)], 8, unit="ops"),
             Panel("Network Manager propagation backlog",
                   [Q("sum by (kind) (racelab_netmgr_backlog)", "{{kind}}", "event:netmgr.backlog,state=behind",
                      cascade=True, nonzero=True),
                    Q("max(racelab_netmgr_oldest_pending_age_seconds)", "oldest pending (simulated s)",
                      cascade=True),
                    Q("max(racelab_netmgr_delay_seconds)", "a new instance would wait (simulated s)",
                      "event:netmgr.backlog,state=behind", cascade=True, nonzero=True)],
                   8, unit="none", right_axis=("(oldest|a new).*", "s"),
                   description="A new instance waiting longer than it takes to boot launches without network.")]),
        (8, [Panel("NLB targets by state",
                   [Q("sum by (nlb, state) (racelab_nlb_targets)", "{{nlb}} {{state}}", cascade=True)], 8,
                   unit="none"),
             Panel("NLB healthy capacity",
                   [Q("min by (nlb) (racelab_nlb_healthy_capacity_ratio)", "{{nlb}}", cascade=True)], 8,
                   unit="percentunit", bounds=PERCENT,
                   description="Healthy in-service capacity over registered capacity."),
             Panel("NLB AZs in service and failovers",
                   [Q("max by (nlb) (racelab_nlb_zones_in_service)", "{{nlb}} AZs in service", cascade=True),
                    Q("sum by (nlb) (increase(racelab_nlb_failovers_total[1m]))", "{{nlb}} failovers (1 m)",
                      "event:nlb.failover,action=remove", cascade=True, nonzero=True)], 8, unit="none")]),
        (8, [Panel("NLB health checks by result",
                   [Q("sum by (nlb, result) (rate(racelab_nlb_health_checks_total[$__rate_interval]))",
                      "{{nlb}} {{result}}", cascade=True)], 8, unit="ops"),
             Panel("NLB target flaps (healthy <-> unhealthy)",
                   [Q("sum by (nlb) (rate(racelab_nlb_target_transitions_total[$__rate_interval]))", "{{nlb}}",
                      "event:nlb.flapping,state=flapping", cascade=True, nonzero=True)], 8, unit="ops"),
             Panel("Health-check delay and instances without network",
                   [Q("max(racelab_nlb_health_check_delay_seconds)", "health-check delay (simulated s)",
                      cascade=True),
                    Q("sum(increase(racelab_netmgr_instances_without_network_total[1m]))",
                      "instances booted without network (1 m)", cascade=True)], 8, unit="s",
                   right_axis=("instances.*", "none"))]),
    ],
    annotations=[PHASES, OPERATORS,
                 NLB_FAILOVER])


# ---- gRPC RED ----

GRPC = Dashboard(
    "racelab-grpc", "racelab · gRPC services (RED)",
    "Rate, errors and duration of every racelab gRPC server.",
    rows=[
        (4, [clock_stat(), phase_stat(20)]),
        (8, [Panel("Requests per second by service",
                   [Q("job_grpc_service:racelab_grpc_server_handled:rate10s", "{{job}} {{grpc_service}}")],
                   unit="reqps"),
             Panel("Error ratio by service",
                   [Q("job_grpc_service:racelab_grpc_server_errors:ratio_rate10s", "{{job}} {{grpc_service}}")],
                   unit="percentunit", bounds=PERCENT,
                   description="Every status code but OK and CANCELLED. The authority's FAILED_PRECONDITION "
                   "answers are rejected change batches.")]),
        (8, [Panel("Duration p99 by method (unary)",
                   [Q(p99("racelab_grpc_server_handling_seconds", "job, grpc_service, grpc_method",
                          '{grpc_type="unary"}'), "{{job}} {{grpc_method}}", exemplar=True)], unit="s",
                   description="Exemplars lead to the server span of one call."),
             Panel("Non-OK responses by method and code",
                   [Q('sum by (job, grpc_method, grpc_code) (rate(racelab_grpc_server_handled_total'
                      '{grpc_code!="OK"}[$__rate_interval]))', "{{job}} {{grpc_method}} {{grpc_code}}")],
                   unit="reqps")]),
        (8, [Panel("Requests per second by method",
                   [Q("sum by (job, grpc_method) (rate(racelab_grpc_server_handled_total[$__rate_interval]))",
                      "{{job}} {{grpc_method}}")], unit="reqps"),
             Panel("Duration p50 by method (unary)",
                   [Q("histogram_quantile(0.5, sum by (le, job, grpc_method) (rate("
                      'racelab_grpc_server_handling_seconds_bucket{grpc_type="unary"}[$__rate_interval])))',
                      "{{job}} {{grpc_method}}")], unit="s")]),
        (8, [Panel("Client call duration p99 by method (rpc.client.call.duration)",
                   [Q(p99("rpc_client_call_duration_seconds", "job, rpc_method"), "{{job}} {{rpc_method}}",
                      exemplar=True)], unit="s",
                   description="OpenTelemetry's rpc.client.call.duration (semantic conventions 1.40+): what the "
                   "caller waited, the network and the server's queue included. Exemplars lead to the client span."),
             Panel("DNS lookup duration p99 by name and error (dns.lookup.duration)",
                   [Q(p99("dns_lookup_duration_seconds", "dns_question_name, error_type"),
                      "{{dns_question_name}} {{error_type}}", exemplar=True)], unit="s",
                   description="The clients' lookups, cache hits included; error_type NODATA while the regional "
                   "name answers empty.")]),
        (8, [Panel("DNS at the authority: how long a query waited before it was read (p99)",
                   [Q(p99("racelab_dns_udp_queue_wait_seconds", ""), "UDP socket queue (oldest query of a wake-up)"),
                    Q(p99("racelab_authority_event_loop_lag_seconds", ""), "event loop lateness (50 ms timer)")],
                   unit="s",
                   description="The kernel stamps each query as it arrives; the authority compares the stamp with "
                   "when it read the query. Queue wait well above the loop's lateness is the process waiting "
                   "for a CPU, not its loop busy with a batch."),
             Panel("DNS queries per second at the authority, by rcode",
                   [Q("sum by (rcode) (rate(racelab_dns_queries_total[$__rate_interval]))", "{{rcode}}")],
                   unit="reqps")]),
    ],
    annotations=[PHASES, OPERATORS])

DASHBOARDS = (RACE, CASCADE, EC2, GRPC)


# ---- Grafana's schema, through grafana-foundation-sdk ----
#
# Every panel, option and enum below goes through the SDK's typed builders for Grafana 11.6
# (pyproject pins the build): an option Grafana does not know is an AttributeError, a value it
# does not know a ValueError, both when this script runs -- not a panel that silently renders wrong.

KINDS = {"timeseries": timeseries, "stat": stat, "state-timeline": statetimeline}


def _target(q: Q, ref: str) -> prometheus.Dataquery:
    return (prometheus.Dataquery().ref_id(ref).datasource(DATASOURCE).expr(q.expr).legend_format(q.legend)
            .range().exemplar(q.exemplar).editor_mode(prom.QueryEditorMode.CODE))


def _panel(panel: Panel, panel_id: int, x: int, y: int, height: int):
    built = (KINDS[panel.kind].Panel().id(panel_id).title(panel.title).description(panel.description)
             .datasource(DATASOURCE).grid_pos(dm.GridPos(h=height, w=panel.width, x=x, y=y))
             .targets([_target(q, chr(ord("A") + i)) for i, q in enumerate(panel.queries)]))
    if panel.unit:
        built.unit(panel.unit)
    if panel.bounds:
        built.min(panel.bounds[0]).max(panel.bounds[1])
    if panel.thresholds:
        built.thresholds(dashboard.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
            [dm.Threshold(value=value, color=colour) for value, colour in panel.thresholds]))
    if panel.value_names:
        built.mappings([dm.ValueMap(options={
            str(value): dm.ValueMappingResult(text=text, color=colour, index=i)
            for i, (value, (text, colour)) in enumerate(sorted(panel.value_names.items()))})])
    if panel.right_axis:
        regex, unit = panel.right_axis
        built.override_by_regexp(regex, [dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                                         dm.DynamicConfigValue(id_val="unit", value=unit)])
    if panel.kind == "stat":
        built.text_mode(cm.BigValueTextMode(panel.text_mode)).color_mode(cm.BigValueColorMode(panel.color_mode))
        built.graph_mode(cm.BigValueGraphMode.NONE).justify_mode(cm.BigValueJustifyMode.AUTO)
        built.reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    else:
        built.legend(common.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                     .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
        built.tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE))
    if panel.kind == "state-timeline":
        built.show_value(cm.VisibilityMode.NEVER).merge_values(True)
    return built


@dataclass
class _PrometheusAnnotation:
    """The Prometheus datasource's annotation fields, which the SDK's AnnotationQuery (typed for every
    datasource at once) has no builder for: they are added to its JSON here, from these typed fields."""
    step: str
    titleFormat: str
    textFormat: str
    tagKeys: str
    useValueForTime: bool = False


def _annotation(a: Annotation) -> tuple[dashboard.AnnotationQuery, _PrometheusAnnotation]:
    built = (dashboard.AnnotationQuery().name(a.name).datasource(DATASOURCE).enable(True).hide(False)
             .icon_color(a.colour).expr(a.expr))
    return built, _PrometheusAnnotation(step="1s", titleFormat=a.title, textFormat=a.text, tagKeys=a.tags)


def dashboard_json(d: Dashboard) -> dict:
    built = (dashboard.Dashboard(d.title).uid(d.uid).description(d.description).tags(["racelab"])
             .timezone("utc").editable().tooltip(dm.DashboardCursorSync.CROSSHAIR).refresh("5s")
             .time("now-5m", "now").version(1))
    y, next_id = 0, 1
    for height, row in d.rows:
        x = 0
        for panel in row:
            built.with_panel(_panel(panel, next_id, x, y, height))
            next_id, x = next_id + 1, x + panel.width
        if x > 24:
            raise ValueError(f"{d.uid}: a row of {x} columns (Grafana has 24)")
        y += height
    for other in DASHBOARDS:
        if other is not d:
            built.link(dashboard.DashboardLink(other.title).type(dm.DashboardLinkType.LINK).url(f"/d/{other.uid}")
                       .keep_time(True).include_vars(False).target_blank(False).icon("dashboard")
                       .tooltip(other.description))
    built.annotation(dashboard.AnnotationQuery().name("Annotations & Alerts").built_in(1).type("dashboard")
                     .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --")).enable(True).hide(True)
                     .icon_color("rgba(0, 211, 255, 1)"))
    extras = []
    for a in d.annotations:
        annotation, extra = _annotation(a)
        built.annotation(annotation)
        extras.append(extra)
    model = json.loads(JSONEncoder(sort_keys=False, indent=None).encode(built.build()))
    # Grafana's built-in annotation comes first; ours follow in order.
    for query, extra in zip(model["annotations"]["list"][-len(extras):], extras, strict=True):
        query.update(asdict(extra))
    return model


def rendered() -> dict[Path, str]:
    return {OUT / f"{d.uid}.json": json.dumps(dashboard_json(d), indent=2) + "\n" for d in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if grafana/dashboards/ is not current")
    args = parser.parse_args(argv)
    files = rendered()
    if args.check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        extra = sorted(set(OUT.glob("*.json")) - set(files))
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        for path in extra:
            print(f"not generated: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale or extra:
            print("run: python tools/gen_dashboards.py", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
