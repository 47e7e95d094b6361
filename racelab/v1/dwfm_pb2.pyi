from racelab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunInstancesError(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_INSTANCES_ERROR_UNSPECIFIED: _ClassVar[RunInstancesError]
    INSUFFICIENT_CAPACITY: _ClassVar[RunInstancesError]
    REQUEST_LIMIT_EXCEEDED: _ClassVar[RunInstancesError]
RUN_INSTANCES_ERROR_UNSPECIFIED: RunInstancesError
INSUFFICIENT_CAPACITY: RunInstancesError
REQUEST_LIMIT_EXCEEDED: RunInstancesError

class RunInstancesRequest(_message.Message):
    __slots__ = ("count", "availability_zone", "client_token", "group", "preexisting")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_ZONE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PREEXISTING_FIELD_NUMBER: _ClassVar[int]
    count: int
    availability_zone: str
    client_token: str
    group: str
    preexisting: bool
    def __init__(self, count: _Optional[int] = ..., availability_zone: _Optional[str] = ..., client_token: _Optional[str] = ..., group: _Optional[str] = ..., preexisting: _Optional[bool] = ...) -> None: ...

class RunInstancesResponse(_message.Message):
    __slots__ = ("instance_ids", "error", "error_message")
    INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    instance_ids: _containers.RepeatedScalarFieldContainer[str]
    error: RunInstancesError
    error_message: str
    def __init__(self, instance_ids: _Optional[_Iterable[str]] = ..., error: _Optional[_Union[RunInstancesError, str]] = ..., error_message: _Optional[str] = ...) -> None: ...

class DescribeFleetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeFleetResponse(_message.Message):
    __slots__ = ("droplets_total", "droplets_leased", "droplets_expired", "queue_depth", "timeouts_total", "hosts", "throttle", "instances_running", "work_in_flight", "launches_per_second")
    DROPLETS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DROPLETS_LEASED_FIELD_NUMBER: _ClassVar[int]
    DROPLETS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    TIMEOUTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_RUNNING_FIELD_NUMBER: _ClassVar[int]
    WORK_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LAUNCHES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    droplets_total: int
    droplets_leased: int
    droplets_expired: int
    queue_depth: int
    timeouts_total: int
    hosts: int
    throttle: _common_pb2.Throttle
    instances_running: int
    work_in_flight: int
    launches_per_second: float
    def __init__(self, droplets_total: _Optional[int] = ..., droplets_leased: _Optional[int] = ..., droplets_expired: _Optional[int] = ..., queue_depth: _Optional[int] = ..., timeouts_total: _Optional[int] = ..., hosts: _Optional[int] = ..., throttle: _Optional[_Union[_common_pb2.Throttle, _Mapping]] = ..., instances_running: _Optional[int] = ..., work_in_flight: _Optional[int] = ..., launches_per_second: _Optional[float] = ...) -> None: ...

class SetWorkflowThrottleRequest(_message.Message):
    __slots__ = ("requests_per_second", "enabled", "launches_per_second")
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    LAUNCHES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    requests_per_second: float
    enabled: bool
    launches_per_second: float
    def __init__(self, requests_per_second: _Optional[float] = ..., enabled: _Optional[bool] = ..., launches_per_second: _Optional[float] = ...) -> None: ...

class SetWorkflowThrottleResponse(_message.Message):
    __slots__ = ("throttle", "launches_per_second")
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    LAUNCHES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    throttle: _common_pb2.Throttle
    launches_per_second: float
    def __init__(self, throttle: _Optional[_Union[_common_pb2.Throttle, _Mapping]] = ..., launches_per_second: _Optional[float] = ...) -> None: ...

class RelaxThrottleRequest(_message.Message):
    __slots__ = ("relax_over_seconds", "to_launches_per_second")
    RELAX_OVER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TO_LAUNCHES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    relax_over_seconds: float
    to_launches_per_second: float
    def __init__(self, relax_over_seconds: _Optional[float] = ..., to_launches_per_second: _Optional[float] = ...) -> None: ...

class RelaxThrottleResponse(_message.Message):
    __slots__ = ("launches_per_second",)
    LAUNCHES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    launches_per_second: float
    def __init__(self, launches_per_second: _Optional[float] = ...) -> None: ...

class RestartHostsRequest(_message.Message):
    __slots__ = ("host_ids", "count")
    HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    host_ids: HostIds
    count: int
    def __init__(self, host_ids: _Optional[_Union[HostIds, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class HostIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RestartHostsResponse(_message.Message):
    __slots__ = ("restarted_host_ids", "dropped_work_items")
    RESTARTED_HOST_IDS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_WORK_ITEMS_FIELD_NUMBER: _ClassVar[int]
    restarted_host_ids: _containers.RepeatedScalarFieldContainer[str]
    dropped_work_items: int
    def __init__(self, restarted_host_ids: _Optional[_Iterable[str]] = ..., dropped_work_items: _Optional[int] = ...) -> None: ...

class InstanceIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TerminateInstancesRequest(_message.Message):
    __slots__ = ("instance_ids", "count", "group")
    INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    instance_ids: InstanceIds
    count: int
    group: str
    def __init__(self, instance_ids: _Optional[_Union[InstanceIds, _Mapping]] = ..., count: _Optional[int] = ..., group: _Optional[str] = ...) -> None: ...

class TerminateInstancesResponse(_message.Message):
    __slots__ = ("terminated_instance_ids", "held")
    TERMINATED_INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    terminated_instance_ids: _containers.RepeatedScalarFieldContainer[str]
    held: int
    def __init__(self, terminated_instance_ids: _Optional[_Iterable[str]] = ..., held: _Optional[int] = ...) -> None: ...
