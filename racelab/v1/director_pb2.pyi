from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("sim_time_seconds", "pdt_time", "phase", "scenario", "seed", "fixes", "speed")
    class FixesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    SIM_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PDT_TIME_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FIXES_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    sim_time_seconds: float
    pdt_time: str
    phase: str
    scenario: str
    seed: int
    fixes: _containers.ScalarMap[str, bool]
    speed: float
    def __init__(self, sim_time_seconds: _Optional[float] = ..., pdt_time: _Optional[str] = ..., phase: _Optional[str] = ..., scenario: _Optional[str] = ..., seed: _Optional[int] = ..., fixes: _Optional[_Mapping[str, bool]] = ..., speed: _Optional[float] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("sim_time_seconds", "source", "kind", "message", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SIM_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    sim_time_seconds: float
    source: str
    kind: str
    message: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, sim_time_seconds: _Optional[float] = ..., source: _Optional[str] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("since_sim_time_seconds", "kinds")
    SINCE_SIM_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    since_sim_time_seconds: float
    kinds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, since_sim_time_seconds: _Optional[float] = ..., kinds: _Optional[_Iterable[str]] = ...) -> None: ...

class PublishEventRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: Event
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class PublishEventResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PerformActionRequest(_message.Message):
    __slots__ = ("action", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    action: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, action: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PerformActionResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
