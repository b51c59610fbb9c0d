"""The batch wire encoding, version 2 (``docs/wire-format.md``).

Transformers and routers receive their batch as one byte string; this
module turns it into :class:`~weir_plugin.event.Event` objects, and (for
native tests) events back into bytes. Column names shared between
consecutive events are shared here too: events of one run of a table hold
the *same* ``names`` list object, so a plugin can cache per-layout work with
an ``is`` comparison.

Values are plain Python where Python has the type, and thin subclasses
where the type matters to the host:

=============  ==============================
wire           Python
=============  ==============================
null           ``None``
boolean        ``bool``
int            ``int``
float          ``float``
text           ``str``
bytes          ``bytes``
decimal        :class:`Decimal` (a ``str``)
json           :class:`Json` (a ``str``)
uuid           :class:`Uuid` (a ``str``)
date           :class:`Date` (an ``int``, days since 1970-01-01)
time           :class:`Time` (an ``int``, µs since midnight)
timestamp      :class:`Timestamp` (an ``int``, µs since the epoch)
timestamptz    :class:`TimestampTz` (an ``int``, µs since the epoch, UTC)
unchanged      :data:`UNCHANGED`
=============  ==============================

So ``type(value) is str`` is true exactly for text values.
"""

import struct

from .event import Event, Row, Source

WIRE_VERSION = 2

# Event flags and the row flag.
_SAME_SOURCE = 1
_HAS_BEFORE = 2
_HAS_AFTER = 4
_HAS_TXID = 8
_HAS_ORIGIN = 16
_SAME_NAMES = 1

OPS = ("c", "u", "d", "t", "r")
_OP_CODES = {op: i for i, op in enumerate(OPS)}


class Decimal(str):
    """An exact decimal, as text (``"12.50"``)."""

    __slots__ = ()


class Json(str):
    """A JSON document, as text."""

    __slots__ = ()


class Uuid(str):
    """A lower-case hyphenated UUID."""

    __slots__ = ()


class Date(int):
    """Days since 1970-01-01."""

    __slots__ = ()


class Time(int):
    """Microseconds since midnight."""

    __slots__ = ()


class Timestamp(int):
    """Microseconds since the Unix epoch, no time zone."""

    __slots__ = ()


class TimestampTz(int):
    """Microseconds since the Unix epoch, UTC."""

    __slots__ = ()


class _Unchanged:
    __slots__ = ()

    def __repr__(self):
        return "UNCHANGED"


UNCHANGED = _Unchanged()
"""A value the source did not send (an unchanged TOAST column)."""


class WireError(ValueError):
    """The batch is not valid wire version 2."""


