from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoadBalancer(_message.Message):
    __slots__ = ("lb_id", "ipv4", "ipv6", "availability_zone", "capacity", "endpoints")
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    IPV6_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    lb_id: str
    ipv4: str
    ipv6: str
    availability_zone: str
    capacity: int
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lb_id: _Optional[str] = ..., ipv4: _Optional[str] = ..., ipv6: _Optional[str] = ..., availability_zone: _Optional[str] = ..., capacity: _Optional[int] = ..., endpoints: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterLoadBalancerRequest(_message.Message):
    __slots__ = ("load_balancer",)
    LOAD_BALANCER_FIELD_NUMBER: _ClassVar[int]
    load_balancer: LoadBalancer
    def __init__(self, load_balancer: _Optional[_Union[LoadBalancer, _Mapping]] = ...) -> None: ...

class RegisterLoadBalancerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReportHealthRequest(_message.Message):
    __slots__ = ("lb_id", "healthy", "capacity")
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    lb_id: str
    healthy: bool
    capacity: int
    def __init__(self, lb_id: _Optional[str] = ..., healthy: _Optional[bool] = ..., capacity: _Optional[int] = ...) -> None: ...

class ReportHealthResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Target(_message.Message):
    __slots__ = ("lb_id", "ipv4", "ipv6", "weight")
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    IPV6_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    lb_id: str
    ipv4: str
    ipv6: str
    weight: int
    def __init__(self, lb_id: _Optional[str] = ..., ipv4: _Optional[str] = ..., ipv6: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class EndpointPlan(_message.Message):
    __slots__ = ("endpoint", "hosted_zone", "tree_id", "targets", "dual_stack")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    HOSTED_ZONE_FIELD_NUMBER: _ClassVar[int]
    TREE_ID_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    DUAL_STACK_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    hosted_zone: str
    tree_id: str
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    dual_stack: bool
    def __init__(self, endpoint: _Optional[str] = ..., hosted_zone: _Optional[str] = ..., tree_id: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., dual_stack: _Optional[bool] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("generation", "created_at_sim_seconds", "endpoints", "traceparent")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_SIM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    generation: int
    created_at_sim_seconds: float
    endpoints: _containers.RepeatedCompositeFieldContainer[EndpointPlan]
    traceparent: str
    def __init__(self, generation: _Optional[int] = ..., created_at_sim_seconds: _Optional[float] = ..., endpoints: _Optional[_Iterable[_Union[EndpointPlan, _Mapping]]] = ..., traceparent: _Optional[str] = ...) -> None: ...

class GetLatestPlanRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLatestPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: int
    def __init__(self, generation: _Optional[int] = ...) -> None: ...

class GetPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class ListPlansRequest(_message.Message):
    __slots__ = ("since_generation", "limit")
    SINCE_GENERATION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    since_generation: int
    limit: int
    def __init__(self, since_generation: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("plans", "latest_generation")
    PLANS_FIELD_NUMBER: _ClassVar[int]
    LATEST_GENERATION_FIELD_NUMBER: _ClassVar[int]
    plans: _containers.RepeatedCompositeFieldContainer[Plan]
    latest_generation: int
    def __init__(self, plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ..., latest_generation: _Optional[int] = ...) -> None: ...

class WatchPlansRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddCapacityRequest(_message.Message):
    __slots__ = ("availability_zone", "load_balancer_count")
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    LOAD_BALANCER_COUNT_FIELD_NUMBER: _ClassVar[int]
    availability_zone: str
    load_balancer_count: int
    def __init__(self, availability_zone: _Optional[str] = ..., load_balancer_count: _Optional[int] = ...) -> None: ...

class AddCapacityResponse(_message.Message):
    __slots__ = ("lb_ids",)
    LB_IDS_FIELD_NUMBER: _ClassVar[int]
    lb_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, lb_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ShiftTrafficRequest(_message.Message):
    __slots__ = ("availability_zone", "away")
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    AWAY_FIELD_NUMBER: _ClassVar[int]
    availability_zone: str
    away: bool
    def __init__(self, availability_zone: _Optional[str] = ..., away: _Optional[bool] = ...) -> None: ...

class ShiftTrafficResponse(_message.Message):
    __slots__ = ("effective_generation",)
    EFFECTIVE_GENERATION_FIELD_NUMBER: _ClassVar[int]
    effective_generation: int
    def __init__(self, effective_generation: _Optional[int] = ...) -> None: ...

class SetAutomationRequest(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class SetAutomationResponse(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...
