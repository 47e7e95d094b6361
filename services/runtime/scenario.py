"""Scenarios: the conditions and the operators' actions of a run, from YAML.

A scenario never says what happens - only the conditions under which the
system runs (who is slow, how fast plans churn, how big the fleet is) and what
the operators do and when. Times of day are PDT, as in INCIDENT.md; durations
are simulated seconds. Unknown keys are errors, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from services.core.dependents import DependentsConfig
from services.core.enactor import EnactorConfig
from services.core.healthcheck import NlbConfig
from services.core.leases import DwfmConfig
from services.core.propagation import PropagationConfig
from services.core.fixes import Fix, UnknownFix, parse_fixes
from services.core.operators import Action, ActionError, NoParams, Params, parse_action, parse_params
from services.core.plans import DEFAULT_ENDPOINTS, Endpoint
from services.runtime.clock import Schedule, ScheduleError, parse_pdt


_REQUIRED = object()


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the file and the field."""


@dataclass(frozen=True)
class Condition:
    """Every control-API call `enactor` makes between `start` and `end` takes `delay_seconds` longer."""

    enactor: str
    start: float
    end: float
    delay_seconds: tuple[float, float]


def condition_delay(conditions: "tuple[Condition, ...] | list[Condition]", who: str, now: float,
                    rng: random.Random) -> float:
    """The extra seconds one control-API call (a zone read or a change batch) by `who` takes at `now`:
    the live enactor driver and the twin both ask here, drawing from the enactor's own stream."""
    return sum(rng.uniform(*c.delay_seconds) for c in conditions if c.enactor == who and c.start <= now < c.end)


@dataclass(frozen=True)
class OperatorAction:
    at: float  # simulated seconds since the epoch
    action: Action
    params: Params = NoParams()


@dataclass(frozen=True)
class Fitted:
    """A figure of INCIDENT.md that knobs were chosen to land: the fidelity table calls its row
    fitted, not predicted. Knobs are dotted settings ("nlb.failover_after_seconds"), a top-level
    section ("schedule", "conditions"), or an operator's action ("operators.throttle-dwfm", with
    a parameter after another dot); a figure fitted only by operators' actions is arithmetic on
    their input."""

    figure: str  # a row of services/lab/report/fidelity.py, by its key
    knobs: tuple[str, ...]
    how: str

    @property
    def operators_only(self) -> bool:
        return all(k.startswith("operators.") for k in self.knobs)


@dataclass(frozen=True)
class DnsSettings:
    record_ttl_seconds: int = 5
    soa_ttl_seconds: int = 900  # Route 53 default; caps negative caching at 15 minutes
    negative_ttl_seconds: int = 86400
    change_seconds_per_change: float = 0.0  # Route 53's processing time per change in a batch
    # One CNAME per account, <accountid>.ddb.us-east-1.api.aws -> the legacy name, as us-east-1 holds
    # them (the workload's accounts first, then generated ids); 0: one wildcard CNAME stands for all.
    account_endpoints: int = 0


@dataclass(frozen=True)
class FleetSettings:
    load_balancers: int = 6
    # LBs 1..shared serve every endpoint; the rest serve only the legacy regional
    # name, by far the biggest endpoint (0: every LB serves every endpoint).
    shared_load_balancers: int = 0
    availability_zones: tuple[str, ...] = ("use1-az1", "use1-az2", "use1-az4")
    capacity: int = 100


@dataclass(frozen=True)
class PlannerSettings:
    start_generation: int = 110
    plan_interval_seconds: float = 2.0


@dataclass(frozen=True)
class WorkloadSettings:
    requests_per_second: float = 20.0
    accounts: tuple[str, ...] = ("123456789012",)
    call_timeout_seconds: float = 2.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    epoch: datetime
    schedule: Schedule
    end: float  # simulated seconds since the epoch at which the run ends
    fixes: frozenset[Fix]
    endpoints: tuple[Endpoint, ...]
    dns: DnsSettings
    fleet: FleetSettings
    planner: PlannerSettings
    enactor: EnactorConfig
    workload: WorkloadSettings
    dwfm: DwfmConfig
    netmgr: PropagationConfig
    nlb: NlbConfig
    dependents: DependentsConfig
    conditions: tuple[Condition, ...]
    operators: tuple[OperatorAction, ...]
    fitted: tuple[Fitted, ...] = ()

    def fitted_for(self, figure: str) -> tuple[Fitted, ...]:
        return tuple(f for f in self.fitted if f.figure == figure)

    def with_overrides(self, *, seed: int | None = None, fixes: frozenset[Fix] | None = None) -> "Scenario":
        return replace(self, seed=self.seed if seed is None else seed, fixes=self.fixes if fixes is None else fixes)


BUILTIN = "services.scenarios"


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(BUILTIN).iterdir() if p.name.endswith(".yaml"))


def load_scenario(name_or_path: str) -> Scenario:
    """A built-in scenario by name (e.g. "oct-2025") or a YAML file by path."""
    return parse_scenario(*scenario_text(name_or_path))


