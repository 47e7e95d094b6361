"""Every entry point, fed bad flags, environment, credentials or scenario: exit code 2 and exactly one
clear line on stderr, never a traceback."""

from __future__ import annotations

import os

import pytest

from procs import auth_env, credentials, env_for, free_port, run_to_exit, write_scenario

# Minimal good settings per service; each case below breaks one thing.
GOOD = {
    "authority": ["--listen", "127.0.0.1:{p}", "--dns-listen", "127.0.0.1:{q}", "--state-dir", "{tmp}/a"],
    "planner": ["--listen", "127.0.0.1:{p}", "--state-dir", "{tmp}/p"],
    "director": ["--listen", "127.0.0.1:{p}", "--planner", "127.0.0.1:1", "--authority", "127.0.0.1:1",
                 "--state-dir", "{tmp}/d"],
    "enactor": ["--planner", "127.0.0.1:1", "--authority", "127.0.0.1:1"],
    "dynamodb": ["--planner", "127.0.0.1:1"],
    "workload": ["--listen", "127.0.0.1:{p}", "--authority-dns", "127.0.0.1:1"],
    "dwfm": ["--listen", "127.0.0.1:{p}", "--authority-dns", "127.0.0.1:1"],
    "netmgr": ["--listen", "127.0.0.1:{p}"],
    "nlb": ["--listen", "127.0.0.1:{p}", "--authority", "127.0.0.1:1"],
}
# (flag left out -> "required" error, flag given "nope:port" -> malformed HOST:PORT error)
REQUIRED = {"authority": "--dns-listen", "planner": "--state-dir", "director": "--planner", "enactor": "--authority",
            "dynamodb": "--planner", "workload": "--authority-dns", "dwfm": "--authority-dns", "netmgr": "--listen",
            "nlb": "--authority"}
MALFORMED = {"authority": "--listen", "planner": "--listen", "director": "--authority", "enactor": "--planner",
             "dynamodb": "--planner", "workload": "--authority-dns", "dwfm": "--listen", "netmgr": "--listen",
             "nlb": "--authority"}
SERVICES = sorted(GOOD)


def _args(service, tmp_path, drop=None, replace=None, add=()):
    args = [a.format(p=free_port(), q=free_port(), tmp=tmp_path) for a in GOOD[service]]
    if drop in args:
        i = args.index(drop)
        del args[i:i + 2]
    if replace and replace[0] in args:
        args[args.index(replace[0]) + 1] = replace[1]
    return args + list(add)


def _one_line(done, service) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (service, done.returncode, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, (service, done.stderr)
    assert "error:" in lines[0]
    return lines[0]


def _bad_files(tmp_path, serves: bool):
    empty = tmp_path / "empty.token"
    empty.write_text("   \n")
    acl = tmp_path / "bad-acl.yaml"
    acl.write_text("identities:\n  planner: {token_sha256: [oops\n")
    no_identities = tmp_path / "acl-none.yaml"
    no_identities.write_text("identities: {}\n")
    return {
        "missing token file": ({"RACELAB_TOKEN_FILE": str(tmp_path / "nope.token")}, "--token-file"),
        "token file is a directory": ({"RACELAB_TOKEN_FILE": str(tmp_path)}, "--token-file"),
        "empty token file": ({"RACELAB_TOKEN_FILE": str(empty)}, "one token"),
        "malformed ACL YAML": ({"RACELAB_ACL_FILE": str(acl)}, "not YAML"),
        "ACL without identities": ({"RACELAB_ACL_FILE": str(no_identities)}, "identities"),
        "missing ACL file": ({"RACELAB_ACL_FILE": str(tmp_path / "nope.yaml")}, "--acl-file"),
        "no token, not insecure": ({"RACELAB_TOKEN_FILE": ""}, "--token-file"),
        **({"a server without an ACL, not insecure": ({"RACELAB_ACL_FILE": ""}, "--acl-file")} if serves else {}),
    }


@pytest.mark.parametrize("service", SERVICES)
def test_bad_credentials(service, tmp_path):
    env = env_for(write_scenario(tmp_path / "s.yaml"))
    for why, (change, words) in _bad_files(tmp_path, "--listen" in GOOD[service]).items():
        line = _one_line(run_to_exit(f"services.{service}", _args(service, tmp_path), {**env, **change}), service)
        assert words in line, (service, why, line)


@pytest.mark.parametrize("service", SERVICES)
def test_bad_scenario_and_flags(service, tmp_path):
    env = env_for(write_scenario(tmp_path / "s.yaml", extra="mystery_knob: 3\n"))
    assert "mystery_knob" in _one_line(run_to_exit(f"services.{service}", _args(service, tmp_path), env), service)
    env = env_for(write_scenario(tmp_path / "s.yaml"))
    for args, words in [
        (_args(service, tmp_path, add=["--no-such-flag"]), "unrecognized arguments"),
        (_args(service, tmp_path, add=["--seed", "many"]), "--seed"),
        (_args(service, tmp_path, add=["--metrics-addr", "no-port"]), "metrics"),
        (_args(service, tmp_path, add=["--scenario", str(tmp_path / "missing.yaml")]), "missing.yaml"),
        (_args(service, tmp_path, add=["--wall-start", "soon"]), "--wall-start"),
    ]:
        assert words in _one_line(run_to_exit(f"services.{service}", args, env), service), (service, args)


@pytest.mark.parametrize("service", SERVICES)
def test_missing_and_malformed_addresses(service, tmp_path):
    env = env_for(write_scenario(tmp_path / "s.yaml"))
    flag = MALFORMED[service]
    line = _one_line(run_to_exit(f"services.{service}", _args(service, tmp_path, replace=(flag, "nope:port")), env),
                     service)
    assert flag in line
    flag = REQUIRED[service]
    assert flag in _one_line(run_to_exit(f"services.{service}", _args(service, tmp_path, drop=flag), env), service)


def test_command_line_tools(tmp_path):
    env = {**os.environ, **auth_env()}
    scenario = write_scenario(tmp_path / "s.yaml", extra="mystery_knob: 3\n")
    for module, args, words in [
        ("services.lab.cli", ["run", "--scenario", str(scenario)], "mystery_knob"),
        ("services.lab.cli", ["run", "--base-port", "x"], "--base-port"),
        ("services.lab.cli", ["run", "--chaos", "kill:nobody@23:40"], "no process"),
        ("services.lab.cli", ["run", "--chaos", "kill:authority@25:00"], "time of day"),
        ("services.lab.cli", ["run", "--chaos", "reboot:authority"], "kill:INSTANCE"),
        ("services.lab.cli", ["run", "--fix", "magic"], "magic"),
        ("services.lab.cli", ["explore", "--schedules", "0"], "--schedules"),
        ("services.lab.cli", [], "command"),
        ("services.runtime.credentials", [], "directory"),
        ("services.runtime.credentials", [str(tmp_path / "c"), "--scenario", str(scenario)], "mystery_knob"),
        ("services.runtime.credentials", [str(credentials() / "acl.yaml")], "cannot write"),
    ]:
        line = _one_line(run_to_exit(module, args, env), module)
        assert words in line, (module, args, line)
