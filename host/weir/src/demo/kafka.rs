//! `weir demo --sink kafka`: a throwaway Kafka-protocol broker as the sink,
//! and a look at what landed in its topics.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use weir_throwaway::ThrowawayKafka;

/// Starts the broker.
pub fn start() -> anyhow::Result<ThrowawayKafka> {
    let broker = ThrowawayKafka::start()?;
    println!(
        "==> Started a throwaway Kafka-protocol broker on {}",
        broker.bootstrap()
    );
    Ok(broker)
}

/// The sink section: topics `demo.<destination>` with 3 partitions.
pub fn sink_toml(broker: &ThrowawayKafka) -> String {
    format!(
        "[[sinks]]\nname = \"kafka\"\nkind = \"kafka\"\nbrokers = [\"{}\"]\n\n\
         [sinks.topics]\npartitions = 3\n",
        broker.bootstrap()
    )
}

/// Lists the pipeline's topics with their committed record counts and
/// shows a few masked customer records, read back with `read_committed`.
pub fn show_sample(broker: &ThrowawayKafka) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "weir-demo-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    let mut list = TopicPartitionList::new();
    let mut open = 0;
    for t in metadata
        .topics()
        .iter()
        .filter(|t| t.name().starts_with("demo."))
    {
        for p in t.partitions() {
            list.add_partition_offset(t.name(), p.id(), Offset::Beginning)?;
            open += 1;
        }
    }
    consumer.assign(&list)?;
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut samples: Vec<(String, String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while open > 0 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let entry = counts.entry(m.topic().to_owned()).or_default();
                match m.payload() {
                    Some(value) => {
                        entry.0 += 1;
                        if m.topic().starts_with("demo.customers-eu") && samples.len() < 3 {
                            let doc: serde_json::Value = serde_json::from_slice(value)?;
                            samples.push((
                                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                                doc["op"].to_string(),
                                serde_json::to_string(&doc["after"])?,
                            ));
                        }
                    }
                    None => entry.1 += 1,
                }
            }
        }
    }
    println!("\n==> Topics (one per destination the router chose), committed records:");
    for (topic, (events, tombstones)) in &counts {
        println!("    {topic:<40} {events:>6} events  {tombstones:>4} tombstones");
    }
    println!("\n==> A few masked customer records (key, op, after):");
    for (key, op, after) in samples {
        println!("    key={key} op={op} after={after}");
    }
    println!("    (email hashed with HMAC-SHA256, SSN dropped, name/phone/card masked)");
    Ok(())
}
