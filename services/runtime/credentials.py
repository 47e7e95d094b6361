"""Credentials for one run: a token per identity and the ACL that names them.

    python -m services.runtime.credentials DIR [--scenario NAME|PATH]

writes DIR/<identity>.token (mode 0600, one random token each) and DIR/acl.yaml
(every identity's token SHA-256 and what it may call), as a Kubernetes Secret
would mount them. Every process of a run has its instance name as identity.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import yaml

from services.core.nlbdns import NLB_ZONE
from services.runtime.auth import token_sha256
from services.runtime.scenario import Scenario, ScenarioError, load_scenario
from services.runtime.service import OneLineParser

ENACTORS = ("enactor-az1", "enactor-az2", "enactor-az3")
PUBLISH_EVENT = "racelab.v1.Director/PublishEvent"
READ_PLANS = ["racelab.v1.Planner/GetLatestPlan", "racelab.v1.Planner/GetPlan", "racelab.v1.Planner/ListPlans",
              "racelab.v1.Planner/WatchPlans"]
CHANGE_ZONES = ["racelab.v1.RouteControl/ChangeResourceRecordSets", "racelab.v1.RouteControl/ListResourceRecordSets",
                "racelab.v1.RouteControl/ListHostedZones"]


def run_grants(scenario: Scenario) -> dict[str, dict[str, list[str]]]:
    """Identity -> {methods, zones}: least privilege for each process of a run."""
    endpoint_zones = sorted({ep.zone for ep in scenario.endpoints})
    grants = {
        "authority": {"methods": [PUBLISH_EVENT]},
        "planner": {"methods": [PUBLISH_EVENT]},
        # The operators' tools: every control API, every zone.
        "director": {"methods": ["racelab.v1.Planner/*", "racelab.v1.RouteControl/*",
                                 "racelab.v1.DropletWorkflow/*", "racelab.v1.NetworkManager/*",
                                 "racelab.v1.LoadBalancing/*", "racelab.v1.Workload/*"],
                     "zones": ["*"]},
        "dynamodb": {"methods": ["racelab.v1.Planner/RegisterLoadBalancer", "racelab.v1.Planner/ReportHealth"]},
        # The dependents: DynamoDB's clients, EC2 launches and terminations, an app behind an NLB (and
        # its ECS tasks' target health).
        "workload": {"methods": ["racelab.v1.DynamoDB/GetItem", "racelab.v1.DynamoDB/PutItem",
                                 "racelab.v1.DropletWorkflow/RunInstances", "racelab.v1.DropletWorkflow/DescribeFleet",
                                 "racelab.v1.DropletWorkflow/TerminateInstances", "racelab.v1.LoadBalancing/Connect",
                                 "racelab.v1.LoadBalancing/RegisterTarget", "racelab.v1.LoadBalancing/DeregisterTarget",
                                 "racelab.v1.LoadBalancing/DescribeTargetHealth", PUBLISH_EVENT]},
        # Leases in DynamoDB (each host round reads its lease items with Query and writes them with
        # BatchWriteItem); launches and terminations to Network Manager.
        # With queue-throttle, launches are admitted by Network Manager's queue (DescribeBacklog).
        "dwfm": {"methods": ["racelab.v1.DynamoDB/Query", "racelab.v1.DynamoDB/BatchWriteItem",
                             "racelab.v1.NetworkManager/PropagateInstance",
                             "racelab.v1.NetworkManager/DescribeBacklog", PUBLISH_EVENT]},
        "netmgr": {"methods": [PUBLISH_EVENT]},
        # Health checks ask Network Manager which targets have network; failover rewrites the NLBs' names.
        "nlb": {"methods": ["racelab.v1.RouteControl/ChangeResourceRecordSets",
                            "racelab.v1.NetworkManager/GetInstancesNetwork", PUBLISH_EVENT],
                "zones": [NLB_ZONE]},
        # `racelab run` itself: it follows the director's event stream.
        "lab": {"methods": ["racelab.v1.Director/WatchEvents", "racelab.v1.Director/GetStatus"]},
    }
    for enactor in ENACTORS:
        grants[enactor] = {"methods": READ_PLANS + CHANGE_ZONES + [PUBLISH_EVENT], "zones": endpoint_zones}
    return grants


def write_credentials(directory: str | os.PathLike[str], scenario: Scenario,
                      extra: dict[str, dict[str, list[str]]] | None = None) -> Path:
    """Fresh tokens for every identity of a run (plus `extra` ones); returns the directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    identities = {}
    for name, grant in sorted({**run_grants(scenario), **(extra or {})}.items()):
        token = secrets.token_urlsafe(32)
        path = out / f"{name}.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.chmod(path, 0o600)  # also when the file was there before
        identities[name] = {"token_sha256": token_sha256(token), **grant}
    header = "# racelab ACL: each identity's token SHA-256 (never the token) and what it may call.\n"
    (out / "acl.yaml").write_text(header + yaml.safe_dump({"identities": identities}, sort_keys=False))
    return out


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m services.runtime.credentials",
                                description="Write a token per identity of a run and the ACL naming them.")
    p.add_argument("directory", help="where to write <identity>.token files and acl.yaml")
    p.add_argument("--scenario", default="oct-2025", help="scenario whose endpoint zones the enactors manage")
    args = p.parse_args(argv)
    try:
        out = write_credentials(args.directory, load_scenario(args.scenario))
    except ScenarioError as exc:
        print(f"credentials: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"credentials: error: cannot write {args.directory}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(list(out.glob('*.token')))} tokens and acl.yaml to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
