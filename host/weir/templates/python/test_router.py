"""Runs natively: python3 -m unittest"""

import unittest

from weir_plugin import testing

from @@MODULE@@ import @@TYPE@@


class Test@@TYPE@@(unittest.TestCase):
    def test_routes_by_table_under_the_prefix(self):
        plugin = @@TYPE@@({"prefix": "lake"})
        event = testing.event(table="customers", key={"id": 1}, after={"id": 1})
        self.assertEqual(testing.route(plugin, [event]), [["lake.customers"]])

    def test_a_bad_config_is_refused(self):
        with self.assertRaises(ValueError):
            @@TYPE@@({"prefix": ""})


if __name__ == "__main__":
    unittest.main()
