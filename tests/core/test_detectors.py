"""The cascade's named states, judged in the core: leases, DWFM's congestive collapse, NLB flapping."""

from __future__ import annotations

import pickle

from services.core.detectors import CollapseWatch, FlapWatch, LeaseWatch


def test_leases_expire_then_none_then_come_back():
    watch = LeaseWatch()
    assert watch.observe(4000, 4000) is None
    states = [c.attrs["state"] for c in (watch.observe(3000, 4000), watch.observe(1000, 4000),
                                         watch.observe(0, 4000), watch.observe(10, 4000), watch.observe(4000, 4000))
              if c is not None]
    assert states == ["expiring", "none", "expiring", "all"]


def test_collapse_is_timeouts_without_a_lease_established_over_the_window():
    watch = CollapseWatch(window=300.0)  # fed the fleet's running totals: timeouts, leases established
    assert watch.observe(0.0, 0, 5, 10) is None  # work progressing
    assert watch.observe(100.0, 40, 5, 900) is None  # the lease established at 0 is still in the window
    change = watch.observe(400.0, 80, 5, 900)
    assert change.kind == "dwfm.collapse" and change.attrs["state"] == "collapsed" and watch.collapsed
    assert change.attrs["timeouts"] == 80  # both steps' timeouts fall in the window
    assert watch.observe(500.0, 120, 5, 900) is None  # stays collapsed
    assert watch.observe(600.0, 123, 6, 800).attrs["state"] == "progressing"
    assert pickle.loads(pickle.dumps(watch)) == watch  # a snapshot keeps it as it is


def test_flapping_needs_enough_flips_in_the_window_and_ends_when_they_stop():
    watch = FlapWatch(("app-nlb", "sts-nlb"), window=600.0, threshold=3)
    for t in (0.0, 10.0):
        watch.flipped("app-nlb", t)
    assert watch.observe(10.0) == []
    watch.flipped("app-nlb", 20.0)
    [change] = watch.observe(20.0)
    assert change.attrs == {"nlb": "app-nlb", "state": "flapping", "flips": 3}
    assert watch.observe(300.0) == []
    [steady] = watch.observe(621.0)
    assert steady.attrs == {"nlb": "app-nlb", "state": "steady"}
