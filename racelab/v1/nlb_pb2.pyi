from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TargetHealthState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TARGET_HEALTH_STATE_UNSPECIFIED: _ClassVar[TargetHealthState]
    INITIAL: _ClassVar[TargetHealthState]
    HEALTHY: _ClassVar[TargetHealthState]
    UNHEALTHY: _ClassVar[TargetHealthState]
TARGET_HEALTH_STATE_UNSPECIFIED: TargetHealthState
INITIAL: TargetHealthState
HEALTHY: TargetHealthState
UNHEALTHY: TargetHealthState

class RegisterTargetRequest(_message.Message):
    __slots__ = ("nlb_id", "instance_id", "address", "availability_zone", "in_service")
    NLB_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    IN_SERVICE_FIELD_NUMBER: _ClassVar[int]
    nlb_id: str
    instance_id: str
    address: str
    availability_zone: str
    in_service: bool
    def __init__(self, nlb_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., address: _Optional[str] = ..., availability_zone: _Optional[str] = ..., in_service: _Optional[bool] = ...) -> None: ...

class RegisterTargetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeregisterTargetRequest(_message.Message):
    __slots__ = ("nlb_id", "instance_id")
    NLB_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    nlb_id: str
    instance_id: str
    def __init__(self, nlb_id: _Optional[str] = ..., instance_id: _Optional[str] = ...) -> None: ...

class DeregisterTargetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TargetHealth(_message.Message):
    __slots__ = ("instance_id", "address", "availability_zone", "state", "reason", "transitions", "last_checked_sim_seconds")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKED_SIM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    address: str
    availability_zone: str
    state: TargetHealthState
    reason: str
    transitions: int
    last_checked_sim_seconds: float
    def __init__(self, instance_id: _Optional[str] = ..., address: _Optional[str] = ..., availability_zone: _Optional[str] = ..., state: _Optional[_Union[TargetHealthState, str]] = ..., reason: _Optional[str] = ..., transitions: _Optional[int] = ..., last_checked_sim_seconds: _Optional[float] = ...) -> None: ...

class DescribeTargetHealthRequest(_message.Message):
    __slots__ = ("nlb_id",)
    NLB_ID_FIELD_NUMBER: _ClassVar[int]
    nlb_id: str
    def __init__(self, nlb_id: _Optional[str] = ...) -> None: ...

class DescribeTargetHealthResponse(_message.Message):
    __slots__ = ("targets",)
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[TargetHealth]
    def __init__(self, targets: _Optional[_Iterable[_Union[TargetHealth, _Mapping]]] = ...) -> None: ...

class SetAutomaticFailoverRequest(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class SetAutomaticFailoverResponse(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class DescribeCapacityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ZoneCapacity(_message.Message):
    __slots__ = ("nlb_id", "availability_zone", "targets_registered", "targets_healthy", "failed_over")
    NLB_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    TARGETS_HEALTHY_FIELD_NUMBER: _ClassVar[int]
    FAILED_OVER_FIELD_NUMBER: _ClassVar[int]
    nlb_id: str
    availability_zone: str
    targets_registered: int
    targets_healthy: int
    failed_over: bool
    def __init__(self, nlb_id: _Optional[str] = ..., availability_zone: _Optional[str] = ..., targets_registered: _Optional[int] = ..., targets_healthy: _Optional[int] = ..., failed_over: _Optional[bool] = ...) -> None: ...

class DescribeCapacityResponse(_message.Message):
    __slots__ = ("zones", "automatic_failover_enabled", "health_check_delay_seconds")
    ZONES_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_FAILOVER_ENABLED_FIELD_NUMBER: _ClassVar[int]
    HEALTH_CHECK_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    zones: _containers.RepeatedCompositeFieldContainer[ZoneCapacity]
    automatic_failover_enabled: bool
    health_check_delay_seconds: float
    def __init__(self, zones: _Optional[_Iterable[_Union[ZoneCapacity, _Mapping]]] = ..., automatic_failover_enabled: _Optional[bool] = ..., health_check_delay_seconds: _Optional[float] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("nlb_id", "address")
    NLB_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    nlb_id: str
    address: str
    def __init__(self, nlb_id: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("ok", "error", "availability_zone")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    error: str
    availability_zone: str
    def __init__(self, ok: _Optional[bool] = ..., error: _Optional[str] = ..., availability_zone: _Optional[str] = ...) -> None: ...
