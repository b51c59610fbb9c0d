"""Resolvers through the test driver, with conflicts in the JSON of ``weir
plugin test`` (read as ``weir_core::envelope::conflict_from_json`` reads
them) and its output lines (``resolution_to_json``). Run from
``sdk/python``: ``python3 -m unittest discover -s tests``"""

import json
import unittest

import weir_plugin as w
from weir_plugin import testing


class Policy:
    """Deletes go to review, a counter column adds up, otherwise the later
    commit wins."""

    def __init__(self, config):
        self.counter = config.get("counter")

    def resolve(self, conflict):
        incoming = conflict.incoming
        if incoming.op == "d":
            return w.Review("deleted in %s" % incoming.source.origin)
        if incoming.op == "t":
            raise ValueError("no truncates")
        if self.counter and incoming.before is not None:
            delta = incoming.after[self.counter] - incoming.before[self.counter]
            merged = dict(conflict.local.to_dict())
            merged[self.counter] = conflict.local[self.counter] + delta
            return w.Merged(merged)
        if incoming.source.commit_time_us > conflict.local_meta.commit_time_us:
            return w.TAKE_INCOMING
        return w.KEEP_LOCAL


def line(local, incoming, **meta):
    return json.dumps({"local": local, "local_meta": meta, "incoming": incoming})


