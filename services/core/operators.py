"""The operators' actions of INCIDENT.md §3: their names, their parameters and the defaults, once.

The scenario parser validates a scenario's actions with these, the director performs them on the
live services, and the cascade's twin applies them to the core objects: each default below is the
only copy of that number.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Iterable, Mapping, Protocol


class Action(StrEnum):
    """What people did by hand that night (INCIDENT.md §3), with the time they did it in 2025."""

    MITIGATE_INTERNAL = "mitigate-internal"  # 01:15 internal services (STS, IAM) reconnected another way
    RESTORE_DNS = "restore-dns"  # 02:25 a healthy tree installed by hand
    THROTTLE_DWFM = "throttle-dwfm"  # 04:14 incoming work throttled
    RESTART_DWFM_HOSTS = "restart-dwfm-hosts"  # 04:14 DWFM hosts restarted
    RESTART_SQS_POLLER = "restart-sqs-poller"  # 04:40 Lambda's SQS poller restored by hand
    DISABLE_DNS_AUTOMATION = "disable-dns-automation"  # 05:38 DNS frozen
    ENABLE_DNS_AUTOMATION = "enable-dns-automation"
    DISABLE_NLB_FAILOVER = "disable-nlb-failover"  # 09:36
    ENABLE_NLB_FAILOVER = "enable-nlb-failover"  # 14:09
    RELAX_EC2_THROTTLE = "relax-ec2-throttle"  # 11:23 throttles relaxed step by step


class ActionError(ValueError):
    """An unknown action, or parameters it does not take; the message says which and why."""


@dataclass(frozen=True)
class NoParams:
    pass


TOOLING = ("mended", "as-built")


@dataclass(frozen=True)
class RestoreDns:
    endpoint: str | None = None  # one endpoint only; None: every endpoint of the newest plan
    # "as-built": the operators' tooling as it was on the night, assuming a working enactor - it points
    # the rollback record at the tree that was active, as an enactor does, and fails as they do (INCIDENT.md
    # §2: "their tooling assumed a working enactor, so they first had to mend the tooling").
    tooling: str = "mended"

    @property
    def mended(self) -> bool:
        return self.tooling == "mended"


@dataclass(frozen=True)
class ThrottleDwfm:
    admit_per_host_second: float = 0.11  # lease work items each DWFM host admits per simulated second
    launches_per_second: float = 0.5  # RunInstances admitted per simulated second
    propagations_per_second: float | None = None  # also throttle Network Manager; None: leave it


@dataclass(frozen=True)
class RestartDwfmHosts:
    count: int | None = None  # how many hosts; None (and no `hosts`): every host
    hosts: tuple[str, ...] = ()  # which hosts, by id


@dataclass(frozen=True)
class RelaxEc2Throttle:
    over_seconds: float = 8820.0  # 11:23 to 13:50 PDT: the launch throttle relaxed step by step
    to_launches_per_second: float = 2.0  # then lifted altogether


Params = NoParams | RestoreDns | ThrottleDwfm | RestartDwfmHosts | RelaxEc2Throttle
PARAMS: dict[Action, type] = {
    Action.RESTORE_DNS: RestoreDns, Action.THROTTLE_DWFM: ThrottleDwfm,
    Action.RESTART_DWFM_HOSTS: RestartDwfmHosts, Action.RELAX_EC2_THROTTLE: RelaxEc2Throttle,
}


class OperatorLike(Protocol):
    at: float
    action: "Action"
    params: object


def repair_time(operators: Iterable[OperatorLike]) -> float | None:
    """When the operators' repair took effect: the first restore-dns with mended tooling (an attempt
    with the tooling as built fails and changes nothing)."""
    times = [o.at for o in operators if o.action == Action.RESTORE_DNS
             and (not isinstance(o.params, RestoreDns) or o.params.mended)]
    return min(times, default=None)


def parse_action(name: str) -> Action:
    """"restore_dns" and "restore-dns" name the same action."""
    normal = str(name).strip().lower().replace("_", "-")
    try:
        return Action(normal)
    except ValueError:
        raise ActionError(f"unknown action {name!r}; known: {', '.join(sorted(a.value for a in Action))}") from None


def parse_params(action: Action, raw: Mapping[str, object] | None) -> Params:
    """Typed parameters from a scenario's or a request's strings; numbers must be positive."""
    kind = PARAMS.get(action, NoParams)
    raw = dict(raw or {})
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        takes = ", ".join(known) or "no parameters"
        raise ActionError(f"{action}: params.{unknown[0]}: not a parameter of {action} (it takes {takes})")
    values = {}
    for name, value in raw.items():
        if name == "hosts":
            values[name] = tuple(h.strip() for h in str(value).split(",") if h.strip())
        elif name == "endpoint":
            values[name] = str(value).rstrip(".").lower()
        elif name == "tooling":
            if str(value) not in TOOLING:
                raise ActionError(f"{action}: params.tooling: one of {', '.join(TOOLING)}, got {value!r}")
            values[name] = str(value)
        else:
            values[name] = _positive(action, name, value, integer=name == "count")
    return kind(**values)


def _positive(action: Action, name: str, value: object, integer: bool) -> float | int:
    try:
        number = int(str(value)) if integer else float(str(value))
    except ValueError:
        raise ActionError(f"{action}: params.{name}: not a {'whole ' if integer else ''}number: {value!r}") from None
    if not number > 0:
        raise ActionError(f"{action}: params.{name}: must be positive, got {value!r}")
    return number

