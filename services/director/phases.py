"""The incident's timeline (INCIDENT.md §3) as data: which row is in effect at a simulated time.

Rows are (day, PDT time of day, short name). Day 0 is the evening the incident
began (19 October in oct-2025); the scenario's epoch fixes which calendar night
that is: an epoch in the afternoon or evening is day 0 itself, an epoch after
midnight belongs to the previous day's night.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from services.runtime.clock import PDT

BEFORE = "before the race"

# INCIDENT.md §3, every row. Names are label values of racelab_phase_info: keep them short and fixed.
PHASES: tuple[tuple[int, str, str], ...] = (
    (0, "23:48", "23:48 regional endpoint emptied"),
    (0, "23:51", "23:51 Lambda and STS errors begin"),
    (1, "00:38", "00:38 DNS identified as the source"),
    (1, "01:15", "01:15 mitigations; operators' tooling fixed"),
    (1, "01:19", "01:19 STS recovers (first window)"),
    (1, "02:25", "02:25 DNS restored by hand; clients recovering; DWFM collapse"),
    (1, "02:40", "02:40 cached DNS answers expired; DWFM congestive collapse"),
    (1, "04:14", "04:14 DWFM throttled, hosts restarted"),
    (1, "04:40", "04:40 Lambda SQS poller restored by hand"),
    (1, "05:28", "05:28 every droplet leased; launches hit request limits"),
    (1, "05:30", "05:30 NLB health-check failures begin"),
    (1, "05:38", "05:38 DNS automation disabled worldwide"),
    (1, "06:21", "06:21 new instances launch without network"),
    (1, "06:52", "06:52 NLB problem detected"),
    (1, "08:31", "08:31 STS second window"),
    (1, "09:36", "09:36 NLB health-check failover disabled"),
    (1, "09:59", "09:59 STS second window over"),
    (1, "10:36", "10:36 network propagation normal"),
    (1, "11:23", "11:23 EC2 throttles relax"),
    (1, "13:50", "13:50 EC2 fully recovered"),
    (1, "14:09", "14:09 NLB automatic failover re-enabled"),
    (1, "14:20", "14:20 event over"),
)

PHASE_NAMES: tuple[str, ...] = (BEFORE,) + tuple(name for _, _, name in PHASES)


class Timeline:
    """The §3 rows placed on one scenario's simulated time axis."""

    def __init__(self, epoch: datetime):
        local = epoch.astimezone(PDT)
        night = local.date() if local.hour >= 12 else local.date() - timedelta(days=1)
        self.starts: tuple[tuple[float, str], ...] = tuple(
            ((datetime.combine(night + timedelta(days=day), time.fromisoformat(hhmm), tzinfo=PDT)
              - epoch).total_seconds(), name)
            for day, hhmm, name in PHASES)

    def phase_at(self, sim: float) -> str:
        current = BEFORE
        for start, name in self.starts:
            if sim >= start:
                current = name
            else:
                break
        return current
