"""The operators' actions and parameters, defined once in services/core/operators.py."""

from __future__ import annotations

import pytest

from services.core.operators import (Action, ActionError, NoParams, RelaxEc2Throttle, RestartDwfmHosts, RestoreDns,
                                     ThrottleDwfm, parse_action, parse_params)
from services.runtime.scenario import load_scenario


def test_names_are_forgiving_and_unknown_ones_list_the_known():
    assert parse_action("restore_dns") is Action.RESTORE_DNS
    assert parse_action(" Throttle-DWFM ") is Action.THROTTLE_DWFM
    with pytest.raises(ActionError, match="unknown action 'reboot'; known: disable-dns-automation"):
        parse_action("reboot")


def test_params_are_typed_with_the_defaults_filled_in():
    assert parse_params(Action.THROTTLE_DWFM, {"launches_per_second": "0.6"}) == ThrottleDwfm(0.11, 0.6, None)
    assert parse_params(Action.RESTART_DWFM_HOSTS, {"hosts": "dwfm-1, dwfm-3,"}) == RestartDwfmHosts(None,
                                                                                                    ("dwfm-1", "dwfm-3"))
    assert parse_params(Action.RESTORE_DNS, {"endpoint": "Dynamodb.us-east-1.amazonaws.com."}) == \
        RestoreDns("dynamodb.us-east-1.amazonaws.com")
    assert parse_params(Action.RELAX_EC2_THROTTLE, None) == RelaxEc2Throttle(8820.0, 2.0)
    assert parse_params(Action.MITIGATE_INTERNAL, {}) == NoParams()
    with pytest.raises(ActionError, match="params.count: not a whole number: '1.5'"):
        parse_params(Action.RESTART_DWFM_HOSTS, {"count": "1.5"})


def test_the_oct_2025_scenario_carries_typed_actions():
    ops = {op.action: op.params for op in load_scenario("oct-2025").operators}
    assert set(ops) == set(Action) - {Action.ENABLE_DNS_AUTOMATION}
    assert ops[Action.THROTTLE_DWFM] == ThrottleDwfm(admit_per_host_second=0.11, launches_per_second=0.6)
