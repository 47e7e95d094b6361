from racelab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_ACTION_UNSPECIFIED: _ClassVar[ChangeAction]
    CREATE: _ClassVar[ChangeAction]
    DELETE: _ClassVar[ChangeAction]
    UPSERT: _ClassVar[ChangeAction]
CHANGE_ACTION_UNSPECIFIED: ChangeAction
CREATE: ChangeAction
DELETE: ChangeAction
UPSERT: ChangeAction

class Change(_message.Message):
    __slots__ = ("action", "record_set")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_SET_FIELD_NUMBER: _ClassVar[int]
    action: ChangeAction
    record_set: _common_pb2.ResourceRecordSet
    def __init__(self, action: _Optional[_Union[ChangeAction, str]] = ..., record_set: _Optional[_Union[_common_pb2.ResourceRecordSet, _Mapping]] = ...) -> None: ...

class ChangeResourceRecordSetsRequest(_message.Message):
    __slots__ = ("hosted_zone", "changes", "comment")
    HOSTED_ZONE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    hosted_zone: str
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    comment: str
    def __init__(self, hosted_zone: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ..., comment: _Optional[str] = ...) -> None: ...

class ChangeResourceRecordSetsResponse(_message.Message):
    __slots__ = ("change_id", "zone_version")
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_VERSION_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    zone_version: int
    def __init__(self, change_id: _Optional[str] = ..., zone_version: _Optional[int] = ...) -> None: ...

class ListResourceRecordSetsRequest(_message.Message):
    __slots__ = ("hosted_zone", "start_record_name", "start_record_type", "start_record_identifier", "max_items")
    HOSTED_ZONE_FIELD_NUMBER: _ClassVar[int]
    START_RECORD_NAME_FIELD_NUMBER: _ClassVar[int]
    START_RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_RECORD_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    hosted_zone: str
    start_record_name: str
    start_record_type: _common_pb2.RRType
    start_record_identifier: str
    max_items: int
    def __init__(self, hosted_zone: _Optional[str] = ..., start_record_name: _Optional[str] = ..., start_record_type: _Optional[_Union[_common_pb2.RRType, str]] = ..., start_record_identifier: _Optional[str] = ..., max_items: _Optional[int] = ...) -> None: ...

class ListResourceRecordSetsResponse(_message.Message):
    __slots__ = ("record_sets", "zone_version", "is_truncated", "next_record_name", "next_record_type", "next_record_identifier")
    RECORD_SETS_FIELD_NUMBER: _ClassVar[int]
    ZONE_VERSION_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_RECORD_NAME_FIELD_NUMBER: _ClassVar[int]
    NEXT_RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    NEXT_RECORD_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    record_sets: _containers.RepeatedCompositeFieldContainer[_common_pb2.ResourceRecordSet]
    zone_version: int
    is_truncated: bool
    next_record_name: str
    next_record_type: _common_pb2.RRType
    next_record_identifier: str
    def __init__(self, record_sets: _Optional[_Iterable[_Union[_common_pb2.ResourceRecordSet, _Mapping]]] = ..., zone_version: _Optional[int] = ..., is_truncated: _Optional[bool] = ..., next_record_name: _Optional[str] = ..., next_record_type: _Optional[_Union[_common_pb2.RRType, str]] = ..., next_record_identifier: _Optional[str] = ...) -> None: ...

class ListHostedZonesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostedZone(_message.Message):
    __slots__ = ("name", "zone_version", "record_set_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_SET_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    zone_version: int
    record_set_count: int
    def __init__(self, name: _Optional[str] = ..., zone_version: _Optional[int] = ..., record_set_count: _Optional[int] = ...) -> None: ...

class ListHostedZonesResponse(_message.Message):
    __slots__ = ("hosted_zones",)
    HOSTED_ZONES_FIELD_NUMBER: _ClassVar[int]
    hosted_zones: _containers.RepeatedCompositeFieldContainer[HostedZone]
    def __init__(self, hosted_zones: _Optional[_Iterable[_Union[HostedZone, _Mapping]]] = ...) -> None: ...

class BatchError(_message.Message):
    __slots__ = ("change_index", "code", "message")
    CHANGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    change_index: int
    code: str
    message: str
    def __init__(self, change_index: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class BatchErrors(_message.Message):
    __slots__ = ("errors", "omitted")
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    OMITTED_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[BatchError]
    omitted: int
    def __init__(self, errors: _Optional[_Iterable[_Union[BatchError, _Mapping]]] = ..., omitted: _Optional[int] = ...) -> None: ...
