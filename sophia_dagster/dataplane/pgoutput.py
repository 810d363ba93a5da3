"""Decoder of PostgreSQL's ``pgoutput`` logical replication protocol (version 1).

Each row returned by ``pg_logical_slot_peek_binary_changes(..., 'proto_version', '1', ...)`` carries one
message; :func:`decode` turns its bytes into one of the dataclasses below. Tuple values stay in their text
form (or :data:`UNCHANGED_TOAST`); :mod:`.values` converts them by type OID.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sophia_dagster.dataplane.errors import DecodeError

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class _UnchangedToast:
    """Marker for a TOASTed value the update did not touch (the old value stays)."""

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST = _UnchangedToast()
TupleValue = str | None | _UnchangedToast


@dataclass(frozen=True)
class Column:
    """One column of a relation as pgoutput describes it."""

    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True)
class Relation:
    """A table's shape, sent before its first change in a decoding session and after every DDL."""

    relation_id: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Begin:
    """Start of a transaction: the LSN of its commit record, its commit time and xid."""

    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    """End of a transaction: the commit record's LSN and the LSN just past it."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True)
class Origin:
    """The replication origin a transaction came from."""

    commit_lsn: int
    name: str


@dataclass(frozen=True)
class TypeInfo:
    """A non-builtin data type used by a following Relation message."""

    type_oid: int
    namespace: str
    name: str


@dataclass(frozen=True)
class Insert:
    """A new row."""

    relation_id: int
    new: tuple[TupleValue, ...]


@dataclass(frozen=True)
class Update:
    """A changed row; ``old`` is the key ('K') or whole old row ('O') when the replica identity sends it."""

    relation_id: int
    old: tuple[TupleValue, ...] | None
    old_kind: str | None
    new: tuple[TupleValue, ...]


@dataclass(frozen=True)
class Delete:
    """A removed row: its key ('K') or, with REPLICA IDENTITY FULL, its whole old row ('O')."""

    relation_id: int
    old: tuple[TupleValue, ...]
    old_kind: str


@dataclass(frozen=True)
class Truncate:
    """TRUNCATE of one or more relations."""

    relation_ids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True)
class LogicalMessage:
    """A ``pg_logical_emit_message`` payload (sent only with the ``messages`` option)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = Begin | Commit | Origin | Relation | TypeInfo | Insert | Update | Delete | Truncate | LogicalMessage


class _Reader:
    """Sequential big-endian reader over one message."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def _unpack(self, fmt: str, size: int) -> int:
        if self.pos + size > len(self.data):
            raise DecodeError(f"message truncated at byte {self.pos} (wanted {size} more)")
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += size
        return value

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise DecodeError(f"message truncated at byte {self.pos} (wanted {size} more)")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def int8(self) -> int:
        return self._unpack(">B", 1)

    def byte(self) -> str:
        return chr(self.int8())

    def int16(self) -> int:
        return self._unpack(">h", 2)

    def int32(self) -> int:
        return self._unpack(">i", 4)

    def uint32(self) -> int:
        return self._unpack(">I", 4)

    def int64(self) -> int:
        return self._unpack(">q", 8)

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError(f"unterminated string at byte {self.pos}")
        value = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return value

    def timestamp(self) -> datetime:
        return PG_EPOCH + timedelta(microseconds=self.int64())

    def tuple_data(self) -> tuple[TupleValue, ...]:
        values: list[TupleValue] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED_TOAST)
            elif kind == "t":
                values.append(self.take(self.int32()).decode("utf-8"))
            else:
                raise DecodeError(f"unsupported tuple value kind {kind!r} (binary mode is not used)")
        return tuple(values)


def _relation(r: _Reader) -> Relation:
    relation_id, namespace, name, identity = r.uint32(), r.string(), r.string(), r.byte()
    columns = []
    for _ in range(r.int16()):
        flags, column_name, type_oid, modifier = r.int8(), r.string(), r.uint32(), r.int32()
        columns.append(Column(column_name, type_oid, modifier, bool(flags & 1)))
    return Relation(relation_id, namespace, name, identity, tuple(columns))


def _update(r: _Reader) -> Update:
    relation_id, kind = r.uint32(), r.byte()
    old = None
    old_kind = None
    if kind in ("K", "O"):
        old_kind, old = kind, r.tuple_data()
        kind = r.byte()
    if kind != "N":
        raise DecodeError(f"update message without a new tuple (got {kind!r})")
    return Update(relation_id, old, old_kind, r.tuple_data())


def _delete(r: _Reader) -> Delete:
    relation_id, kind = r.uint32(), r.byte()
    if kind not in ("K", "O"):
        raise DecodeError(f"delete message without an old tuple (got {kind!r})")
    return Delete(relation_id, r.tuple_data(), kind)


def _insert(r: _Reader) -> Insert:
    relation_id, kind = r.uint32(), r.byte()
    if kind != "N":
        raise DecodeError(f"insert message without a new tuple (got {kind!r})")
    return Insert(relation_id, r.tuple_data())


def _truncate(r: _Reader) -> Truncate:
    count, options = r.int32(), r.int8()
    return Truncate(tuple(r.uint32() for _ in range(count)), bool(options & 1), bool(options & 2))


def _message(r: _Reader) -> LogicalMessage:
    flags, lsn, prefix = r.int8(), r.int64(), r.string()
    return LogicalMessage(bool(flags & 1), lsn, prefix, r.take(r.int32()))


_DECODERS = {
    "B": lambda r: Begin(r.int64(), r.timestamp(), r.uint32()),
    "C": lambda r: Commit(r.int8(), r.int64(), r.int64(), r.timestamp()),
    "O": lambda r: Origin(r.int64(), r.string()),
    "R": _relation,
    "Y": lambda r: TypeInfo(r.uint32(), r.string(), r.string()),
    "I": _insert,
    "U": _update,
    "D": _delete,
    "T": _truncate,
    "M": _message,
}


def decode(data: bytes) -> Message:
    """Decode one pgoutput v1 message."""
    if not data:
        raise DecodeError("empty message")
    reader = _Reader(data)
    tag = reader.byte()
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise DecodeError(f"unknown pgoutput message type {tag!r}")
    return decoder(reader)


def lsn_to_int(text: str) -> int:
    """``'16/B374D848'`` -> the 64-bit position."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_to_str(value: int) -> str:
    """The 64-bit position -> PostgreSQL's ``'16/B374D848'`` form."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
