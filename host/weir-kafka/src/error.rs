//! What a Kafka failure means for the pipeline: retry, stop, or set the
//! event aside.

use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use weir_core::{ErrorKind, StageError};

/// The kind of a failure with `code`: `Operator` for what only a change
/// of setup fixes (rights, fencing, a missing topic, a setting the broker
/// refuses), `Transient` for the rest (brokers down or moving, timeouts).
pub(crate) fn kind_of(code: Option<Code>) -> ErrorKind {
    match code {
        Some(
            Code::TopicAuthorizationFailed
            | Code::GroupAuthorizationFailed
            | Code::ClusterAuthorizationFailed
            | Code::TransactionalIdAuthorizationFailed
            | Code::SaslAuthenticationFailed
            | Code::Authentication
            | Code::UnknownTopic
            | Code::UnknownTopicOrPartition
            | Code::InvalidTopic
            | Code::InvalidReplicationFactor
            | Code::InvalidConfig
            | Code::PolicyViolation
            | Code::UnsupportedVersion
            | Code::Fenced
            | Code::ProducerFenced
            | Code::InvalidProducerEpoch,
        ) => ErrorKind::Operator,
        _ => ErrorKind::Transient,
    }
}

/// Whether `code` says another producer took over the transactional id.
pub(crate) fn is_fenced(code: Option<Code>) -> bool {
    matches!(
        code,
        Some(Code::Fenced | Code::ProducerFenced | Code::InvalidProducerEpoch)
    )
}

/// `error` while doing `what`, classified. Client and configuration
/// errors are the operator's.
pub(crate) fn classify(error: KafkaError, what: &str) -> StageError {
    let kind = match &error {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => ErrorKind::Operator,
        KafkaError::Transaction(e) if e.is_fatal() && !is_fenced(Some(e.code())) => {
            // A fatal producer error other than fencing: a new producer
            // (a pipeline restart) clears it.
            ErrorKind::Transient
        }
        e => kind_of(e.rdkafka_error_code()),
    };
    let hint = match error.rdkafka_error_code() {
        Some(Code::TopicAuthorizationFailed) => {
            "; grant the sink's principal WRITE (and CREATE, with `topics.create`) on its topics"
        }
        Some(Code::TransactionalIdAuthorizationFailed) => {
            "; grant the sink's principal WRITE on its transactional id"
        }
        Some(Code::ClusterAuthorizationFailed) => {
            "; grant the sink's principal IDEMPOTENT_WRITE on the cluster"
        }
        Some(Code::SaslAuthenticationFailed | Code::Authentication) => {
            "; check the `sasl.*` / `ssl.*` properties"
        }
        _ => "",
    };
    StageError::new(kind, format!("{what}: {error}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_problems_stop_and_outages_retry() {
        assert_eq!(
            kind_of(Some(Code::TopicAuthorizationFailed)),
            ErrorKind::Operator
        );
        assert_eq!(kind_of(Some(Code::ProducerFenced)), ErrorKind::Operator);
        assert_eq!(kind_of(Some(Code::AllBrokersDown)), ErrorKind::Transient);
        assert_eq!(kind_of(Some(Code::MessageTimedOut)), ErrorKind::Transient);
        assert_eq!(kind_of(None), ErrorKind::Transient);
        let e = classify(
            KafkaError::MessageProduction(Code::TopicAuthorizationFailed),
            "cannot write to `shop.public.orders`",
        );
        assert_eq!(e.kind(), ErrorKind::Operator);
        assert!(
            e.to_string().contains("grant the sink's principal WRITE"),
            "{e}"
        );
    }
}
