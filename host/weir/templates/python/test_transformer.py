"""Runs natively: python3 -m unittest"""

import unittest

from weir_plugin import testing

from @@MODULE@@ import @@TYPE@@


class Test@@TYPE@@(unittest.TestCase):
    def test_upper_cases_the_configured_column_only(self):
        plugin = @@TYPE@@({"column": "name"})
        event = testing.event(
            table="customers",
            key={"id": 1},
            after={"id": 1, "name": "ada", "city": "london"},
        )
        [[out]] = testing.transform(plugin, [event])
        self.assertEqual(out["after"], {"id": 1, "name": "ADA", "city": "london"})

    def test_a_bad_config_is_refused(self):
        with self.assertRaises(ValueError):
            @@TYPE@@({"colum": "x"})


if __name__ == "__main__":
    unittest.main()
