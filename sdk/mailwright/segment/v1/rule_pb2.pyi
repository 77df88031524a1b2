import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATOR_UNSPECIFIED: _ClassVar[Operator]
    OPERATOR_EQUAL: _ClassVar[Operator]
    OPERATOR_NOT_EQUAL: _ClassVar[Operator]
    OPERATOR_LESS: _ClassVar[Operator]
    OPERATOR_LESS_OR_EQUAL: _ClassVar[Operator]
    OPERATOR_GREATER: _ClassVar[Operator]
    OPERATOR_GREATER_OR_EQUAL: _ClassVar[Operator]
    OPERATOR_IN: _ClassVar[Operator]
    OPERATOR_NOT_IN: _ClassVar[Operator]
    OPERATOR_CONTAINS: _ClassVar[Operator]
    OPERATOR_STARTS_WITH: _ClassVar[Operator]
    OPERATOR_EXISTS: _ClassVar[Operator]
    OPERATOR_NOT_EXISTS: _ClassVar[Operator]

class DateOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATE_OPERATOR_UNSPECIFIED: _ClassVar[DateOperator]
    DATE_OPERATOR_BEFORE: _ClassVar[DateOperator]
    DATE_OPERATOR_AFTER: _ClassVar[DateOperator]

class Aggregate(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATE_UNSPECIFIED: _ClassVar[Aggregate]
    AGGREGATE_SUM: _ClassVar[Aggregate]
    AGGREGATE_AVERAGE: _ClassVar[Aggregate]
    AGGREGATE_MIN: _ClassVar[Aggregate]
    AGGREGATE_MAX: _ClassVar[Aggregate]

class EmailAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EMAIL_ACTION_UNSPECIFIED: _ClassVar[EmailAction]
    EMAIL_ACTION_OPENED: _ClassVar[EmailAction]
    EMAIL_ACTION_CLICKED: _ClassVar[EmailAction]
    EMAIL_ACTION_OPENED_OR_CLICKED: _ClassVar[EmailAction]
OPERATOR_UNSPECIFIED: Operator
OPERATOR_EQUAL: Operator
OPERATOR_NOT_EQUAL: Operator
OPERATOR_LESS: Operator
OPERATOR_LESS_OR_EQUAL: Operator
OPERATOR_GREATER: Operator
OPERATOR_GREATER_OR_EQUAL: Operator
OPERATOR_IN: Operator
OPERATOR_NOT_IN: Operator
OPERATOR_CONTAINS: Operator
OPERATOR_STARTS_WITH: Operator
OPERATOR_EXISTS: Operator
OPERATOR_NOT_EXISTS: Operator
DATE_OPERATOR_UNSPECIFIED: DateOperator
DATE_OPERATOR_BEFORE: DateOperator
DATE_OPERATOR_AFTER: DateOperator
AGGREGATE_UNSPECIFIED: Aggregate
AGGREGATE_SUM: Aggregate
AGGREGATE_AVERAGE: Aggregate
AGGREGATE_MIN: Aggregate
AGGREGATE_MAX: Aggregate
EMAIL_ACTION_UNSPECIFIED: EmailAction
EMAIL_ACTION_OPENED: EmailAction
EMAIL_ACTION_CLICKED: EmailAction
EMAIL_ACTION_OPENED_OR_CLICKED: EmailAction

class Rule(_message.Message):
    __slots__ = ("conjunction", "disjunction", "negation", "trait", "trait_date", "trait_within_last", "event_count", "event_aggregate", "did_not_perform", "sequence", "last_emails_engagement", "window_engagement", "segment_membership")
    CONJUNCTION_FIELD_NUMBER: _ClassVar[int]
    DISJUNCTION_FIELD_NUMBER: _ClassVar[int]
    NEGATION_FIELD_NUMBER: _ClassVar[int]
    TRAIT_FIELD_NUMBER: _ClassVar[int]
    TRAIT_DATE_FIELD_NUMBER: _ClassVar[int]
    TRAIT_WITHIN_LAST_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENT_AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    DID_NOT_PERFORM_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_EMAILS_ENGAGEMENT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ENGAGEMENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_MEMBERSHIP_FIELD_NUMBER: _ClassVar[int]
    conjunction: And
    disjunction: Or
    negation: Not
    trait: TraitCondition
    trait_date: TraitDateCondition
    trait_within_last: TraitWithinLast
    event_count: EventCount
    event_aggregate: EventAggregate
    did_not_perform: DidNotPerform
    sequence: Sequence
    last_emails_engagement: LastEmailsEngagement
    window_engagement: WindowEngagement
    segment_membership: SegmentMembership
    def __init__(self, conjunction: _Optional[_Union[And, _Mapping]] = ..., disjunction: _Optional[_Union[Or, _Mapping]] = ..., negation: _Optional[_Union[Not, _Mapping]] = ..., trait: _Optional[_Union[TraitCondition, _Mapping]] = ..., trait_date: _Optional[_Union[TraitDateCondition, _Mapping]] = ..., trait_within_last: _Optional[_Union[TraitWithinLast, _Mapping]] = ..., event_count: _Optional[_Union[EventCount, _Mapping]] = ..., event_aggregate: _Optional[_Union[EventAggregate, _Mapping]] = ..., did_not_perform: _Optional[_Union[DidNotPerform, _Mapping]] = ..., sequence: _Optional[_Union[Sequence, _Mapping]] = ..., last_emails_engagement: _Optional[_Union[LastEmailsEngagement, _Mapping]] = ..., window_engagement: _Optional[_Union[WindowEngagement, _Mapping]] = ..., segment_membership: _Optional[_Union[SegmentMembership, _Mapping]] = ...) -> None: ...

class And(_message.Message):
    __slots__ = ("conditions",)
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, conditions: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class Or(_message.Message):
    __slots__ = ("conditions",)
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, conditions: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class Not(_message.Message):
    __slots__ = ("condition",)
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    condition: Rule
    def __init__(self, condition: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class TraitCondition(_message.Message):
    __slots__ = ("trait", "operator", "value")
    TRAIT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    trait: str
    operator: Operator
    value: _struct_pb2.Value
    def __init__(self, trait: _Optional[str] = ..., operator: _Optional[_Union[Operator, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class TraitDateCondition(_message.Message):
    __slots__ = ("trait", "operator", "date")
    TRAIT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    trait: str
    operator: DateOperator
    date: _timestamp_pb2.Timestamp
    def __init__(self, trait: _Optional[str] = ..., operator: _Optional[_Union[DateOperator, str]] = ..., date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TraitWithinLast(_message.Message):
    __slots__ = ("trait", "period", "negated")
    TRAIT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    NEGATED_FIELD_NUMBER: _ClassVar[int]
    trait: str
    period: _duration_pb2.Duration
    negated: bool
    def __init__(self, trait: _Optional[str] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., negated: _Optional[bool] = ...) -> None: ...

class Window(_message.Message):
    __slots__ = ("last", "between", "ever")
    LAST_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_FIELD_NUMBER: _ClassVar[int]
    EVER_FIELD_NUMBER: _ClassVar[int]
    last: _duration_pb2.Duration
    between: DateRange
    ever: bool
    def __init__(self, last: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., between: _Optional[_Union[DateRange, _Mapping]] = ..., ever: _Optional[bool] = ...) -> None: ...

class DateRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PropertyFilter(_message.Message):
    __slots__ = ("property", "operator", "value")
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    property: str
    operator: Operator
    value: _struct_pb2.Value
    def __init__(self, property: _Optional[str] = ..., operator: _Optional[_Union[Operator, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class EventSpec(_message.Message):
    __slots__ = ("event", "filters")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    event: str
    filters: _containers.RepeatedCompositeFieldContainer[PropertyFilter]
    def __init__(self, event: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[PropertyFilter, _Mapping]]] = ...) -> None: ...

class EventCount(_message.Message):
    __slots__ = ("event", "filters", "operator", "count", "window")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    event: str
    filters: _containers.RepeatedCompositeFieldContainer[PropertyFilter]
    operator: Operator
    count: int
    window: Window
    def __init__(self, event: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[PropertyFilter, _Mapping]]] = ..., operator: _Optional[_Union[Operator, str]] = ..., count: _Optional[int] = ..., window: _Optional[_Union[Window, _Mapping]] = ...) -> None: ...

class EventAggregate(_message.Message):
    __slots__ = ("aggregate", "property", "event", "filters", "window", "operator", "value")
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    aggregate: Aggregate
    property: str
    event: str
    filters: _containers.RepeatedCompositeFieldContainer[PropertyFilter]
    window: Window
    operator: Operator
    value: _struct_pb2.Value
    def __init__(self, aggregate: _Optional[_Union[Aggregate, str]] = ..., property: _Optional[str] = ..., event: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[PropertyFilter, _Mapping]]] = ..., window: _Optional[_Union[Window, _Mapping]] = ..., operator: _Optional[_Union[Operator, str]] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class DidNotPerform(_message.Message):
    __slots__ = ("event", "filters", "window")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    event: str
    filters: _containers.RepeatedCompositeFieldContainer[PropertyFilter]
    window: Window
    def __init__(self, event: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[PropertyFilter, _Mapping]]] = ..., window: _Optional[_Union[Window, _Mapping]] = ...) -> None: ...

class Sequence(_message.Message):
    __slots__ = ("first", "min_count", "window", "then", "within", "negated", "per")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    THEN_FIELD_NUMBER: _ClassVar[int]
    WITHIN_FIELD_NUMBER: _ClassVar[int]
    NEGATED_FIELD_NUMBER: _ClassVar[int]
    PER_FIELD_NUMBER: _ClassVar[int]
    first: EventSpec
    min_count: int
    window: Window
    then: EventSpec
    within: _duration_pb2.Duration
    negated: bool
    per: str
    def __init__(self, first: _Optional[_Union[EventSpec, _Mapping]] = ..., min_count: _Optional[int] = ..., window: _Optional[_Union[Window, _Mapping]] = ..., then: _Optional[_Union[EventSpec, _Mapping]] = ..., within: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., negated: _Optional[bool] = ..., per: _Optional[str] = ...) -> None: ...

class LastEmailsEngagement(_message.Message):
    __slots__ = ("action", "last", "min_count")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    action: EmailAction
    last: int
    min_count: int
    def __init__(self, action: _Optional[_Union[EmailAction, str]] = ..., last: _Optional[int] = ..., min_count: _Optional[int] = ...) -> None: ...

class WindowEngagement(_message.Message):
    __slots__ = ("action", "window", "min_count")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    action: EmailAction
    window: Window
    min_count: int
    def __init__(self, action: _Optional[_Union[EmailAction, str]] = ..., window: _Optional[_Union[Window, _Mapping]] = ..., min_count: _Optional[int] = ...) -> None: ...

class SegmentMembership(_message.Message):
    __slots__ = ("segment", "negated")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    NEGATED_FIELD_NUMBER: _ClassVar[int]
    segment: str
    negated: bool
    def __init__(self, segment: _Optional[str] = ..., negated: _Optional[bool] = ...) -> None: ...
