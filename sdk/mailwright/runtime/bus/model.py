"""What travels on the bus and what operators see of it.

Messages, dead letters, consumer tuning and statistics are plain frozen dataclasses shared
by both backends; the validation of names, keys and headers lives here too, so that a bad
publish fails the same way whichever backend is configured.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

TOPIC_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,126}$")
GROUP_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$")
CONSUMER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$")
MAX_KEY_CHARS = 512
MAX_HEADERS = 64
MAX_HEADER_CHARS = 4096

RESERVED_HEADER_PREFIX = "mailwright-"
REPLAY_GROUP_HEADER = "mailwright-replay-group"
"""Set on a replayed dead letter: only the group that dead-lettered it handles it again."""


class BusError(Exception):
    """Something went wrong on the bus."""


class BusUnavailable(BusError):
    """The bus server cannot be reached; the operation may be retried (gRPC UNAVAILABLE)."""


class InvalidMessage(BusError, ValueError):
    """A topic, key, header or value is not acceptable; the message names the field."""


class BusMismatch(BusError):
    """This process disagrees with the bus about its layout (e.g. the partition count)."""


@dataclass(frozen=True)
class Message:
    """One delivery of a published message to a consumer group."""

    topic: str
    key: str
    value: bytes
    headers: Mapping[str, str]
    id: str
    """`<topic>/<partition>/<stream entry id>`, unique on the bus; what `publish` returned."""
    partition: int
    delivery_count: int

    @property
    def published_at(self) -> datetime:
        """When the message was published (the bus's clock, to the millisecond), read
        from its id when asked for: most handlers never ask."""
        return id_time(self.id)


@dataclass(frozen=True)
class Outgoing:
    """A message to publish with `Bus.publish_many`."""

    topic: str
    key: str
    value: bytes
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message that failed `delivery_count` times in `group` and was set aside."""

    id: str
    """The dead letter's own id within its topic's dead-letter stream (for replay)."""
    topic: str
    key: str
    value: bytes
    headers: Mapping[str, str]
    group: str
    partition: int
    original_id: str
    delivery_count: int
    error: str
    published_at: datetime
    failed_at: datetime


@dataclass(frozen=True)
class ConsumerOptions:
    """Timings of a subscription; the defaults suit production, tests shorten them.

    - `lease_ttl`: a partition lease lapses this long after its holder last renewed it
      (renewed every third of it), so a dead consumer's partitions move after at most this.
    - `claim_idle`: another consumer's pending message is claimed (XAUTOCLAIM) once it has
      been idle this long; also the ceiling of the retry backoff.
    - `retry_backoff`: wait before the first redelivery of a failed message; doubles with
      each delivery, up to `claim_idle`.
    - `batch_size`: messages read per partition per round; `block`: longest wait for new
      messages in one read (and so the longest a graceful stop waits for the read).
    - `retention`: acknowledged messages older than this are trimmed from the streams;
      unacknowledged ones are always kept.
    - `read_ahead`: rounds a batch subscription reads and hands in while earlier rounds'
      handlers are still running (0: the next read waits for them). A batch handler
      used with it is called with a partition's next messages while it still waits on
      the previous ones, so it must take its messages, in order, before it first
      awaits; each round is acked as its handlers return. Reading ahead pauses while
      the consumer claims, retries or hands back partitions, so those never overtake
      what is in hand.
    """

    lease_ttl: float = 10.0
    claim_idle: float = 15.0
    retry_backoff: float = 1.0
    batch_size: int = 64
    block: float = 1.0
    retention: float = 3600.0
    housekeeping_interval: float = 30.0
    read_ahead: int = 0

    def __post_init__(self) -> None:
        for name in ("lease_ttl", "claim_idle", "retry_backoff", "block", "housekeeping_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ConsumerOptions.{name} must be positive")
        if self.block > 10:
            raise ValueError("ConsumerOptions.block must be at most 10 seconds")
        if self.retention < 0:
            raise ValueError("ConsumerOptions.retention must not be negative")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("ConsumerOptions.batch_size must be between 1 and 10000")
        if not 0 <= self.read_ahead <= 8:
            raise ValueError("ConsumerOptions.read_ahead must be between 0 and 8")

    def backoff(self, deliveries: int) -> float:
        """How long a message delivered `deliveries` times waits before the next try."""
        exponent = min(max(deliveries - 1, 0), 30)
        return min(self.retry_backoff * float(2**exponent), self.claim_idle)


@dataclass(frozen=True)
class GroupPartitionStats:
    """One consumer group's view of one partition."""

    group: str
    pending: int
    lag: int | None
    """Messages not yet delivered to the group; None when the server cannot tell."""
    lease_holder: str | None
    consumers: tuple[str, ...]


@dataclass(frozen=True)
class PartitionStats:
    topic: str
    partition: int
    length: int
    """Messages retained in the partition's stream (delivered or not)."""
    groups: tuple[GroupPartitionStats, ...]


@dataclass(frozen=True)
class ConsumerInfo:
    """A live consumer: one that renewed its heartbeat within its lease time."""

    group: str
    name: str
    expires_in: float


@dataclass(frozen=True)
class BusStats:
    backend: str
    namespace: str
    partitions: int
    topics: tuple[PartitionStats, ...]
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    consumers: tuple[ConsumerInfo, ...] = ()


@functools.lru_cache(maxsize=65_536)
def partition_for(key: str, partitions: int) -> int:
    """The partition of `key`: a stable hash, the same in every process and release
    (remembered: a person's key comes back with each of their messages)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def id_time(message_id: str) -> datetime:
    """The time encoded in a stream entry id (`<milliseconds>-<sequence>`) or a message id."""
    milliseconds = int(message_id.rpartition("/")[2].partition("-")[0])
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def message_id(topic: str, partition: int, entry_id: str) -> str:
    """A message's id on the bus: `<topic>/<partition>/<stream entry id>`, unique per bus
    (stream entry ids alone repeat across partitions)."""
    return f"{topic}/{partition}/{entry_id}"


_KNOWN_TOPICS: set[str] = set()  # names already found valid (a process uses a few)


def check_topic(topic: object, field_name: str = "topic") -> str:
    if type(topic) is str and topic in _KNOWN_TOPICS:
        return topic
    if not isinstance(topic, str) or not TOPIC_PATTERN.fullmatch(topic):
        raise InvalidMessage(
            f"{field_name}: {topic!r} is not a topic name (lowercase letters, digits, "
            "'.', '_', '-'; at most 127 characters)"
        )
    if len(_KNOWN_TOPICS) < 4096:
        _KNOWN_TOPICS.add(topic)
    return topic


def check_group(group: object) -> str:
    if not isinstance(group, str) or not GROUP_PATTERN.fullmatch(group):
        raise InvalidMessage(
            f"group: {group!r} is not a group name (letters, digits, '.', '_', '-')"
        )
    return group


def check_consumer(consumer: object) -> str:
    if not isinstance(consumer, str) or not CONSUMER_PATTERN.fullmatch(consumer):
        raise InvalidMessage(
            f"consumer: {consumer!r} is not a consumer name (letters, digits, '.', '_', '-', '@')"
        )
    return consumer


def check_outgoing(message: Outgoing, max_value_bytes: int) -> dict[str, str]:
    """Validate one message to publish; return a fresh copy of its headers."""
    if not isinstance(message, Outgoing):
        raise InvalidMessage(f"messages: expected Outgoing, not {type(message).__name__}")
    check_topic(message.topic)
    key = message.key
    if not isinstance(key, str) or not key:
        raise InvalidMessage("key: must be a non-empty string")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidMessage(f"key: longer than {MAX_KEY_CHARS} characters")
    if not isinstance(message.value, bytes | bytearray | memoryview):
        raise InvalidMessage(f"value: must be bytes, not {type(message.value).__name__}")
    if len(message.value) > max_value_bytes:
        raise InvalidMessage(
            f"value: {len(message.value)} bytes is more than the limit of {max_value_bytes}"
        )
    return check_headers(message.headers)


def check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidMessage("headers: must be a mapping of strings to strings")
    if len(headers) > MAX_HEADERS:
        raise InvalidMessage(f"headers: more than {MAX_HEADERS} entries")
    copied: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name or len(name) > 256:
            raise InvalidMessage(f"headers: {name!r} is not a header name")
        if name.lower().startswith(RESERVED_HEADER_PREFIX):
            raise InvalidMessage(f"headers.{name}: names starting with 'mailwright-' are reserved")
        if not isinstance(value, str) or len(value) > MAX_HEADER_CHARS:
            raise InvalidMessage(
                f"headers.{name}: must be a string of at most {MAX_HEADER_CHARS} characters"
            )
        copied[name] = value
    return copied
