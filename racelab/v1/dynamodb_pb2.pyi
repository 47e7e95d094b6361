from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ItemKey(_message.Message):
    __slots__ = ("partition_key", "sort_key")
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    SORT_KEY_FIELD_NUMBER: _ClassVar[int]
    partition_key: str
    sort_key: str
    def __init__(self, partition_key: _Optional[str] = ..., sort_key: _Optional[str] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("key", "attributes", "version")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key: ItemKey
    attributes: _containers.ScalarMap[str, str]
    version: int
    def __init__(self, key: _Optional[_Union[ItemKey, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., version: _Optional[int] = ...) -> None: ...

class WriteCondition(_message.Message):
    __slots__ = ("expected_version", "must_not_exist")
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    MUST_NOT_EXIST_FIELD_NUMBER: _ClassVar[int]
    expected_version: int
    must_not_exist: bool
    def __init__(self, expected_version: _Optional[int] = ..., must_not_exist: _Optional[bool] = ...) -> None: ...

class GetItemRequest(_message.Message):
    __slots__ = ("table", "key", "consistent_read")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_READ_FIELD_NUMBER: _ClassVar[int]
    table: str
    key: ItemKey
    consistent_read: bool
    def __init__(self, table: _Optional[str] = ..., key: _Optional[_Union[ItemKey, _Mapping]] = ..., consistent_read: _Optional[bool] = ...) -> None: ...

class GetItemResponse(_message.Message):
    __slots__ = ("found", "item", "lb_id")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    found: bool
    item: Item
    lb_id: str
    def __init__(self, found: _Optional[bool] = ..., item: _Optional[_Union[Item, _Mapping]] = ..., lb_id: _Optional[str] = ...) -> None: ...

class PutItemRequest(_message.Message):
    __slots__ = ("table", "key", "attributes", "condition")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    table: str
    key: ItemKey
    attributes: _containers.ScalarMap[str, str]
    condition: WriteCondition
    def __init__(self, table: _Optional[str] = ..., key: _Optional[_Union[ItemKey, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., condition: _Optional[_Union[WriteCondition, _Mapping]] = ...) -> None: ...

class PutItemResponse(_message.Message):
    __slots__ = ("item", "lb_id")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    item: Item
    lb_id: str
    def __init__(self, item: _Optional[_Union[Item, _Mapping]] = ..., lb_id: _Optional[str] = ...) -> None: ...

class DeleteItemRequest(_message.Message):
    __slots__ = ("table", "key", "condition")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    table: str
    key: ItemKey
    condition: WriteCondition
    def __init__(self, table: _Optional[str] = ..., key: _Optional[_Union[ItemKey, _Mapping]] = ..., condition: _Optional[_Union[WriteCondition, _Mapping]] = ...) -> None: ...

class DeleteItemResponse(_message.Message):
    __slots__ = ("deleted", "lb_id")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    lb_id: str
    def __init__(self, deleted: _Optional[bool] = ..., lb_id: _Optional[str] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("table", "partition_key", "limit", "start_after_sort_key")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_SORT_KEY_FIELD_NUMBER: _ClassVar[int]
    table: str
    partition_key: str
    limit: int
    start_after_sort_key: str
    def __init__(self, table: _Optional[str] = ..., partition_key: _Optional[str] = ..., limit: _Optional[int] = ..., start_after_sort_key: _Optional[str] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("items", "last_evaluated_sort_key", "lb_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    LAST_EVALUATED_SORT_KEY_FIELD_NUMBER: _ClassVar[int]
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    last_evaluated_sort_key: str
    lb_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., last_evaluated_sort_key: _Optional[str] = ..., lb_id: _Optional[str] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("key", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    key: ItemKey
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, key: _Optional[_Union[ItemKey, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BatchWriteItemRequest(_message.Message):
    __slots__ = ("table", "puts")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PUTS_FIELD_NUMBER: _ClassVar[int]
    table: str
    puts: _containers.RepeatedCompositeFieldContainer[PutRequest]
    def __init__(self, table: _Optional[str] = ..., puts: _Optional[_Iterable[_Union[PutRequest, _Mapping]]] = ...) -> None: ...

class BatchWriteItemResponse(_message.Message):
    __slots__ = ("written", "lb_id")
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    LB_ID_FIELD_NUMBER: _ClassVar[int]
    written: int
    lb_id: str
    def __init__(self, written: _Optional[int] = ..., lb_id: _Optional[str] = ...) -> None: ...
