//! Windows over every partition when hosts share a pipeline (`group.rs`).
//!
//! An aggregate spread over partitions (`stage/partitions.rs`) has a lane per partition,
//! which emits partial windows — each over its partition's events — and a merger. On one
//! host the merger takes the lanes' partials at once. When hosts share the source, each
//! host runs the lanes of the partitions it owns and sends their partials, with each
//! lane's watermark (its mark), to the pipeline's partials topic (`{group}.partials`, one
//! partition, so one order); the owner of source partition 0 reads that topic, merges
//! every lane's partials and closes a window once every partition's mark passed it — the
//! windows, and so the rows and alerts of the stages after the aggregate, that one host
//! reading every partition closes (`lanes.rs` sends, `merging.rs` merges, `wire.rs` is
//! the message, `gate.rs` the marks and the windows merged).
//!
//! The merge state (the partials topic's position, the marks, the merger's and every later
//! stage's state) is part of partition 0's cut, so it moves with partition 0 and is fenced
//! by its claim. A lane read again from its partition's cut sends windows it sent before
//! its host died; the gate merges each lane's window once (by its `window_start`).

mod consumer;
mod gate;
mod lanes;
mod merging;
mod wire;

pub(super) use merging::Merging;

use crate::config::kafka::{CreateTopic, KafkaOptions};
use crate::config::sink::KafkaSinkConfig;
use crate::config::source::KafkaSourceConfig;
use crate::config::{PipelineConfig, SinkConfig, SourceConfig};
use crate::pipeline::stage::Stage;
use crate::plugin::Role;
use std::collections::BTreeMap;

/// The partials sink's name: not a name a pipeline file can give a sink.
pub const PARTIALS_SINK: &str = "#partials";
/// The stage name the merge state is saved under in partition 0's cut.
pub const MERGE_STATE: &str = "#merge";
/// The partition whose owner merges.
pub const MERGING_PARTITION: i32 = 0;

/// Options of the source that belong to its consumer group, not to the partials topic's
/// producer and reader.
const GROUP_OPTIONS: [&str; 5] = [
    "group.instance.id",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
    "max.poll.interval.ms",
];

/// How this host reaches the partials topic.
#[derive(Clone)]
pub struct Plan {
    /// The partials sink's index among the pipeline's sinks.
    pub sink: usize,
    pub topic: String,
    pub brokers: String,
    pub group: String,
    pub options: KafkaOptions,
}

/// The source of a pipeline that hosts share and that has an aggregate.
fn shared_with_aggregates<'a>(
    cfg: &'a PipelineConfig,
    stages: &[Stage],
) -> Option<&'a KafkaSourceConfig> {
    let aggregates = stages
        .iter()
        .any(|s| s.spec.plugin.role() == Role::Aggregate);
    match &cfg.source {
        SourceConfig::Kafka(k) if k.shared && aggregates => Some(k),
        _ => None,
    }
}

/// The partials topic of the hosts in `group`: a topic name allows `[a-zA-Z0-9._-]`.
fn topic(group: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let group: String = group.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    format!("{group}.partials")
}

fn options(source: &KafkaSourceConfig) -> KafkaOptions {
    let mut o: BTreeMap<_, _> = source.options.0.clone();
    o.retain(|k, _| !GROUP_OPTIONS.contains(&k.as_str()));
    KafkaOptions(o)
}

/// The sink the lanes' partials go to, for a shared pipeline with an aggregate.
pub fn partials_sink(cfg: &PipelineConfig, stages: &[Stage]) -> Option<(String, SinkConfig)> {
    let source = shared_with_aggregates(cfg, stages)?;
    let sink = KafkaSinkConfig {
        kind: "kafka".into(),
        brokers: source.brokers.clone(),
        topic: topic(&source.group),
        key: None,
        value: "payload".into(),
        headers: Vec::new(),
        create_topic: Some(CreateTopic {
            partitions: std::num::NonZeroU32::MIN,
        }),
        options: options(source),
        retry: Default::default(),
    };
    Some((PARTIALS_SINK.into(), SinkConfig::Kafka(sink)))
}

/// How to reach the partials topic, when the pipeline has one.
pub fn plan(cfg: &SourceConfig, sinks: &[(String, SinkConfig)]) -> Option<Plan> {
    let sink = sinks.iter().position(|(n, _)| n == PARTIALS_SINK)?;
    let SourceConfig::Kafka(source) = cfg else {
        return None;
    };
    Some(Plan {
        sink,
        topic: topic(&source.group),
        brokers: source.brokers.clone(),
        group: source.group.clone(),
        options: options(source),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_partials_topic_is_named_after_the_group_in_legal_characters() {
        assert_eq!(super::topic("ns-ad.metrics_1"), "ns-ad.metrics_1.partials");
        assert_eq!(super::topic("a b/c"), "a_b_c.partials");
    }
}