def scenario_text(name_or_path: str) -> tuple[str, str]:
    """The YAML of a built-in scenario or a file, and where it came from; a scenario that `extends`
    another comes back whole (merged), so a run directory keeps all of what ran."""
    text, source = _source_text(name_or_path)
    try:
        extends = "extends" in text and "extends" in (yaml.safe_load(text) or {})
    except (yaml.YAMLError, TypeError):
        extends = False  # parse_scenario says what is wrong with it
    if extends:
        raw = _raw_with_base(text, source, ())
        if isinstance(raw, dict):
            header = f"# {source}, laid over the scenario it extends (services/runtime/scenario.py _merged)\n"
            text = header + yaml.safe_dump(raw, sort_keys=False, width=110)
    return text, source


def _source_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            return path.read_text(), str(path)
        except OSError as exc:
            raise ScenarioError(f"{name_or_path}: {exc.strerror}") from None
    resource = resources.files(BUILTIN) / f"{name_or_path}.yaml"
    if not resource.is_file():
        raise ScenarioError(f"no scenario {name_or_path!r}; built in: {', '.join(builtin_names())}")
    return resource.read_text(), f"{name_or_path}.yaml"


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    raw = _raw_with_base(text, source, ())
    r = _Reader(raw, source)
    try:
        return _build(r)
    except (ScheduleError, UnknownFix) as exc:
        raise ScenarioError(f"{source}: {exc}") from None


