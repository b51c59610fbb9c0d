"""The component exports against the bindings componentize-py really
generates from the contract (``componentize-py bindings``), driven
natively. Only the host import is stood in for (it lives in the runtime):
``config`` serves the test's config. Needs componentize-py
(``WEIR_COMPONENTIZE_PY`` or on the PATH); the test suite runs it so."""

import importlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

import weir_plugin as w
from weir_plugin import testing

WIT = pathlib.Path(__file__).resolve().parents[3] / "wit"
TOOL = os.environ.get("WEIR_COMPONENTIZE_PY") or shutil.which("componentize-py")


def bindings(test, world):
    """Generates the bindings of `world` and imports them fresh."""
    out = tempfile.mkdtemp(prefix="weir-bindings-")
    test.addCleanup(shutil.rmtree, out, True)
    subprocess.run([TOOL, "-d", str(WIT), "-w", world, "bindings", out], check=True)
    for name in [m for m in sys.modules if m.split(".")[0] in ("wit_world", "componentize_py_types")]:
        del sys.modules[name]
    sys.path.insert(0, out)
    try:
        wit_world = importlib.import_module("wit_world")
        types = importlib.import_module("wit_world.imports.types")
        host = importlib.import_module("wit_world.imports.host")
        return wit_world, types, host
    finally:
        sys.path.remove(out)


