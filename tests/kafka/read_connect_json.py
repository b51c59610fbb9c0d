"""Reads a topic written with `format = "json-schema"` using Confluent's
Python client (confluent-kafka, pinned in scripts/lib/kafka-tools), checks
every key and value against its Kafka Connect schema the way Kafka
Connect's JsonConverter reads them (schemas.enable=true), and prints one
JSON line per record: op, key payload, after, the transaction block and
the Connect type of each row column; for a transaction metadata record
(BEGIN or END), its status, key and payload.

Usage: read_connect_json.py BOOTSTRAP TOPIC COUNT
"""

import base64
import json
import sys

from confluent_kafka import Consumer, KafkaError, TopicPartition

PRIMITIVES = {
    "int8": int,
    "int16": int,
    "int32": int,
    "int64": int,
    "float32": (int, float),
    "float64": (int, float),
    "double": (int, float),
    "boolean": bool,
    "string": str,
    "bytes": str,
}


def check(schema, value, path):
    """Raises ValueError where `value` does not fit `schema`."""
    if value is None:
        if not schema.get("optional", False):
            raise ValueError(f"{path}: null in a required field")
        return
    kind = schema["type"]
    if kind == "struct":
        if not isinstance(value, dict):
            raise ValueError(f"{path}: expected an object")
        names = [f["field"] for f in schema["fields"]]
        for field in schema["fields"]:
            check(field, value.get(field["field"]), f"{path}.{field['field']}")
        extra = set(value) - set(names)
        if extra:
            raise ValueError(f"{path}: fields without a schema: {sorted(extra)}")
        return
    if kind == "array":
        if not isinstance(value, list):
            raise ValueError(f"{path}: expected an array")
        for i, item in enumerate(value):
            check(schema["items"], item, f"{path}[{i}]")
        return
    expected = PRIMITIVES.get(kind)
    if expected is None:
        raise ValueError(f"{path}: unknown Connect type {kind}")
    if kind != "boolean" and isinstance(value, bool):
        raise ValueError(f"{path}: boolean where {kind} is declared")
    if not isinstance(value, expected):
        raise ValueError(f"{path}: {value!r} is not {kind}")
    if kind == "bytes":
        base64.b64decode(value, validate=True)


def decode(raw, what):
    doc = json.loads(raw)
    if set(doc) != {"schema", "payload"}:
        raise ValueError(f"{what}: expected schema and payload, got {sorted(doc)}")
    check(doc["schema"], doc["payload"], what)
    return doc


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "weir-connect-json-check",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "session.timeout.ms": 6000,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    open_partitions = len(partitions)
    records = []
    while open_partitions and len(records) < count:
        msg = consumer.poll(10)
        if msg is None:
            break
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                open_partitions -= 1
                continue
            raise SystemExit(f"consume error: {msg.error()}")
        records.append(msg)
    consumer.close()
    for msg in sorted(records, key=lambda m: (m.partition(), m.offset())):
        key = decode(msg.key(), "key")
        if msg.value() is None:
            print(json.dumps({"op": None, "key": key["payload"]}))
            continue
        value = decode(msg.value(), "value")
        payload = value["payload"]
        if "status" in payload:
            print(json.dumps({"status": payload["status"], "key": key["payload"], "payload": payload}))
            continue
        row_schema = next(f for f in value["schema"]["fields"] if f["field"] == "after")
        types = {
            f["field"]: f["type"] + ("/" + f["name"] if "name" in f else "")
            for f in row_schema["fields"]
        }
        print(
            json.dumps(
                {
                    "op": payload["op"],
                    "key": key["payload"],
                    "after": payload["after"],
                    "transaction": payload.get("transaction"),
                    "types": types,
                }
            )
        )


main()
