"""Native tests: `python3 -m unittest` (with sdk/python on PYTHONPATH)."""

import unittest

from weir_plugin import Decimal, testing

from pii_mask import PiiMask, classify, is_card, is_phone, mask_digits, mask_text


class Detectors(unittest.TestCase):
    def test_kinds(self):
        self.assertEqual(classify("123-45-6789"), "ssn")
        self.assertEqual(classify("3782 822463 10005"), "card")
        self.assertEqual(classify("+1 555 123 4567"), "phone")
        self.assertEqual(classify("ada@example.com"), "email")
        self.assertIsNone(classify("Ada Lovelace"))
        self.assertFalse(is_card("4111111111111112"))
        self.assertFalse(is_phone("192.168.100.200"))
        self.assertEqual(classify("192.168.100.200"), "ip")
        self.assertIsNone(classify("256.1.1.1"))
        self.assertEqual(classify("912-70-1234"), "ssn")

    def test_shapes(self):
        self.assertEqual(mask_digits("+1 (555) 123-4567", 4), "+* (***) ***-4567")
        self.assertEqual(mask_text("Zoë Ørsted", 2), "********ed")


class Transform(unittest.TestCase):
    def test_default_masks_what_detectors_recognise(self):
        plugin = PiiMask({})
        [[out]] = testing.transform(
            plugin,
            [testing.event(key={"id": 1}, after={"id": 1, "email": "ada@example.com", "n": "hi"})],
        )
        self.assertEqual(out["after"], {"id": 1, "email": "a***@example.com", "n": "hi"})

    def test_rules_hash_drop_and_redact_non_text(self):
        plugin = PiiMask(
            {
                "rules": [
                    {"columns": ["email"], "action": "hash"},
                    {"columns": ["ssn"], "action": "drop"},
                    {"columns": ["balance"], "action": "mask"},
                ],
                "hash_key": "Jefe",
            }
        )
        [[out]] = testing.transform(
            plugin,
            [
                testing.event(
                    after={
                        "email": "what do ya want for nothing?",
                        "ssn": "123-45-6789",
                        "balance": Decimal("1.50"),
                    }
                )
            ],
        )
        # RFC 4231, test case 2.
        self.assertEqual(
            out["after"],
            {
                "email": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                "balance": None,
            },
        )

    def test_bad_config_names_every_problem(self):
        with self.assertRaises(ValueError) as e:
            PiiMask({"rules": [{"action": "hash", "columns": []}], "tables": []})
        msg = str(e.exception)
        self.assertIn("rules[0].columns: an empty list matches no column", msg)
        self.assertIn("rules[0].action: `hash` needs `hash_key`", msg)
        self.assertIn("tables: an empty list matches no table", msg)


if __name__ == "__main__":
    unittest.main()