@unittest.skipUnless(TOOL, "componentize-py is not installed")
class Export(unittest.TestCase):
    def test_transformer_outcomes_and_patches(self):
        _, types, host = bindings(self, "transformer")
        host.config = lambda: '{"column": "email"}'

        class Mask:
            def __init__(self, config):
                self.column = config["column"]

            def transform(self, event):
                if event.op == "d":
                    return w.DROP
                if event.op == "t":
                    return w.Fail("no truncates")
                if event.op == "r":
                    raise ValueError("boom")
                if event.op == "u":
                    # One event becomes two: an outbox-style fan-out.
                    source = w.Source("postgresql", "db", "", "fanout", "0/1", None, 7, "eu")
                    return w.Replace(
                        [
                            w.Event.new("c", source, key={"k": 1}, after={"k": 1, "d": w.Date(3)}),
                            w.Event.new("d", source, before={"k": 2}),
                        ]
                    )
                event.set_after(self.column, "***")
                event.set_after("n", w.Decimal("1.5"))
                event.remove("after", 0)
                return w.KEEP

        world = w.export_transformer(Mask)()
        world.init()
        batch = w.encode_batch(
            [
                testing.event(after={"id": 1, "email": "a@b.co", "n": None}),
                testing.event(op="d", before={"id": 1}),
                testing.event(op="t"),
                testing.event(op="r", after={"id": 2}),
                testing.event(op="u", after={"id": 3}),
            ]
        )
        out = world.transform(batch)
        After = types.Image.AFTER
        self.assertEqual(
            out,
            [
                types.Outcome_Patch(
                    [
                        types.ColumnPatch(After, 1, types.Value_Text("***")),
                        types.ColumnPatch(After, 2, types.Value_Decimal("1.5")),
                        types.ColumnPatch(After, 0, None),
                    ]
                ),
                types.Outcome_Drop(),
                types.Outcome_Failed("no truncates"),
                types.Outcome_Failed("boom"),
                types.Outcome_Replace(
                    [
                        types.ChangeEvent(
                            types.Op.CREATE,
                            types.SourceInfo("postgresql", "db", "", "fanout", "0/1", None, 7, "eu"),
                            [types.Column("k", types.Value_Int(1))],
                            None,
                            [
                                types.Column("k", types.Value_Int(1)),
                                types.Column("d", types.Value_Date(3)),
                            ],
                        ),
                        types.ChangeEvent(
                            types.Op.DELETE,
                            types.SourceInfo("postgresql", "db", "", "fanout", "0/1", None, 7, "eu"),
                            [],
                            [types.Column("k", types.Value_Int(2))],
                            None,
                        ),
                    ]
                ),
            ],
        )

    def test_a_config_the_plugin_refuses_is_an_init_error(self):
        _, _, host = bindings(self, "transformer")
        host.config = lambda: "{}"

        class Strict:
            def __init__(self, config):
                raise ValueError("invalid plugin config: `column` is missing")

        from componentize_py_types import Err

        with self.assertRaises(Err) as e:
            w.export_transformer(Strict)().init()
        self.assertEqual(e.exception.value, "invalid plugin config: `column` is missing")

    def test_router_destinations_and_failures(self):
        _, types, host = bindings(self, "router")
        host.config = lambda: "{}"

        class ByTable:
            def __init__(self, config):
                pass

            def route(self, event):
                if event.table == "secret":
                    raise ValueError("not routable")
                return ["cdc." + event.table]

        world = w.export_router(ByTable)()
        world.init()
        batch = w.encode_batch([testing.event(table="orders"), testing.event(table="secret")])
        self.assertEqual(
            world.route(batch),
            [types.Route_To(["cdc.orders"]), types.Route_Failed("not routable")],
        )

    def test_resolver_conflicts_and_decisions(self):
        _, types, host = bindings(self, "resolver")
        host.config = lambda: '{"counter": "n"}'

        class Counter:
            def __init__(self, config):
                self.column = config["counter"]

            def resolve(self, conflict):
                incoming = conflict.incoming
                if incoming.op == "d":
                    return w.Review("deleted in %s" % incoming.source.origin)
                if incoming.op == "t":
                    raise ValueError("no truncates")
                if incoming.op == "r":
                    return None
                if incoming.before is None:
                    newer = incoming.source.commit_time_us > conflict.local_meta.commit_time_us
                    return w.TAKE_INCOMING if newer else w.KEEP_LOCAL
                delta = incoming.after[self.column] - incoming.before[self.column]
                row = conflict.local.to_dict()
                row[self.column] += delta
                # What the plugin saw, as a JSON column.
                kind = type(conflict.local["d"]).__name__
                row["seen"] = w.Json('["%s", "%s"]' % (conflict.local_meta.origin, kind))
                return w.Merged(row)

        world = w.export_resolver(Counter)()
        world.init()
        col = types.Column
        local = [
            col("id", types.Value_Int(1)),
            col("n", types.Value_Int(7)),
            col("d", types.Value_Decimal("1.5")),
            col("gone", types.Value_Unchanged()),
        ]

        def conflict(op, before=None, after=None, at=10):
            source = types.SourceInfo("postgresql", "db", "public", "t", "0/1", "9", at, "east")
            return types.Conflict(
                local,
                types.VersionMeta(5, "west", None),
                types.ChangeEvent(op, source, [col("id", types.Value_Int(1))], before, after),
            )

        Op = types.Op
        n = lambda v: [col("id", types.Value_Int(1)), col("n", types.Value_Int(v))]  # noqa: E731
        self.assertEqual(
            world.resolve(conflict(Op.UPDATE, before=n(10), after=n(12))),
            types.Resolution_Merged(
                [
                    col("id", types.Value_Int(1)),
                    col("n", types.Value_Int(9)),
                    col("d", types.Value_Decimal("1.5")),
                    col("gone", types.Value_Unchanged()),
                    col("seen", types.Value_Json('["west", "Decimal"]')),
                ]
            ),
        )
        self.assertEqual(world.resolve(conflict(Op.CREATE, at=10)), types.Resolution_TakeIncoming())
        self.assertEqual(world.resolve(conflict(Op.CREATE, at=1)), types.Resolution_KeepLocal())
        self.assertEqual(
            world.resolve(conflict(Op.DELETE)), types.Resolution_Review("deleted in east")
        )

        from componentize_py_types import Err

        with self.assertRaises(Err) as e:
            world.resolve(conflict(Op.TRUNCATE))
        self.assertEqual(e.exception.value, "no truncates")
        with self.assertRaises(Err) as e:
            world.resolve(conflict(Op.READ))
        self.assertIn("resolve returned None; return KEEP_LOCAL", e.exception.value)


if __name__ == "__main__":
    unittest.main()
