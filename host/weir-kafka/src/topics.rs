//! Topic names and topic creation.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use weir_core::StageError;

use crate::error::classify;

/// Kafka's longest topic name.
const MAX_TOPIC_LEN: usize = 249;

/// Whether Kafka accepts `name` as a topic name.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOPIC_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The topic of `destination`: `<prefix>.<destination>` (the destination
/// alone for an empty prefix), with every character Kafka does not allow
/// replaced by `_`, as Debezium does.
pub(crate) fn topic_name(prefix: &str, destination: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + 1 + destination.len());
    if !prefix.is_empty() {
        name.push_str(prefix);
        name.push('.');
    }
    name.extend(destination.chars().map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '_'
        }
    }));
    name
}

/// Creates topics that do not exist yet.
pub(crate) struct TopicMaker {
    admin: AdminClient<DefaultClientContext>,
    timeout: Duration,
}

/// How to create one topic.
pub(crate) struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub replication_factor: i32,
    pub config: Vec<(&'a str, &'a str)>,
}

impl TopicMaker {
    pub(crate) fn new(client: &ClientConfig, timeout: Duration) -> Result<Self, StageError> {
        let admin = client
            .create()
            .map_err(|e| classify(e, "cannot create the Kafka admin client"))?;
        Ok(TopicMaker { admin, timeout })
    }

    /// Creates `spec` unless it exists (another process may create it at the
    /// same moment: that counts as existing).
    pub(crate) fn create(&self, spec: &TopicSpec<'_>) -> Result<(), StageError> {
        let mut topic = NewTopic::new(
            spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication_factor),
        );
        for (k, v) in &spec.config {
            topic = topic.set(k, v);
        }
        let options = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = futures_executor::block_on(self.admin.create_topics([&topic], &options))
            .map_err(|e| classify(e, &format!("cannot create topic `{}`", spec.name)))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(StageError::operator(format!(
                        "cannot create topic `{name}`: {code}; create it by hand or give the sink's \
                         principal the right to create topics"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_debezium() {
        assert_eq!(topic_name("shop", "public.orders"), "shop.public.orders");
        assert_eq!(topic_name("", "public.orders"), "public.orders");
        assert_eq!(
            topic_name("shop", "public.My Table$"),
            "shop.public.My_Table_"
        );
        assert!(valid_topic_name("shop.public.orders"));
        assert!(!valid_topic_name("a b"));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }
}