def decode_batch(buf):
    """Decodes ``buf`` into a list of :class:`~weir_plugin.event.Event`.

    Raises :class:`WireError` on anything that is not a well-formed batch.
    """
    buf = memoryview(buf).tobytes() if not isinstance(buf, bytes) else buf
    end = len(buf)
    if end == 0:
        raise WireError("empty batch buffer: expected at least the wire version byte")
    if buf[0] != WIRE_VERSION:
        raise WireError(
            "batch uses wire version %d, this SDK reads version %d" % (buf[0], WIRE_VERSION)
        )
    pos = 1

    def fail(problem):
        raise WireError("malformed batch at byte %d: %s" % (pos, problem))

    def varint():
        nonlocal pos
        n = 0
        shift = 0
        while True:
            if pos >= end:
                fail("unexpected end")
            b = buf[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7
            if shift > 63:
                fail("varint too long")

    def zigzag():
        n = varint()
        return (n >> 1) ^ -(n & 1)

    def raw():
        nonlocal pos
        # Most lengths fit in one byte: skip the call.
        n = buf[pos] if pos < end else 0x80
        if n < 0x80:
            pos += 1
        else:
            n = varint()
        if n > end - pos:
            fail("length past the end of the batch")
        s = buf[pos : pos + n]
        pos += n
        return s

    def text():
        nonlocal pos
        n = buf[pos] if pos < end else 0x80
        if n < 0x80:
            pos += 1
        else:
            n = varint()
        if n > end - pos:
            fail("length past the end of the batch")
        start = pos
        pos += n
        try:
            return buf[start:pos].decode("utf-8")
        except UnicodeDecodeError:
            pos = start
            fail("text is not UTF-8")

    def value():
        nonlocal pos
        if pos >= end:
            fail("unexpected end")
        tag = buf[pos]
        pos += 1
        if tag == 5:
            return text()
        if tag == 2:
            return zigzag()
        if tag == 0:
            return None
        if tag == 1:
            if pos >= end:
                fail("unexpected end")
            b = buf[pos]
            pos += 1
            return b != 0
        if tag == 3:
            if end - pos < 8:
                fail("unexpected end")
            (f,) = struct.unpack_from("<d", buf, pos)
            pos += 8
            return f
        if tag == 4:
            return Decimal(text())
        if tag == 6:
            return raw()
        if tag == 7:
            return Json(text())
        if tag == 8:
            return Date(zigzag())
        if tag == 9:
            return Time(zigzag())
        if tag == 10:
            return Timestamp(zigzag())
        if tag == 11:
            return TimestampTz(zigzag())
        if tag == 12:
            return Uuid(text())
        if tag == 13:
            return UNCHANGED
        fail("unknown value tag %d" % tag)

    shared = [None, None, None]

    def row(slot):
        nonlocal pos
        if pos >= end:
            fail("unexpected end")
        flags = buf[pos]
        pos += 1
        n = varint()
        if flags & _SAME_NAMES:
            names = shared[slot]
            if names is None or len(names) != n:
                fail("row shares names with no previous row of its width")
        else:
            if n > end - pos:
                fail("column count past the end of the batch")
            names = [text() for _ in range(n)]
            shared[slot] = names
        return Row(names, [value() for _ in range(n)])

    count = varint()
    events = []
    src = None
    for _ in range(count):
        if end - pos < 2:
            fail("unexpected end")
        code = buf[pos]
        flags = buf[pos + 1]
        pos += 2
        if code > 4:
            fail("unknown op %d" % code)
        if flags & _SAME_SOURCE:
            if src is None:
                fail("first event refers to a previous source")
        else:
            src = (
                text(),
                text(),
                text(),
                text(),
                text() if flags & _HAS_ORIGIN else None,
            )
        position = text()
        txid = text() if flags & _HAS_TXID else None
        source = Source(
            src[0], src[1], src[2], src[3], position, txid, zigzag(), src[4]
        )
        key = row(0)
        before = row(1) if flags & _HAS_BEFORE else None
        after = row(2) if flags & _HAS_AFTER else None
        events.append(Event(OPS[code], source, key, before, after))
    if pos != end:
        fail("bytes after the last event")
    return events


def encode_batch(events):
    """Encodes events (anything with ``op``, ``source``, and ``key``,
    ``before``, ``after`` rows of ``names`` and ``values``) as a batch.
    The SDK's tests and :mod:`weir_plugin.testing` use it; the host encodes
    the batches plugins receive."""
    out = bytearray([WIRE_VERSION])
    _put_varint(out, len(events))
    prev = None
    for e in events:
        s = e.source
        same_source = prev is not None and (
            (prev.source.connector, prev.source.database, prev.source.schema)
            == (s.connector, s.database, s.schema)
            and (prev.source.table, prev.source.origin) == (s.table, s.origin)
        )
        flags = 0
        if same_source:
            flags |= _SAME_SOURCE
        if e.before is not None:
            flags |= _HAS_BEFORE
        if e.after is not None:
            flags |= _HAS_AFTER
        if s.txid is not None:
            flags |= _HAS_TXID
        if s.origin is not None:
            flags |= _HAS_ORIGIN
        out.append(_OP_CODES[e.op])
        out.append(flags)
        if not same_source:
            for part in (s.connector, s.database, s.schema, s.table):
                _put_str(out, part)
            if s.origin is not None:
                _put_str(out, s.origin)
        _put_str(out, s.position)
        if s.txid is not None:
            _put_str(out, s.txid)
        _put_zigzag(out, s.commit_time_us)
        for attr in ("key", "before", "after"):
            r = getattr(e, attr)
            if r is None:
                continue
            p = getattr(prev, attr) if prev is not None else None
            same = p is not None and list(p.names) == list(r.names)
            out.append(_SAME_NAMES if same else 0)
            _put_varint(out, len(r.names))
            if not same:
                for n in r.names:
                    _put_str(out, n)
            for v in r.values:
                put_value(out, v)
        prev = e
    return bytes(out)


_TAGGED = {
    Decimal: (4, "str"),
    Json: (7, "str"),
    Uuid: (12, "str"),
    Date: (8, "int"),
    Time: (9, "int"),
    Timestamp: (10, "int"),
    TimestampTz: (11, "int"),
}


def put_value(out, v):
    """Appends the encoding of one value."""
    t = type(v)
    if v is None:
        out.append(0)
    elif v is UNCHANGED:
        out.append(13)
    elif t is bool:
        out.append(1)
        out.append(1 if v else 0)
    elif t is int:
        out.append(2)
        _put_zigzag(out, v)
    elif t is float:
        out.append(3)
        out += struct.pack("<d", v)
    elif t is str:
        out.append(5)
        _put_str(out, v)
    elif t is bytes or t is bytearray:
        out.append(6)
        _put_varint(out, len(v))
        out += v
    elif t in _TAGGED:
        tag, kind = _TAGGED[t]
        out.append(tag)
        if kind == "str":
            _put_str(out, v)
        else:
            _put_zigzag(out, int(v))
    else:
        raise TypeError("a column value cannot be of type %s" % t.__name__)


def _put_varint(out, n):
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _put_zigzag(out, n):
    _put_varint(out, ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


def _put_str(out, s):
    b = s.encode("utf-8")
    _put_varint(out, len(b))
    out += b
