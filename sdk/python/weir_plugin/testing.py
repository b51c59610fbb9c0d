"""Drive a plugin natively, without Wasm, in an ordinary ``python -m
unittest``. The batch goes through the same encoding and decoding as inside
a component; only the boundary is missing."""

from .event import DROP, KEEP, Event, Outcome, Row, Source
from .wire import decode_batch, encode_batch


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
