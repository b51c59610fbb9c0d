"""Glue between a plugin class and the component's exports.

Imported only inside a component build: ``wit_world`` and
``componentize_py_types`` are the bindings componentize-py generates from
the contract (``wit/weir-plugin.wit``).
"""

import json

from .event import _REMOVE, DROP, KEEP, Outcome
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
