from racelab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PropagationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPAGATION_KIND_UNSPECIFIED: _ClassVar[PropagationKind]
    NEW: _ClassVar[PropagationKind]
    TERMINATED: _ClassVar[PropagationKind]
PROPAGATION_KIND_UNSPECIFIED: PropagationKind
NEW: PropagationKind
TERMINATED: PropagationKind

class PropagateInstanceRequest(_message.Message):
    __slots__ = ("instance_id", "kind", "instance_ids", "already_propagated", "due_since_sim_seconds")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PROPAGATED_FIELD_NUMBER: _ClassVar[int]
    DUE_SINCE_SIM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    kind: PropagationKind
    instance_ids: _containers.RepeatedScalarFieldContainer[str]
    already_propagated: bool
    due_since_sim_seconds: float
    def __init__(self, instance_id: _Optional[str] = ..., kind: _Optional[_Union[PropagationKind, str]] = ..., instance_ids: _Optional[_Iterable[str]] = ..., already_propagated: _Optional[bool] = ..., due_since_sim_seconds: _Optional[float] = ...) -> None: ...

class PropagateInstanceResponse(_message.Message):
    __slots__ = ("queue_position",)
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    queue_position: int
    def __init__(self, queue_position: _Optional[int] = ...) -> None: ...

class GetInstanceNetworkRequest(_message.Message):
    __slots__ = ("instance_id",)
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    def __init__(self, instance_id: _Optional[str] = ...) -> None: ...

class GetInstanceNetworkResponse(_message.Message):
    __slots__ = ("ready", "propagated_at_sim_seconds")
    READY_FIELD_NUMBER: _ClassVar[int]
    PROPAGATED_AT_SIM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    propagated_at_sim_seconds: float
    def __init__(self, ready: _Optional[bool] = ..., propagated_at_sim_seconds: _Optional[float] = ...) -> None: ...

class GetInstancesNetworkRequest(_message.Message):
    __slots__ = ("instance_ids",)
    INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    instance_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, instance_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetInstancesNetworkResponse(_message.Message):
    __slots__ = ("ready", "propagated_at_sim_seconds")
    READY_FIELD_NUMBER: _ClassVar[int]
    PROPAGATED_AT_SIM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ready: _containers.RepeatedScalarFieldContainer[bool]
    propagated_at_sim_seconds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, ready: _Optional[_Iterable[bool]] = ..., propagated_at_sim_seconds: _Optional[_Iterable[float]] = ...) -> None: ...

class DescribeBacklogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeBacklogResponse(_message.Message):
    __slots__ = ("pending_new", "pending_terminated", "oldest_age_seconds", "propagated_total", "throttle")
    PENDING_NEW_FIELD_NUMBER: _ClassVar[int]
    PENDING_TERMINATED_FIELD_NUMBER: _ClassVar[int]
    OLDEST_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROPAGATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    pending_new: int
    pending_terminated: int
    oldest_age_seconds: float
    propagated_total: int
    throttle: _common_pb2.Throttle
    def __init__(self, pending_new: _Optional[int] = ..., pending_terminated: _Optional[int] = ..., oldest_age_seconds: _Optional[float] = ..., propagated_total: _Optional[int] = ..., throttle: _Optional[_Union[_common_pb2.Throttle, _Mapping]] = ...) -> None: ...

class SetPropagationThrottleRequest(_message.Message):
    __slots__ = ("requests_per_second", "enabled")
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    requests_per_second: float
    enabled: bool
    def __init__(self, requests_per_second: _Optional[float] = ..., enabled: _Optional[bool] = ...) -> None: ...

class SetPropagationThrottleResponse(_message.Message):
    __slots__ = ("throttle",)
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    throttle: _common_pb2.Throttle
    def __init__(self, throttle: _Optional[_Union[_common_pb2.Throttle, _Mapping]] = ...) -> None: ...
