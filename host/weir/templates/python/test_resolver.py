"""Runs natively: python3 -m unittest"""

import unittest

from weir_plugin import testing

from @@MODULE@@ import @@TYPE@@


def conflict(local, incoming):
    return testing.conflict(
        local={"id": 1, "version": local},
        incoming=testing.event(op="u", table="customers", key={"id": 1}, after={"id": 1, "version": incoming}),
    )


class Test@@TYPE@@(unittest.TestCase):
    def test_the_higher_version_wins(self):
        plugin = @@TYPE@@({"column": "version"})
        self.assertEqual(testing.resolve(plugin, conflict(2, 3)), {"resolution": "take-incoming"})
        self.assertEqual(testing.resolve(plugin, conflict(5, 4)), {"resolution": "keep-local"})
        self.assertEqual(testing.resolve(plugin, conflict(5, 5)), {"resolution": "keep-local"})

    def test_a_bad_config_is_refused(self):
        with self.assertRaises(ValueError):
            @@TYPE@@({"colum": "x"})


if __name__ == "__main__":
    unittest.main()
