"""A labelled corpus for pii-mask's detectors, from Faker, as JSON lines
`{"kind": ..., "locale": ..., "text": ...}` on standard output.

Kinds: email, phone, ssn, itin, card, iban, ipv4, ipv6 (personal data the
default detectors should mask) and none (text they should leave alone).
Seeded, so a run is reproducible for a given Faker version (pinned in
scripts/lib/pii-corpus/requirements.txt).

Usage: python3 generate.py [PER_KIND_PER_LOCALE]
"""

import json
import sys

from faker import Faker

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"]


def pii(fake, locale):
    """Generators of personal data for one locale, by kind."""
    kinds = {
        "email": [fake.email, fake.company_email, fake.free_email],
        "card": [fake.credit_card_number],
        "iban": [fake.iban],
        "ipv4": [fake.ipv4, fake.ipv4_private, fake.ipv4_public],
        "ipv6": [fake.ipv6],
        "phone": [fake.phone_number],
    }
    if locale == "en_US":
        kinds["ssn"] = [fake.ssn]
        kinds["itin"] = [fake.itin]
    return kinds


def not_pii(fake):
    """Text that is not personal data: words, sentences, names of things,
    numbers, dates, codes."""
    return [
        fake.sentence,
        fake.word,
        lambda: " ".join(fake.words(3)),
        fake.catch_phrase,
        fake.bs,
        fake.company,
        fake.job,
        fake.city,
        fake.country,
        fake.color_name,
        lambda: fake.date(pattern="%Y-%m-%d"),
        lambda: fake.date(pattern="%d/%m/%Y"),
        fake.time,
        fake.iso8601,
        fake.uuid4,
        fake.isbn13,
        fake.file_path,
        fake.url,
        fake.mime_type,
        lambda: str(fake.random_int(0, 10**9)),
        lambda: "%.2f" % fake.pyfloat(left_digits=5, right_digits=2, positive=True),
        lambda: fake.pricetag(),
        lambda: fake.bothify("ORD-####-????"),
        lambda: fake.bothify("#####-####"),
        lambda: fake.numerify("v#.#.#"),
        fake.currency_code,
        fake.language_name,
    ]


def main():
    per = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    out = sys.stdout
    for n, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(1000 + n)
        for kind, makers in pii(fake, locale).items():
            for i in range(per):
                text = makers[i % len(makers)]()
                out.write(json.dumps({"kind": kind, "locale": locale, "text": text}) + "\n")
        makers = not_pii(fake)
        for i in range(per * 4):
            text = str(makers[i % len(makers)]())
            out.write(json.dumps({"kind": "none", "locale": locale, "text": text}) + "\n")


if __name__ == "__main__":
    main()
