from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RRType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RR_TYPE_UNSPECIFIED: _ClassVar[RRType]
    A: _ClassVar[RRType]
    AAAA: _ClassVar[RRType]
    TXT: _ClassVar[RRType]
    CNAME: _ClassVar[RRType]
    SOA: _ClassVar[RRType]
    NS: _ClassVar[RRType]
RR_TYPE_UNSPECIFIED: RRType
A: RRType
AAAA: RRType
TXT: RRType
CNAME: RRType
SOA: RRType
NS: RRType

class AliasTarget(_message.Message):
    __slots__ = ("dns_name",)
    DNS_NAME_FIELD_NUMBER: _ClassVar[int]
    dns_name: str
    def __init__(self, dns_name: _Optional[str] = ...) -> None: ...

class ResourceRecordSet(_message.Message):
    __slots__ = ("name", "type", "ttl_seconds", "values", "set_identifier", "weight", "alias_target")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SET_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ALIAS_TARGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: RRType
    ttl_seconds: int
    values: _containers.RepeatedScalarFieldContainer[str]
    set_identifier: str
    weight: int
    alias_target: AliasTarget
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[RRType, str]] = ..., ttl_seconds: _Optional[int] = ..., values: _Optional[_Iterable[str]] = ..., set_identifier: _Optional[str] = ..., weight: _Optional[int] = ..., alias_target: _Optional[_Union[AliasTarget, _Mapping]] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("host", "port")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ...) -> None: ...

class Throttle(_message.Message):
    __slots__ = ("enabled", "requests_per_second")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    requests_per_second: float
    def __init__(self, enabled: _Optional[bool] = ..., requests_per_second: _Optional[float] = ...) -> None: ...
