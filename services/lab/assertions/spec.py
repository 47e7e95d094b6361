"""The YAML spec format: a list of checks (see docs/assertions.md).

    name: my-checks
    checks:
      - name: no-stale-flip
        title: no enactor flips an endpoint to an older plan
        explain: plain words for whoever reads a failure
        requires: {name: enactor.batch}          # else SKIP: these traces cannot say
        select: {name: enactor.batch, where: {racelab.batch.step: flip}}
        each: {racelab.plan.generation: {ge: $self.racelab.endpoint.generation.replaced}}
        say: "{racelab.enactor.id} applied {racelab.plan.generation} over {racelab.endpoint.generation.replaced}"
        chain: [...]                              # the story of the first violation

A spec names a file, or a built-in pack (`incident`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from services.lab.assertions.checks import (After, ChainStep, Check, Count, Each, Latest, Monotonic, Rule,
                                            Template)
from services.lab.assertions.selector import SpecError, parse_conditions, parse_selector

RULES = ("exists", "none", "count", "each", "monotonic", "latest", "after")
_CHECK_KEYS = ("name", "title", "explain", "requires", "select", "say", "show", "summarize", "chain", *RULES)
_PICKS = ("first", "last", "all", "count")
_ALL = ("self", "this", "that")
_PACKS = resources.files("services.lab.assertions") / "packs"


@dataclass(frozen=True)
class Spec:
    name: str
    checks: tuple[Check, ...]
    description: str = ""
    source: str = ""


def builtin_packs() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in _PACKS.iterdir() if p.name.endswith(".yaml"))


def load_spec(name_or_path: str | Path) -> Spec:
    """A spec from a YAML file, or a built-in pack by name."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: cannot read: {exc}") from None
        return parse_spec(text, str(path))
    if str(name_or_path) in builtin_packs():
        return parse_spec((_PACKS / f"{name_or_path}.yaml").read_text(encoding="utf-8"), f"pack {name_or_path}")
    raise SpecError(f"{name_or_path}: no such file, and not a built-in pack ({', '.join(builtin_packs())})")


def parse_spec(text: str, source: str = "<spec>") -> Spec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not YAML: {exc}") from None
    if isinstance(raw, list):
        raw = {"checks": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("checks"), list) or not raw["checks"]:
        raise SpecError(f"{source}: expected a mapping with a non-empty 'checks' list (or a bare list of checks)")
    unknown = set(raw) - {"name", "description", "checks"}
    if unknown:
        raise SpecError(f"{source}: unknown key {sorted(unknown)[0]!r} (name, description, checks)")
    checks = tuple(parse_check(c, f"{source}: checks[{i}]") for i, c in enumerate(raw["checks"]))
    names = [c.name for c in checks]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SpecError(f"{source}: two checks named {duplicate!r}")
    return Spec(str(raw.get("name") or Path(source).stem), checks, str(raw.get("description") or ""), source)


def parse_check(raw: Any, where: str) -> Check:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a check is a mapping, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{where}: every check needs a name")
    where = f"{where.rsplit(':', 1)[0]}: check {name!r}"
    unknown = [k for k in raw if k not in _CHECK_KEYS]
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(_CHECK_KEYS)}")
    rules = [k for k in RULES if k in raw]
    if len(rules) != 1:
        raise SpecError(f"{where}: needs exactly one of {', '.join(RULES)}, got {', '.join(rules) or 'none'}")
    if "select" not in raw:
        raise SpecError(f"{where}: needs 'select'")
    return Check(
        name=name,
        select=parse_selector(raw["select"], f"{where}: select"),
        rule=_rule(rules[0], raw[rules[0]], f"{where}: {rules[0]}"),
        title=_str(raw, "title", where), explain=" ".join(_str(raw, "explain", where).split()),
        requires=parse_selector(raw["requires"], f"{where}: requires") if "requires" in raw else None,
        say=Template.parse(raw["say"], f"{where}: say") if "say" in raw else None,
        chain=tuple(_chain_step(s, f"{where}: chain[{i}]") for i, s in enumerate(_list(raw, "chain", where))),
        show=_keys(raw.get("show"), f"{where}: show"),
        summarize=_keys(raw.get("summarize"), f"{where}: summarize"))


def _rule(kind: str, raw: Any, where: str) -> Rule:
    if kind in ("exists", "none"):
        if raw is not True:
            raise SpecError(f"{where}: write '{kind}: true'")
        return Count(min=1) if kind == "exists" else Count(max=0)
    if kind == "count":
        if not isinstance(raw, dict) or not raw or set(raw) - {"min", "max"} or \
                not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw.values()):
            raise SpecError(f"{where}: expected {{min: N, max: N}} with whole numbers (either may be left out)")
        return Count(raw.get("min"), raw.get("max"))
    if kind == "each":
        return Each(parse_conditions(raw, where, ("self", "this")))
    if kind == "after":
        return After(parse_selector(raw, where))
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping")
    if kind == "monotonic":
        _only(raw, ("value", "by", "order", "strict"), where)
        if not isinstance(raw.get("value"), str):
            raise SpecError(f"{where}: needs 'value': the attribute that must not decrease")
        if not isinstance(raw.get("strict", False), bool):
            raise SpecError(f"{where}.strict: expected true or false")
        return Monotonic(raw["value"], _keys(raw.get("by"), f"{where}.by"), _order(raw, where),
                         raw.get("strict", False))
    _only(raw, ("of", "by", "order", "expect"), where)
    if "of" not in raw or "expect" not in raw:
        raise SpecError(f"{where}: needs 'of' (a selector) and 'expect' (conditions on $self and $that)")
    return Latest(parse_selector(raw["of"], f"{where}.of"), parse_conditions(raw["expect"], f"{where}.expect", _ALL),
                  _keys(raw.get("by"), f"{where}.by"), _order(raw, where))


def _chain_step(raw: Any, where: str) -> ChainStep:
    if isinstance(raw, dict) and set(raw) == {"that"}:
        return ChainStep(None, Template.parse(raw["that"], f"{where}.that"))
    if not isinstance(raw, dict) or "select" not in raw or "say" not in raw:
        raise SpecError(f"{where}: expected {{select: SELECTOR, say: TEXT, pick: first|last|all|count}} "
                        "or {that: TEXT}")
    _only(raw, ("select", "say", "pick"), where)
    pick = raw.get("pick", "first")
    if pick not in _PICKS:
        raise SpecError(f"{where}.pick: one of {', '.join(_PICKS)}, got {pick!r}")
    return ChainStep(parse_selector(raw["select"], f"{where}.select", _ALL),
                     Template.parse(raw["say"], f"{where}.say"), pick)


def _only(raw: dict, allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(allowed)}")


def _order(raw: dict, where: str) -> str:
    order = raw.get("order", "time")
    if not isinstance(order, str) or not order:
        raise SpecError(f"{where}.order: a field (time, start, end) or an attribute key")
    return order


def _keys(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        return tuple(raw)
    raise SpecError(f"{where}: expected a key or a list of keys, got {raw!r}")


def _str(raw: dict, key: str, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise SpecError(f"{where}: {key}: expected text")
    return value


def _list(raw: dict, key: str, where: str) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise SpecError(f"{where}: {key}: expected a list")
    return value
