"""Drive a plugin natively, without Wasm, in an ordinary ``python -m
unittest``. The batch goes through the same encoding and decoding as inside
a component; only the boundary is missing. Resolvers take conflicts in the
JSON of ``weir plugin test`` and answer its output lines."""

import base64
import json
import math

from .event import DROP, KEEP, Conflict, Event, Outcome, Resolution, Row, Source, VersionMeta
from .wire import (
    UNCHANGED,
    Date,
    Decimal,
    Json,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    decode_batch,
    encode_batch,
)


def event(
    op="c",
    table="t",
    key=None,
    before=None,
    after=None,
    schema="public",
    database="db",
    connector="postgresql",
    position="0/0",
    txid=None,
    commit_time_us=0,
    origin=None,
):
    """An event built from dicts of column values."""
    return Event(
        op,
        Source(connector, database, schema, table, position, txid, commit_time_us, origin),
        Row.from_dict(key or {}),
        None if before is None else Row.from_dict(before),
        None if after is None else Row.from_dict(after),
    )


def transform(plugin, events):
    """Runs a transformer over events. Per input event: a list of the
    events it became, as ``{"op", "table", "key", "before", "after"}``
    dicts with the plugin's changes applied (empty when dropped), or a
    ``Fail(reason)`` outcome."""
    results = []
    for e in decode_batch(encode_batch(events)):
        try:
            r = plugin.transform(e)
        except Exception as exc:
            results.append(Outcome("fail", str(exc) or type(exc).__name__))
            continue
        if r is None or r is KEEP:
            results.append([_as_dict(e)])
        elif r is DROP:
            results.append([])
        elif isinstance(r, Outcome) and r.kind == "replace":
            results.append([_as_dict(n) for n in r.events])
        elif isinstance(r, Outcome) and r.kind == "fail":
            results.append(r)
        else:
            results.append(
                Outcome(
                    "fail",
                    "transform returned %r; return KEEP, DROP, Replace(events) or Fail(reason)"
                    % (r,),
                )
            )
    return results


def _as_dict(e):
    return {
        "op": e.op,
        "table": e.source.table,
        "key": e.patched("key"),
        "before": e.patched("before"),
        "after": e.patched("after"),
    }


def route(plugin, events):
    """Runs a router over events: per event, its destinations."""
    return [plugin.route(e) for e in decode_batch(encode_batch(events))]


def conflict(local=None, incoming=None, commit_time_us=0, origin=None, txid=None):
    """A conflict built from a dict of the local row's column values, the
    local row's version (``commit_time_us``, ``origin``, ``txid``) and the
    incoming event (:func:`event`; its source carries the incoming
    version)."""
    return Conflict(
        Row.from_dict(local or {}),
        VersionMeta(commit_time_us, origin, txid),
        event() if incoming is None else incoming,
    )


def resolve(plugin, conflict):
    """Runs a resolver over one conflict and returns what ``weir plugin
    test`` prints for it, as a dict: ``{"resolution": "keep-local"}``,
    ``{"resolution": "take-incoming"}``, ``{"resolution": "merged", "row":
    {...}}`` (values as the Debezium envelope writes them) or
    ``{"resolution": "review", "reason": "..."}``.

    The conflict is a :class:`Conflict` (:func:`conflict`), or an input
    line of ``weir plugin test`` for resolvers, as text or parsed:
    ``{"local": {row}, "local_meta": {"ts_us", "origin", "txId"},
    "incoming": envelope}``, read as the host reads it; a bad one
    raises :class:`EnvelopeError` naming the field. An exception from
    ``resolve`` propagates.
    """
    if not isinstance(conflict, Conflict):
        if isinstance(conflict, (str, bytes)):
            try:
                conflict = json.loads(conflict)
            except ValueError as e:
                raise EnvelopeError(None, "not JSON: %s" % e)
        conflict = _conflict_from_json(conflict)
    r = plugin.resolve(conflict)
    if isinstance(r, Resolution):
        if r.kind in ("keep-local", "take-incoming"):
            return {"resolution": r.kind}
        if r.kind == "merged":
            return {"resolution": "merged", "row": {n: _value_to_json(v) for n, v in r.row}}
        if r.kind == "review":
            return {"resolution": "review", "reason": r.reason}
    raise TypeError(
        "resolve returned %r; return KEEP_LOCAL, TAKE_INCOMING, Merged(row) or Review(reason)"
        % (r,)
    )


