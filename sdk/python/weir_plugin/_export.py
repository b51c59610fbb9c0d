"""Glue between a plugin class and the component's exports.

Imported only inside a component build: ``wit_world`` and
``componentize_py_types`` are the bindings componentize-py generates from
the contract (``wit/weir-plugin.wit``).
"""

import json

from .event import (
    _REMOVE,
    DROP,
    KEEP,
    Conflict,
    Event,
    Outcome,
    Resolution,
    Row,
    Source,
    VersionMeta,
)
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
)


def _message(exc):
    text = str(exc)
    return text if text else type(exc).__name__


def _converter(types):
    """Returns a function turning an SDK value into a WIT ``value``."""
    null = types.Value_Null()
    unchanged = types.Value_Unchanged()
    by_type = {
        bool: types.Value_Boolean,
        int: types.Value_Int,
        float: types.Value_Float,
        str: types.Value_Text,
        bytes: types.Value_Bytes,
        Decimal: lambda v: types.Value_Decimal(str.__str__(v)),
        Json: lambda v: types.Value_Json(str.__str__(v)),
        Uuid: lambda v: types.Value_Uuid(str.__str__(v)),
        Date: lambda v: types.Value_Date(int(v)),
        Time: lambda v: types.Value_Time(int(v)),
        Timestamp: lambda v: types.Value_Timestamp(int(v)),
        TimestampTz: lambda v: types.Value_Timestamptz(int(v)),
        bytearray: lambda v: types.Value_Bytes(bytes(v)),
    }

    def to_wit(v):
        if v is None:
            return null
        if v is UNCHANGED:
            return unchanged
        make = by_type.get(type(v))
        if make is None:
            raise TypeError("a column value cannot be of type %s" % type(v).__name__)
        return make(v)

    return to_wit


def _reader(types):
    """Returns a function turning a WIT ``value`` into an SDK value."""
    by_type = {
        types.Value_Null: lambda v: None,
        types.Value_Boolean: lambda v: v.value,
        types.Value_Int: lambda v: v.value,
        types.Value_Float: lambda v: v.value,
        types.Value_Decimal: lambda v: Decimal(v.value),
        types.Value_Text: lambda v: v.value,
        types.Value_Bytes: lambda v: bytes(v.value),
        types.Value_Json: lambda v: Json(v.value),
        types.Value_Date: lambda v: Date(v.value),
        types.Value_Time: lambda v: Time(v.value),
        types.Value_Timestamp: lambda v: Timestamp(v.value),
        types.Value_Timestamptz: lambda v: TimestampTz(v.value),
        types.Value_Uuid: lambda v: Uuid(v.value),
        types.Value_Unchanged: lambda v: UNCHANGED,
    }

    def from_wit(v):
        return by_type[type(v)](v)

    return from_wit


def _init(plugin_type, state):
    from componentize_py_types import Err
    from wit_world.imports import host

    try:
        config = json.loads(host.config())
        state["plugin"] = plugin_type(config)
    except Exception as e:  # any failure refuses the plugin with its message
        raise Err(_message(e))


def export_transformer(plugin_type):
    """Returns the ``WitWorld`` class a transformer component exports.

    ``plugin_type(config)`` builds the plugin from its config (a dict); an
    exception refuses the plugin at load with its message. Its
    ``transform(event)`` returns None or :data:`KEEP`, :data:`DROP`, a
    :func:`Replace` or a :func:`Fail`; an exception fails just that event.
    """
    import wit_world
    from wit_world.imports import types

    to_wit = _converter(types)
    images = {
        "key": types.Image.KEY,
        "before": types.Image.BEFORE,
        "after": types.Image.AFTER,
    }
    keep = types.Outcome_Keep()
    drop = types.Outcome_Drop()
    ops = {
        "c": types.Op.CREATE,
        "u": types.Op.UPDATE,
        "d": types.Op.DELETE,
        "t": types.Op.TRUNCATE,
        "r": types.Op.READ,
    }
    state = {}

    def columns(row):
        return None if row is None else [types.Column(n, to_wit(v)) for n, v in row]

    def change_event(e):
        s = e.source
        return types.ChangeEvent(
            ops[e.op],
            types.SourceInfo(
                s.connector,
                s.database,
                s.schema,
                s.table,
                s.position,
                s.txid,
                s.commit_time_us,
                s.origin,
            ),
            columns(e.key),
            columns(e.before),
            columns(e.after),
        )

    def outcome(event, result):
        if result is None or result is KEEP:
            if not event.patches:
                return keep
            return types.Outcome_Patch(
                [
                    types.ColumnPatch(
                        images[img], i, None if v is _REMOVE else to_wit(v)
                    )
                    for img, i, v in event.patches
                ]
            )
        if result is DROP:
            return drop
        if isinstance(result, Outcome) and result.kind == "fail":
            return types.Outcome_Failed(result.reason)
        if isinstance(result, Outcome) and result.kind == "replace":
            return types.Outcome_Replace([change_event(e) for e in result.events])
        return types.Outcome_Failed(
            "transform returned %r; return KEEP, DROP, Replace(events) or Fail(reason)" % (result,)
        )

    class WitWorld(wit_world.WitWorld):
        def init(self):
            _init(plugin_type, state)

        def transform(self, batch):
            plugin = state["plugin"]
            out = []
            for event in decode_batch(batch):
                try:
                    out.append(outcome(event, plugin.transform(event)))
                except Exception as e:
                    out.append(types.Outcome_Failed(_message(e)))
            return out

    return WitWorld


