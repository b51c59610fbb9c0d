"""The Python decoder against the host's encoder: ``tests/golden/wire``
holds a batch ``weir_core::wire`` wrote and what it contains (checked by
``host/weir-core/tests/wire_fixture.rs``). Run from ``sdk/python``:
``python3 -m unittest discover -s tests``"""

import json
import pathlib
import unittest

import weir_plugin as w
from weir_plugin import testing

GOLDEN = pathlib.Path(__file__).resolve().parents[3] / "tests" / "golden" / "wire"

_KINDS = {
    w.Decimal: "decimal",
    w.Json: "json",
    w.Uuid: "uuid",
    w.Date: "date",
    w.Time: "time",
    w.Timestamp: "timestamp",
    w.TimestampTz: "timestamptz",
}


def neutral(v):
    """A value as the fixture writes it: ``[type, payload]``."""
    if v is None:
        return ["null"]
    if v is w.UNCHANGED:
        return ["unchanged"]
    t = type(v)
    if t is bool:
        return ["boolean", v]
    if t is int:
        return ["int", str(v)]
    if t is float:
        return ["float", v]
    if t is str:
        return ["text", v]
    if t is bytes:
        return ["bytes", v.hex()]
    kind = _KINDS[t]
    if kind in ("time", "timestamp", "timestamptz"):
        return [kind, str(int(v))]
    if kind == "date":
        return [kind, int(v)]
    return [kind, str.__str__(v)]


def describe(e):
    s = e.source
    row = lambda r: None if r is None else [[n, neutral(v)] for n, v in r]  # noqa: E731
    return {
        "op": e.op,
        "source": {
            "connector": s.connector,
            "database": s.database,
            "schema": s.schema,
            "table": s.table,
            "position": s.position,
            "txid": s.txid,
            "commit_time_us": str(s.commit_time_us),
            "origin": s.origin,
        },
        "key": row(e.key),
        "before": row(e.before),
        "after": row(e.after),
    }


class Wire(unittest.TestCase):
    def test_decodes_what_the_host_encodes(self):
        batch = (GOLDEN / "batch.bin").read_bytes()
        expected = json.loads((GOLDEN / "batch.json").read_text())
        events = w.decode_batch(batch)
        self.assertEqual([describe(e) for e in events], expected)
        # Consecutive events of one table share their names list.
        self.assertIs(events[0].after.names, events[1].after.names)

    def test_encodes_what_the_host_encodes(self):
        batch = (GOLDEN / "batch.bin").read_bytes()
        self.assertEqual(w.encode_batch(w.decode_batch(batch)), batch)

    def test_malformed_batches_are_errors(self):
        batch = (GOLDEN / "batch.bin").read_bytes()
        cases = {
            b"": "empty batch",
            b"\x01\x00": "wire version 1",
            batch[:-1]: "malformed batch",
            batch + b"\x00": "bytes after the last event",
            b"\x02\x01\x09\x00": "unknown op",
            b"\x02\x01\x00\x01": "previous source",
        }
        for data, message in cases.items():
            with self.assertRaises(w.WireError) as e:
                w.decode_batch(data)
            self.assertIn(message, str(e.exception))
        # Any truncation is an error, never another exception.
        for i in range(len(batch)):
            with self.assertRaises(w.WireError):
                w.decode_batch(batch[:i])

    def test_patches_and_outcomes_through_the_test_driver(self):
        class Redact:
            def __init__(self, config):
                pass

            def transform(self, event):
                if event.op == "d":
                    return w.DROP
                if event.op == "r":
                    return w.Replace([w.Event.new("c", event.source, after={"copy": True})])
                if event.after is None:
                    raise ValueError("no after image")
                event.set_after("secret", None)
                event.remove("after", 0)
                return w.KEEP

        out = testing.transform(
            Redact({}),
            [
                testing.event(after={"id": 1, "secret": "x"}),
                testing.event(op="d", before={"id": 1}),
                testing.event(op="t"),
                testing.event(op="r", table="src", after={"id": 1}),
            ],
        )
        self.assertEqual(out[0][0]["after"], {"secret": None})
        self.assertEqual(out[1], [])
        self.assertEqual(out[2], w.Fail("no after image"))
        self.assertEqual(
            out[3],
            [{"op": "c", "table": "src", "key": {}, "before": None, "after": {"copy": True}}],
        )
        with self.assertRaises(ValueError):
            w.Event.new("x", w.Source())


if __name__ == "__main__":
    unittest.main()