# The JSON of `weir plugin test` for resolvers, read and written as the
# host does (`host/weir-core/src/envelope.rs`).

UNAVAILABLE_VALUE = "__debezium_unavailable_value"
"""Debezium's placeholder for a value the source did not send."""

_I64 = (-(2**63), 2**63 - 1)
_OPS = {
    "c": "c",
    "create": "c",
    "insert": "c",
    "u": "u",
    "update": "u",
    "d": "d",
    "delete": "d",
    "t": "t",
    "truncate": "t",
    "r": "r",
    "read": "r",
}


class EnvelopeError(ValueError):
    """A conflict or envelope in JSON could not be read; the message names
    the field (```local.id`: ...``), as ``weir plugin test`` does."""

    def __init__(self, field, problem):
        super().__init__(problem if field is None else "`%s`: %s" % (field, problem))
        self.field = field
        self.problem = problem


class _Problem(Exception):
    """What is wrong with one value; the caller names the field."""


def _int(v):
    """``v`` if it is a JSON integer that fits in 64 bits, else None."""
    return v if type(v) is int and _I64[0] <= v <= _I64[1] else None


def _number(v):
    return type(v) is int or type(v) is float


def _number_text(v):
    return str(v) if type(v) is int else repr(v)


def _compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _debug(text):
    return json.dumps(text, ensure_ascii=False)


def _value_from_json(v):
    """A value: plain JSON by its JSON type, or ``{"$type": T, "value": V}``."""
    t = type(v)
    if v is None or t is bool or t is float:
        return v
    if t is int:
        return v if _int(v) is not None else float(v)
    if t is str:
        return UNCHANGED if v == UNAVAILABLE_VALUE else v
    if t is dict and "$type" in v:
        return _typed_value(v)
    if t is dict or t is list:
        return Json(_compact(v))
    raise _Problem("not a JSON value: %r" % (v,))


def _typed_value(m):
    ty = m["$type"]
    if type(ty) is not str:
        raise _Problem("`$type` must be a string")
    v = m.get("value")

    def text():
        if type(v) is not str:
            raise _Problem("a %s value must be a string" % ty)
        return v

    def integer():
        if _int(v) is None:
            raise _Problem("a %s value must be an integer" % ty)
        return v

    if ty == "null":
        return None
    if ty == "boolean":
        if type(v) is not bool:
            raise _Problem("a boolean value must be true or false")
        return v
    if ty == "int":
        return integer()
    if ty == "float":
        if not _number(v):
            raise _Problem("a float value must be a number")
        return float(v)
    if ty == "decimal":
        return Decimal(text())
    if ty == "text":
        return text()
    if ty == "bytes":
        try:
            return base64.b64decode(text(), validate=True)
        except ValueError as e:
            raise _Problem("a bytes value must be base64: %s" % e)
    if ty == "json":
        return Json(v if type(v) is str else _compact(v))
    if ty == "date":
        days = integer()
        if not -(2**31) <= days < 2**31:
            raise _Problem("a date value must fit in 32 bits")
        return Date(days)
    if ty == "time":
        return Time(integer())
    if ty == "timestamp":
        return Timestamp(integer())
    if ty == "timestamptz":
        return TimestampTz(integer())
    if ty == "uuid":
        return Uuid(text())
    if ty == "unchanged":
        return UNCHANGED
    raise _Problem("unknown $type %s" % _debug(ty))


def _row_from_json(field, m):
    names, values = [], []
    for k, v in m.items():
        try:
            values.append(_value_from_json(v))
        except _Problem as p:
            raise EnvelopeError("%s.%s" % (field, k), str(p))
        names.append(k)
    return Row(names, values)