def export_router(plugin_type):
    """Returns the ``WitWorld`` class a router component exports.

    ``plugin_type(config)`` builds the plugin; its ``route(event)`` returns
    the destination names (an empty list drops the event); an exception
    fails just that event.
    """
    import wit_world
    from wit_world.imports import types

    state = {}

    class WitWorld(wit_world.WitWorld):
        def init(self):
            _init(plugin_type, state)

        def route(self, batch):
            plugin = state["plugin"]
            out = []
            for event in decode_batch(batch):
                try:
                    out.append(types.Route_To([str(d) for d in plugin.route(event)]))
                except Exception as e:
                    out.append(types.Route_Failed(_message(e)))
            return out

    return WitWorld


def export_resolver(plugin_type):
    """Returns the ``WitWorld`` class a resolver component exports.

    ``plugin_type(config)`` builds the plugin; its ``resolve(conflict)``
    (a :class:`~weir_plugin.event.Conflict`) returns :data:`KEEP_LOCAL`,
    :data:`TAKE_INCOMING`, :func:`Merged` or :func:`Review`. An exception
    is the call's error: the change goes to the dead letters and the
    target keeps its row.
    """
    import wit_world
    from componentize_py_types import Err
    from wit_world.imports import types

    to_wit = _converter(types)
    from_wit = _reader(types)
    ops = {
        types.Op.CREATE: "c",
        types.Op.UPDATE: "u",
        types.Op.DELETE: "d",
        types.Op.TRUNCATE: "t",
        types.Op.READ: "r",
    }
    keep_local = types.Resolution_KeepLocal()
    take_incoming = types.Resolution_TakeIncoming()
    state = {}

    def row(columns):
        if columns is None:
            return None
        return Row([c.name for c in columns], [from_wit(c.value) for c in columns])

    def conflict(c):
        e = c.incoming
        s = e.source
        m = c.local_meta
        return Conflict(
            row(c.local),
            VersionMeta(m.commit_time_us, m.origin, m.txid),
            Event(
                ops[e.op],
                Source(
                    s.connector,
                    s.database,
                    s.schema,
                    s.table,
                    s.position,
                    s.txid,
                    s.commit_time_us,
                    s.origin,
                ),
                row(e.key),
                row(e.before),
                row(e.after),
            ),
        )

    def resolution(r):
        if isinstance(r, Resolution):
            if r.kind == "keep-local":
                return keep_local
            if r.kind == "take-incoming":
                return take_incoming
            if r.kind == "merged":
                return types.Resolution_Merged([types.Column(n, to_wit(v)) for n, v in r.row])
            if r.kind == "review":
                return types.Resolution_Review(r.reason)
        raise TypeError(
            "resolve returned %r; return KEEP_LOCAL, TAKE_INCOMING, Merged(row) or Review(reason)"
            % (r,)
        )

    class WitWorld(wit_world.WitWorld):
        def init(self):
            _init(plugin_type, state)

        def resolve(self, c):
            plugin = state["plugin"]
            try:
                return resolution(plugin.resolve(conflict(c)))
            except Exception as e:  # the call's error, with the message
                raise Err(_message(e))

    return WitWorld
