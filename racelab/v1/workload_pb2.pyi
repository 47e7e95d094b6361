from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeClientsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClientStats(_message.Message):
    __slots__ = ("kind", "success_total", "error_total", "last_error", "last_error_sim_seconds")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_TOTAL_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_SIM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    success_total: int
    error_total: int
    last_error: str
    last_error_sim_seconds: float
    def __init__(self, kind: _Optional[str] = ..., success_total: _Optional[int] = ..., error_total: _Optional[int] = ..., last_error: _Optional[str] = ..., last_error_sim_seconds: _Optional[float] = ...) -> None: ...

class DescribeClientsResponse(_message.Message):
    __slots__ = ("clients",)
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    clients: _containers.RepeatedCompositeFieldContainer[ClientStats]
    def __init__(self, clients: _Optional[_Iterable[_Union[ClientStats, _Mapping]]] = ...) -> None: ...

class ControlRequest(_message.Message):
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

class ControlResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