def _raw_with_base(text: str, source: str, seen: tuple[str, ...]) -> Any:
    """The scenario's YAML, laid over the built-in scenario it `extends` (mappings merged key by key,
    anything else replaced), so a variant says only what differs."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    base_name = raw.pop("extends")
    if not isinstance(base_name, str) or base_name in seen:
        raise ScenarioError(f"{source}: extends: expected the name of another built-in scenario, got {base_name!r}")
    base_text, base_source = _source_text(base_name)
    return _merged(_raw_with_base(base_text, base_source, seen + (base_name,)), raw)


def _merged(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in over.items()}}
    return over


def _build(r: "_Reader") -> Scenario:
    name = r.str("name")
    raw_epoch = r.raw.get("epoch")
    if isinstance(raw_epoch, datetime):  # YAML reads an unquoted timestamp itself
        epoch = raw_epoch
        r.used.add("epoch")
    else:
        epoch_text = r.str("epoch")
        try:
            epoch = datetime.fromisoformat(epoch_text)
        except ValueError:
            raise ScenarioError(f"{r.source}: epoch: not an ISO 8601 time: {epoch_text!r}") from None
    if epoch.tzinfo is None:
        raise ScenarioError(f"{r.source}: epoch: needs a UTC offset, e.g. 2025-10-19T23:30:00-07:00")
    points = []
    for i, item in enumerate(r.list("schedule")):
        where = f"schedule[{i}]"
        if not (isinstance(item, dict) and set(item) == {"wall", "pdt"}):
            raise ScenarioError(f"{r.source}: {where}: expected {{wall: SECONDS, pdt: 'HH:MM[:SS]'}}")
        points.append((_number(item["wall"], r.source, where + ".wall"), parse_pdt(str(item["pdt"]), epoch)))
    endpoints = tuple(Endpoint(e["name"], bool(e.get("dual_stack", False)))
                      for e in r.list("endpoints", default=[{"name": ep.name, "dual_stack": ep.dual_stack}
                                                           for ep in DEFAULT_ENDPOINTS]))
    conditions = tuple(
        Condition(c.str("enactor"), _at(c.str("from"), epoch), _at(c.str("until"), epoch),
                  c.pair("delay_seconds"))
        for c in r.sub_list("conditions"))
    operators = []
    for op in r.sub_list("operators"):
        try:  # the actions and their parameters: services/core/operators.py
            action = parse_action(op.str("action"))
            params = parse_params(action, op.dict("params", default={}))
        except ActionError as exc:
            raise ScenarioError(f"{op.source}: {exc}") from None
        operators.append(OperatorAction(_at(op.str("at"), epoch), action, params))
        op.done()
    scenario = Scenario(
        name=name,
        description=r.str("description", default=""),
        seed=r.int("seed", default=1),
        epoch=epoch,
        schedule=Schedule(tuple(points)),
        end=_at(r.str("end"), epoch),
        fixes=parse_fixes(r.list("fixes", default=[])),
        endpoints=endpoints,
        dns=r.settings("dns", DnsSettings),
        fleet=r.settings("fleet", FleetSettings),
        planner=r.settings("planner", PlannerSettings),
        enactor=r.settings("enactor", EnactorConfig),
        workload=r.settings("workload", WorkloadSettings),
        dwfm=r.settings("dwfm", DwfmConfig),
        netmgr=r.settings("netmgr", PropagationConfig),
        nlb=r.settings("nlb", NlbConfig),
        dependents=r.settings("dependents", DependentsConfig),
        conditions=conditions,
        operators=tuple(sorted(operators, key=lambda o: o.at)),
    )
    scenario = replace(scenario, fitted=tuple(_fitted(f, scenario) for f in r.sub_list("fitted")))
    r.done()
    return scenario


_SETTINGS_SECTIONS = {"dns": DnsSettings, "fleet": FleetSettings, "planner": PlannerSettings,
                      "enactor": EnactorConfig, "workload": WorkloadSettings, "dwfm": DwfmConfig,
                      "netmgr": PropagationConfig, "nlb": NlbConfig, "dependents": DependentsConfig}


def _fitted(f: "_Reader", scenario: Scenario) -> Fitted:
    knobs = tuple(str(k) for k in f.list("knobs"))
    actions = {o.action.value: o for o in scenario.operators}
    for knob in knobs or ("",):
        section, _, rest = knob.partition(".")
        if section in ("schedule", "conditions", "end", "endpoints") and not rest:
            continue
        if section in _SETTINGS_SECTIONS and rest in {x.name for x in fields(_SETTINGS_SECTIONS[section])}:
            continue
        if section == "operators":
            action, _, param = rest.partition(".")
            if action in actions and (not param or param in {x.name for x in fields(actions[action].params)}):
                continue
        raise ScenarioError(f"{f.source}: {f.path}.knobs: {knob!r} is not a setting, section or operator "
                            f"action of this scenario")
    fitted = Fitted(f.str("figure"), knobs, f.str("how", default=""))
    f.done()
    return fitted


def _at(text: str, epoch: datetime) -> float:
    return parse_pdt(text, epoch)


def _number(value: Any, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{source}: {where}: expected a number, got {value!r}")
    return float(value)


class _Reader:
    """Typed access to one YAML mapping that remembers which keys were used."""

    def __init__(self, raw: Any, source: str, path: str = ""):
        if not isinstance(raw, dict):
            raise ScenarioError(f"{source}: {path or 'top level'}: expected a mapping")
        self.raw, self.source, self.path, self.used = raw, source, path, set()

    def _where(self, key: str) -> str:
        return f"{self.source}: {self.path + '.' if self.path else ''}{key}"

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key not in self.raw:
            if default is _REQUIRED:
                raise ScenarioError(f"{self._where(key)}: missing")
            return default
        return self.raw[key]

    def str(self, key: str, default: Any = None) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ScenarioError(f"{self._where(key)}: expected text, got {value!r}")
        return value

    def int(self, key: str, default: Any = None) -> int:
        value = self._get(key, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{self._where(key)}: expected a whole number, got {value!r}")
        return value

    def list(self, key: str, default: Any = None) -> list:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, list):
            raise ScenarioError(f"{self._where(key)}: expected a list")
        return value

    def dict(self, key: str, default: Any = None) -> dict:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, dict):
            raise ScenarioError(f"{self._where(key)}: expected a mapping")
        return value

    def pair(self, key: str) -> tuple[float, float]:
        value = self._get(key, _REQUIRED)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if not (isinstance(value, list) and len(value) == 2):
            raise ScenarioError(f"{self._where(key)}: expected a number or [low, high]")
        low, high = (_number(v, self.source, key) for v in value)
        if not 0 <= low <= high:
            raise ScenarioError(f"{self._where(key)}: expected 0 <= low <= high")
        return (low, high)

    def sub_list(self, key: str) -> list["_Reader"]:
        return [_Reader(item, self.source, f"{self.path + '.' if self.path else ''}{key}[{i}]")
                for i, item in enumerate(self.list(key, default=[]))]

    def settings(self, key: str, cls: type) -> Any:
        """A flat mapping onto a frozen dataclass of settings, with its defaults and types."""
        raw = self.dict(key, default={})
        known = {f.name: f for f in fields(cls)}
        unknown = set(raw) - set(known)
        if unknown:
            raise ScenarioError(f"{self._where(key)}: unknown setting(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(known))}")
        values = {}
        defaults = cls()
        for name, value in raw.items():
            current = getattr(defaults, name)
            where = f"{key}.{name}"
            if isinstance(current, tuple):
                if not isinstance(value, list):
                    raise ScenarioError(f"{self._where(where)}: expected a list")
                value = tuple(value)
            elif isinstance(current, bool) or isinstance(current, int) and not isinstance(current, bool):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ScenarioError(f"{self._where(where)}: expected a whole number, got {value!r}")
            elif isinstance(current, float):
                value = _number(value, self.source, where)
                if value < 0:
                    raise ScenarioError(f"{self._where(where)}: must not be negative")
            values[name] = value
        return cls(**values)

    def done(self) -> None:
        unknown = set(self.raw) - self.used
        if unknown:
            raise ScenarioError(f"{self.source}: {self.path or 'top level'}: unknown key(s) "
                                f"{', '.join(sorted(map(str, unknown)))}")