class Resolve(unittest.TestCase):
    def test_each_resolution_as_weir_plugin_test_prints_it(self):
        lww = Policy({})
        later = {"op": "u", "source": {"ts_us": 20, "origin": "east"}, "after": {"id": 1}}
        earlier = {"op": "u", "source": {"ts_us": 5, "origin": "east"}, "after": {"id": 1}}
        self.assertEqual(
            testing.resolve(lww, line({"id": 1}, later, ts_us=10, origin="west")),
            {"resolution": "take-incoming"},
        )
        self.assertEqual(
            testing.resolve(lww, line({"id": 1}, earlier, ts_us=10, origin="west")),
            {"resolution": "keep-local"},
        )
        self.assertEqual(
            testing.resolve(
                lww, {"local": {"id": 1}, "incoming": {"op": "d", "source": {"origin": "east"}}}
            ),
            {"resolution": "review", "reason": "deleted in east"},
        )
        counter = Policy({"counter": "stock"})
        self.assertEqual(
            testing.resolve(
                counter,
                line(
                    {"id": 1, "stock": 7, "name": "west"},
                    {"op": "u", "before": {"id": 1, "stock": 10}, "after": {"id": 1, "stock": 8}},
                ),
            ),
            {"resolution": "merged", "row": {"id": 1, "stock": 5, "name": "west"}},
        )

    def test_the_conflict_is_read_as_the_host_reads_it(self):
        seen = []

        class Look:
            def resolve(self, conflict):
                seen.append(conflict)
                return w.KEEP_LOCAL

        testing.resolve(
            Look(),
            {
                "local": {"id": 1, "n": 1.0, "tags": ["a"], "gone": "__debezium_unavailable_value"},
                "local_meta": {"ts_us": 42, "origin": "west", "txId": "7"},
                "incoming": {
                    "op": "update",
                    "source": {
                        "connector": "postgresql",
                        "db": "shop",
                        "schema": "public",
                        "table": "items",
                        "lsn": 24023128,
                        "txId": 555,
                        "ts_ms": 3,
                        "origin": "east",
                    },
                    "key": {"id": 1},
                    "before": None,
                    "after": {
                        "id": 1,
                        "price": {"$type": "decimal", "value": "1.50"},
                        "day": {"$type": "date", "value": 3},
                        "raw": {"$type": "bytes", "value": "aGk="},
                        "doc": {"$type": "json", "value": {"k": [1]}},
                        "at": {"$type": "timestamptz", "value": 5},
                    },
                },
            },
        )
        [c] = seen
        self.assertEqual(c.local.names, ["id", "n", "tags", "gone"])
        self.assertIs(type(c.local["n"]), float)
        self.assertEqual(c.local["tags"], w.Json('["a"]'))
        self.assertIs(c.local["gone"], w.UNCHANGED)
        self.assertEqual(
            (c.local_meta.commit_time_us, c.local_meta.origin, c.local_meta.txid), (42, "west", "7")
        )
        e = c.incoming
        self.assertEqual(
            (e.op, e.table, e.key.to_dict(), e.before), ("u", "items", {"id": 1}, None)
        )
        s = e.source
        self.assertEqual(
            (s.connector, s.database, s.schema, s.position, s.txid, s.commit_time_us, s.origin),
            ("postgresql", "shop", "public", "0/16E9058", "555", 3000, "east"),
        )
        types = [type(v) for v in e.after.values]
        self.assertEqual(types, [int, w.Decimal, w.Date, bytes, w.Json, w.TimestampTz])
        self.assertEqual(e.after["raw"], b"hi")
        self.assertEqual(e.after["doc"], '{"k":[1]}')
        # What the host leaves out defaults: no meta, no source.
        testing.resolve(Look(), {"local": {}, "incoming": {"op": "c"}})
        c = seen[-1]
        m = c.local_meta
        self.assertEqual((m.commit_time_us, m.origin, m.txid), (0, None, None))
        self.assertEqual((c.incoming.source.position, c.incoming.key.to_dict()), ("", {}))

    def test_a_merged_row_is_written_as_the_envelope_writes_it(self):
        class Every:
            def resolve(self, conflict):
                return w.Merged(
                    {
                        "null": None,
                        "bool": True,
                        "int": -3,
                        "float": 1.5,
                        "nan": float("nan"),
                        "text": "t",
                        "decimal": w.Decimal("12.50"),
                        "json": w.Json('{"a":1}'),
                        "uuid": w.Uuid("00000000-0000-0000-0000-000000000001"),
                        "bytes": b"\x00\xff",
                        "date": w.Date(19675),
                        "time": w.Time(1),
                        "timestamp": w.Timestamp(2),
                        "timestamptz": w.TimestampTz(1_700_000_000_123_456),
                        "unchanged": w.UNCHANGED,
                    }
                )

        out = testing.resolve(Every(), testing.conflict())
        self.assertEqual(
            out,
            {
                "resolution": "merged",
                "row": {
                    "null": None,
                    "bool": True,
                    "int": -3,
                    "float": 1.5,
                    "nan": None,
                    "text": "t",
                    "decimal": "12.50",
                    "json": '{"a":1}',
                    "uuid": "00000000-0000-0000-0000-000000000001",
                    "bytes": "AP8=",
                    "date": 19675,
                    "time": 1,
                    "timestamp": 2,
                    "timestamptz": "2023-11-14T22:13:20.123456Z",
                    "unchanged": "__debezium_unavailable_value",
                },
            },
        )
        # Exactly the JSON types: the line can be written and compared.
        self.assertEqual(json.loads(json.dumps(out)), out)

    def test_a_conflict_built_from_python_values(self):
        conflict = testing.conflict(
            local={"id": 1, "price": w.Decimal("2.00")},
            incoming=testing.event(
                op="u", after={"id": 1, "price": w.Decimal("3.00")}, commit_time_us=9
            ),
            commit_time_us=4,
            origin="west",
        )
        self.assertEqual(testing.resolve(Policy({}), conflict), {"resolution": "take-incoming"})
        self.assertEqual(w.Merged(conflict.local), w.Merged({"id": 1, "price": "2.00"}))
        self.assertEqual(repr(w.KEEP_LOCAL), "KEEP_LOCAL")

    def test_bad_conflicts_name_the_field(self):
        date = lambda v: {"local": {"a": {"$type": "date", "value": v}}}  # noqa: E731
        change = lambda **fields: {"local": {}, "incoming": {"op": "c", **fields}}  # noqa: E731
        cases = [
            ([1], "`local`: missing; expected the local row as an object"),
            ({"local": 1}, "`local`: missing; expected the local row as an object"),
            (date("x"), "`local.a`: a date value must be an integer"),
            (date(2**32), "`local.a`: a date value must fit in 32 bits"),
            ({"local": {"a": {"$type": "odd"}}}, '`local.a`: unknown $type "odd"'),
            ({"local": {"a": {"$type": 1}}}, "`local.a`: `$type` must be a string"),
            ({"local": {}}, "`incoming`: missing; expected an envelope"),
            ({"local": {}, "incoming": None}, "`incoming.$`: expected a JSON object"),
            (change(op=None), "`incoming.op`: missing; expected one of c, u, d, t, r"),
            ({"local": {}, "incoming": {"op": "x"}}, '`incoming.op`: unknown op "x"'),
            (change(source=[]), "`incoming.source`: expected an object"),
            (change(source={"ts_us": "1"}), "`incoming.source.ts_us`: expected an integer"),
            (change(after=[1]), "`incoming.after`: expected an object or null"),
            (
                change(key={"k": {"$type": "bytes", "value": "!"}}),
                "`incoming.key.k`: a bytes value must be base64",
            ),
        ]
        for doc, message in cases:
            # Parsed or as the line's text, alike.
            for conflict in (doc, json.dumps(doc)):
                with self.assertRaises(testing.EnvelopeError, msg=conflict) as e:
                    testing.resolve(Policy({}), conflict)
                self.assertTrue(str(e.exception).startswith(message), str(e.exception))
        with self.assertRaises(testing.EnvelopeError) as e:
            testing.resolve(Policy({}), "{")
        self.assertTrue(str(e.exception).startswith("not JSON: "), str(e.exception))

    def test_errors_and_bad_decisions(self):
        with self.assertRaises(ValueError) as e:
            testing.resolve(Policy({}), {"local": {}, "incoming": {"op": "t"}})
        self.assertEqual(str(e.exception), "no truncates")

        class Lazy:
            def resolve(self, conflict):
                return None

        with self.assertRaises(TypeError) as e:
            testing.resolve(Lazy(), testing.conflict())
        self.assertIn(
            "return KEEP_LOCAL, TAKE_INCOMING, Merged(row) or Review(reason)", str(e.exception)
        )
        with self.assertRaises(TypeError):
            w.Merged([("id", 1)])


if __name__ == "__main__":
    unittest.main()
