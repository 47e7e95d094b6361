from datetime import datetime

import pytest

from services.runtime.clock import PDT, Schedule, ScheduleError, SimClock, parse_pdt

EPOCH = datetime(2025, 10, 19, 23, 30, tzinfo=PDT)


def test_piecewise_linear_both_ways():
    s = Schedule(((0, 0), (10, 600), (40, 1200)))
    assert s.sim_at(5) == 300
    assert s.sim_at(25) == 900
    assert s.wall_at(900) == 25
    assert s.rate_at(5) == 60 and s.rate_at(30) == 20
    assert s.sim_at(50) == 1400  # past the end: the last segment's rate goes on


@pytest.mark.parametrize("points", [((0, 0),), ((0, 0), (0, 10)), ((0, 10), (5, 5))])
def test_schedule_must_move_forward(points):
    with pytest.raises(ScheduleError):
        Schedule(points)


def test_parse_pdt_rolls_over_midnight():
    assert parse_pdt("23:48", EPOCH) == 18 * 60
    assert parse_pdt("02:25", EPOCH) == (2 * 60 + 55) * 60
    assert parse_pdt("23:30", EPOCH) == 0


@pytest.mark.parametrize("text", ["25:00", "2:5:x", "noon", "12"])
def test_parse_pdt_rejects_garbage(text):
    with pytest.raises(ScheduleError):
        parse_pdt(text, EPOCH)


def test_clock_reads_injected_wall_time():
    wall = [1000.0]
    clock = SimClock(Schedule(((0, 0), (10, 600))), EPOCH, wall_start=1000.0, wall=lambda: wall[0])
    assert clock.now() == 0 and clock.pdt() == "23:30:00 PDT"
    wall[0] = 1003.0
    assert clock.now() == 180
    assert clock.pdt() == "23:33:00 PDT"
    assert clock.unix() == EPOCH.timestamp() + 180
    assert clock.wall_until(300) == pytest.approx(2.0)


def test_before_the_start_the_clock_stands_at_the_epoch_and_sleeps_wait_for_it():
    """A process started ahead of the run (a pod given a lead) does nothing of the night before 23:30."""
    wall = [990.0]
    clock = SimClock(Schedule(((0, 0), (10, 600))), EPOCH, wall_start=1000.0, wall=lambda: wall[0])
    assert clock.now() == 0 and clock.pdt() == "23:30:00 PDT"  # not 23:20, at the first segment's pace
    assert clock.wall_until(60) == pytest.approx(11.0)  # the lead, then a simulated minute
    wall[0] = 1001.0
    assert clock.now() == 60
