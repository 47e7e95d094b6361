"""Which processes a local run starts, where each listens, and what each is told.

The addresses follow docs/live.md; `base_port` moves every port together so
two runs (or a run and the tests) can share a machine.
"""

from __future__ import annotations

from dataclasses import dataclass


ENACTORS = ("enactor-az1", "enactor-az2", "enactor-az3")


@dataclass(frozen=True)
class ProcessSpec:
    instance: str
    service: str  # python -m services.<service>
    env: dict[str, str]
    grpc: str | None  # where its gRPC health service answers; None: wait on metrics only
    metrics: str
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topology:
    base_port: int
    processes: tuple[ProcessSpec, ...]
    otlp: str  # where the run's trace sink listens
    dns: str  # the authority's DNS, for the user's dig
    director: str  # for the event stream the view shows

    def spec(self, instance: str) -> ProcessSpec:
        return next(p for p in self.processes if p.instance == instance)

    def layers(self, exclude: tuple[str, ...] = ()) -> list[list[ProcessSpec]]:
        """The start order: each layer depends only on earlier ones (`exclude`d processes are left out and
        count as started). Stopping goes through it backwards."""
        done = set(exclude)
        pending = [p for p in self.processes if p.instance not in done]
        layers = []
        while pending:
            layer = [p for p in pending if all(d in done for d in p.depends_on)]
            if not layer:
                raise RuntimeError(f"dependency cycle among {[p.instance for p in pending]}")
            layers.append(layer)
            done.update(p.instance for p in layer)
            pending = [p for p in pending if p not in layer]
        return layers


def local_topology(base_port: int = 17000, host: str = "127.0.0.1") -> Topology:
    def addr(offset: int) -> str:
        return f"{host}:{base_port + offset}"

    authority, planner, director, workload = addr(1), addr(2), addr(3), addr(4)
    dwfm, netmgr, nlb = addr(5), addr(6), addr(7)
    dns, otlp, lb_port = addr(53), addr(317), base_port + 100
    metrics = {name: addr(901 + i) for i, name in enumerate(
        ["authority", "planner", "director", *ENACTORS, "dynamodb", "workload", "dwfm", "netmgr", "nlb"])}
    first_lb = f"127.0.1.1:{lb_port}"  # the fleet answers health checks once its first LB does

    def proc(instance: str, service: str, grpc: str | None, env: dict[str, str],
             depends: tuple[str, ...] = ()) -> ProcessSpec:
        return ProcessSpec(instance, service, {"RACELAB_INSTANCE": instance,
                                               "RACELAB_METRICS_ADDR": metrics[instance], **env},
                           grpc, metrics[instance], depends)

    processes = (
        proc("authority", "authority", authority, {"RACELAB_LISTEN": authority, "RACELAB_DNS_LISTEN": dns,
                                                   "RACELAB_DIRECTOR": director}),
        proc("planner", "planner", planner, {"RACELAB_LISTEN": planner, "RACELAB_DIRECTOR": director}),
        # The director reaches the cascade's services only when the operators act: no start-up dependency.
        proc("director", "director", director, {"RACELAB_LISTEN": director, "RACELAB_PLANNER": planner,
                                                 "RACELAB_AUTHORITY": authority, "RACELAB_DWFM": dwfm,
                                                 "RACELAB_NETMGR": netmgr, "RACELAB_NLB": nlb,
                                                 "RACELAB_WORKLOAD": workload}, ("planner", "authority")),
        proc("dynamodb", "dynamodb", first_lb,
             {"RACELAB_PLANNER": planner, "RACELAB_LB_HOST_PREFIX": "127.0.1.", "RACELAB_LB_PORT": str(lb_port)},
             ("planner",)),
        *(proc(e, "enactor", None, {"RACELAB_PLANNER": planner, "RACELAB_AUTHORITY": authority,
                                    "RACELAB_DIRECTOR": director}, ("planner", "authority"))
          for e in ENACTORS),
        proc("netmgr", "netmgr", netmgr, {"RACELAB_LISTEN": netmgr, "RACELAB_DIRECTOR": director}),
        proc("dwfm", "dwfm", dwfm, {"RACELAB_LISTEN": dwfm, "RACELAB_AUTHORITY_DNS": dns,
                                    "RACELAB_LB_PORT": str(lb_port), "RACELAB_NETMGR": netmgr,
                                    "RACELAB_DIRECTOR": director},
             ("authority", "dynamodb", "netmgr")),
        proc("nlb", "nlb", nlb, {"RACELAB_LISTEN": nlb, "RACELAB_AUTHORITY": authority, "RACELAB_NETMGR": netmgr,
                                 "RACELAB_DIRECTOR": director}, ("authority", "netmgr")),
        proc("workload", "workload", workload, {"RACELAB_LISTEN": workload, "RACELAB_AUTHORITY_DNS": dns,
                                                "RACELAB_DIRECTOR": director, "RACELAB_LB_PORT": str(lb_port),
                                                "RACELAB_DWFM": dwfm, "RACELAB_NLB": nlb},
             ("authority", "dynamodb", "dwfm", "nlb")),
    )
    return Topology(base_port, processes, otlp, dns, director)
