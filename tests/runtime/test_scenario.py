import pytest

from services.core.fixes import Fix
from services.core.plans import LEGACY_ENDPOINT
from services.runtime.scenario import ScenarioError, builtin_names, load_scenario, parse_scenario

MINIMAL = """
name: t
epoch: "2025-10-19T23:30:00-07:00"
schedule: [{wall: 0, pdt: "23:30"}, {wall: 10, pdt: "23:40"}]
end: "23:40"
"""


def test_builtin_oct_2025_loads_with_the_incidents_figures():
    assert "oct-2025" in builtin_names()
    s = load_scenario("oct-2025")
    assert s.fixes == frozenset()
    assert s.endpoints[-1].name == LEGACY_ENDPOINT
    assert s.planner.start_generation == 110
    assert s.dns.soa_ttl_seconds == 900
    # INCIDENT.md §3's operators' actions, at their times
    assert [op.action for op in s.operators] == [
        "restore-dns", "mitigate-internal", "restore-dns", "throttle-dwfm", "restart-dwfm-hosts", "restart-sqs-poller",
        "disable-dns-automation", "disable-nlb-failover", "relax-ec2-throttle", "enable-nlb-failover"]
    assert s.dwfm.droplets >= 1000  # "thousands"
    assert s.epoch.hour == 23 and s.epoch.minute == 30
    assert not s.operators[0].params.mended  # the first attempt, with the tooling as built
    assert s.operators[2].at == (2 * 60 + 55) * 60 and s.operators[2].params.mended  # 02:25 PDT, the next day
    assert s.schedule.sim_at(0) == 0


def test_minimal_scenario_takes_defaults():
    s = parse_scenario(MINIMAL)
    assert s.end == 600 and s.seed == 1 and s.enactor.lock_lease_seconds == 10.0


@pytest.mark.parametrize("extra, message", [
    ("bogus: 1", "unknown key(s) bogus"),
    ("enactor: {lock_lease_seconds: fast}", "enactor.lock_lease_seconds: expected a number"),
    ("enactor: {leese: 1}", "unknown setting(s) leese"),
    ("fixes: [fencng]", "unknown fix 'fencng'"),
    ("operators: [{at: '02:25', action: reboot}]", "unknown action 'reboot'"),
    ("operators: [{at: '04:14', action: throttle-dwfm, params: {admit_per_host_second: fast}}]",
     "throttle-dwfm: params.admit_per_host_second: not a number: 'fast'"),
    ("operators: [{at: '04:14', action: restart-dwfm-hosts, params: {hosts_count: 2}}]",
     "params.hosts_count: not a parameter of restart-dwfm-hosts (it takes count, hosts)"),
    ("operators: [{at: '05:38', action: disable-dns-automation, params: {now: 1}}]",
     "(it takes no parameters)"),
    ("conditions: [{enactor: e, from: '23:30', until: '23:40', delay_seconds: [3, 1]}]", "low <= high"),
    ("planner: {start_generation: 1.5}", "expected a whole number"),
])
def test_broken_scenarios_name_the_field(extra, message):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(MINIMAL + extra + "\n", "x.yaml")
    assert message in str(err.value) and "x.yaml" in str(err.value)


def test_fixes_are_parsed():
    assert parse_scenario(MINIMAL + "fixes: [fencing, heal-rollback]\n").fixes == {Fix.FENCING, Fix.HEAL_ROLLBACK}


@pytest.mark.parametrize("text", ["{", "[]", "name: x\n"])
def test_not_a_scenario(text):
    with pytest.raises(ScenarioError):
        parse_scenario(text)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ScenarioError, match="No such file"):
        load_scenario(str(tmp_path / "missing.yaml"))


def test_the_scale_scenario_is_oct_2025_at_us_east_1s_size_and_its_text_is_whole():
    from services.authority.state import initial_zones
    from services.core.plans import ACCOUNT_ZONE
    from services.core.records import RRType
    from services.runtime.scenario import scenario_text
    base, scale = load_scenario("oct-2025"), load_scenario("oct-2025-scale")
    assert scale.fleet.load_balancers >= 300 and scale.dns.account_endpoints >= 100_000
    assert (scale.operators, scale.conditions, scale.endpoints) == (base.operators, base.conditions, base.endpoints)
    text, _ = scenario_text("oct-2025-scale")
    assert "extends" not in parse_scenario.__globals__["yaml"].safe_load(text)  # a run keeps all of it
    assert parse_scenario(text) == scale
    zones = {z.origin: z for z in initial_zones(scale)}
    accounts = zones[ACCOUNT_ZONE].snapshot
    assert len(accounts.of_type(RRType.CNAME)) == 100_000
    assert sum(len(z.snapshot.records) for z in zones.values()) >= 100_000
    assert accounts.get(f"{scale.workload.accounts[0]}.{ACCOUNT_ZONE}", RRType.CNAME).values == (LEGACY_ENDPOINT,)
    assert accounts.get(f"*.{ACCOUNT_ZONE}", RRType.CNAME) is None  # one per account, no wildcard


def test_extends_merges_over_its_base_and_names_a_bad_base(tmp_path):
    variant = tmp_path / "v.yaml"
    variant.write_text("extends: oct-2025\nname: v\nfleet: {load_balancers: 30}\n")
    v = load_scenario(str(variant))
    assert v.name == "v" and v.fleet.load_balancers == 30
    assert v.fleet.shared_load_balancers == load_scenario("oct-2025").fleet.shared_load_balancers
    with pytest.raises(ScenarioError, match="extends"):
        parse_scenario("extends: [oct-2025]\nname: x\n")
    with pytest.raises(ScenarioError, match="no scenario"):
        parse_scenario("extends: nothing-like-it\nname: x\n")