def _source_from_json(s):
    def text(k):
        v = s.get(k)
        if type(v) is str:
            return v
        return _number_text(v) if _number(v) else None

    if "ts_us" in s:
        commit_time_us = _int(s["ts_us"])
        if commit_time_us is None:
            raise EnvelopeError("source.ts_us", "expected an integer")
    elif "ts_ms" in s:
        ms = _int(s["ts_ms"])
        if ms is None:
            raise EnvelopeError("source.ts_ms", "expected an integer")
        commit_time_us = ms * 1000
    else:
        commit_time_us = 0
    return Source(
        text("connector") or "",
        text("db") or "",
        text("schema") or "",
        text("table") or "",
        _position_from_json(s) or "",
        text("txId"),
        commit_time_us,
        text("origin"),
    )


def _position_from_json(s):
    """``pos`` when it is text, MySQL's ``file`` and ``pos``, or
    PostgreSQL's numeric ``lsn``."""
    pos, file, lsn = s.get("pos"), s.get("file"), s.get("lsn")
    if type(pos) is str:
        return pos
    if _number(pos) and type(file) is str:
        return "%s:%s" % (file, _number_text(pos))
    if _number(lsn):
        if type(lsn) is int and 0 <= lsn < 2**64:
            return "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF)
        return None
    if type(lsn) is str:
        return lsn
    return None


def _event_from_json(doc):
    """An event from its envelope."""
    if type(doc) is not dict:
        raise EnvelopeError("$", "expected a JSON object")
    op = doc.get("op")
    if type(op) is not str:
        raise EnvelopeError("op", "missing; expected one of c, u, d, t, r")
    if op not in _OPS:
        raise EnvelopeError("op", "unknown op %s" % _debug(op))
    if "source" not in doc:
        source = Source()
    elif type(doc["source"]) is dict:
        source = _source_from_json(doc["source"])
    else:
        raise EnvelopeError("source", "expected an object")

    def image(name):
        v = doc.get(name)
        if v is None:
            return None
        if type(v) is not dict:
            raise EnvelopeError(name, "expected an object or null")
        return _row_from_json(name, v)

    key = image("key")
    key = Row([], []) if key is None else key
    return Event(_OPS[op], source, key, image("before"), image("after"))


def _conflict_from_json(doc):
    local = doc.get("local") if type(doc) is dict else None
    if type(local) is not dict:
        raise EnvelopeError("local", "missing; expected the local row as an object")
    local = _row_from_json("local", local)
    meta = doc.get("local_meta")
    meta = meta if type(meta) is dict else {}
    text = lambda k: meta.get(k) if type(meta.get(k)) is str else None  # noqa: E731
    local_meta = VersionMeta(_int(meta.get("ts_us")) or 0, text("origin"), text("txId"))
    if "incoming" not in doc:
        raise EnvelopeError("incoming", "missing; expected an envelope")
    try:
        incoming = _event_from_json(doc["incoming"])
    except EnvelopeError as e:
        raise EnvelopeError("incoming.%s" % e.field, e.problem)
    return Conflict(local, local_meta, incoming)


def _value_to_json(v):
    """A value as the Debezium envelope writes it."""
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if v is UNCHANGED:
        return UNAVAILABLE_VALUE
    if t is float:
        # Like the host, a float JSON cannot hold becomes null.
        return v if math.isfinite(v) else None
    if t is Decimal or t is Json or t is Uuid:
        return str.__str__(v)
    if t is bytes or t is bytearray:
        return base64.b64encode(v).decode("ascii")
    if t is Date or t is Time or t is Timestamp:
        return int(v)
    if t is TimestampTz:
        return _format_utc_micros(int(v))
    raise TypeError("a column value cannot be of type %s" % t.__name__)


def _format_utc_micros(us):
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    secs, micros = divmod(us, 1_000_000)
    days, sod = divmod(secs, 86_400)
    y, m, d = _civil_from_days(days)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        y,
        m,
        d,
        sod // 3600,
        sod % 3600 // 60,
        sod % 60,
        micros,
    )


def _civil_from_days(z):
    """Days since 1970-01-01 to a proleptic Gregorian date (Howard
    Hinnant's algorithm, as the host)."""
    era, doe = divmod(z + 719_468, 146_097)
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d
