//! The `kafka` sink: one message per row, the value being the row as JSON or one text
//! column (e.g. a formatted `payload`), the key and headers taken from other columns.
//! Rows are durable once the broker acknowledged every message (`acks = all`). The
//! idempotent producer is off by default because tansu 0.6's SQLite storage panics on some
//! idempotent produces (seen here); set `options = { "enable.idempotence" = "true" }` against
//! Apache Kafka. A retried produce may then duplicate a message; alert ids make duplicate
//! alerts recognisable downstream.

use super::{Sink, SinkError};
use crate::batch::encode::{row_json, write_value};
use crate::kafka::{CreateTopic, client_config, ensure_topic};
use crate::sources::BoxFut;
use adstream_sdk::{Batch, Column};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `[sink.NAME] kind = "kafka"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    pub kind: String,
    pub brokers: String,
    pub topic: String,
    /// Column whose value is the message key (e.g. `alert_id`); none by default.
    pub key: Option<String>,
    /// `"row"` for the whole row as JSON, or the name of a text column.
    #[serde(default = "row")]
    pub value: String,
    /// Columns sent as message headers instead of in the value; `"*"` for every column
    /// but the value.
    #[serde(default)]
    pub headers: Vec<String>,
    pub create_topic: Option<CreateTopic>,
    /// Extra librdkafka producer settings.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn row() -> String {
    "row".into()
}

pub struct KafkaSink {
    name: String,
    cfg: KafkaSinkConfig,
    producer: FutureProducer,
    pending: Vec<DeliveryFuture>,
}

impl KafkaSink {
    pub async fn open(name: &str, cfg: &KafkaSinkConfig) -> Result<Self, SinkError> {
        let fail = |message: String| SinkError::Config {
            sink: name.into(),
            message,
        };
        ensure_topic(
            &cfg.brokers,
            &cfg.topic,
            cfg.create_topic.as_ref(),
            &cfg.options,
        )
        .await
        .map_err(fail)?;
        let mut config = client_config(&cfg.brokers, &BTreeMap::new());
        config
            .set("enable.idempotence", "false")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "1")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000");
        for (k, v) in &cfg.options {
            config.set(k, v);
        }
        let producer: FutureProducer = config.create().map_err(|e| fail(e.to_string()))?;
        Ok(KafkaSink {
            name: name.into(),
            cfg: cfg.clone(),
            producer,
            pending: Vec::new(),
        })
    }

    fn fail(&self, message: String) -> SinkError {
        SinkError::Delivery {
            sink: self.name.clone(),
            message,
        }
    }

    fn header_columns<'a>(&self, batch: &'a Batch) -> Vec<&'a Column> {
        let all = self.cfg.headers.iter().any(|h| h == "*");
        batch
            .columns
            .iter()
            .filter(|c| c.name != self.cfg.value && (all || self.cfg.headers.contains(&c.name)))
            .collect()
    }
}

/// The text of a value for a key or header (strings without JSON quotes).
fn text(col: &Column, row: usize, buf: &mut Vec<u8>) {
    buf.clear();
    if let Ok(s) = col.as_text() {
        buf.extend_from_slice(s.get(row).unwrap_or("").as_bytes());
    } else {
        write_value(buf, col, row);
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let value_col = (self.cfg.value != "row")
                .then(|| batch.column(&self.cfg.value))
                .flatten();
            if self.cfg.value != "row" && value_col.is_none() {
                return Err(self.fail(format!(
                    "rows have no column `{}` for the message value",
                    self.cfg.value
                )));
            }
            let key_col = self.cfg.key.as_deref().and_then(|k| batch.column(k));
            let headers = self.header_columns(&batch);
            let (mut key, mut value, mut hbuf) = (Vec::new(), Vec::new(), Vec::new());
            for row in 0..batch.len() {
                match value_col {
                    Some(c) => text(c, row, &mut value),
                    None => value = row_json(&batch, row).into_bytes(),
                }
                let mut hs = OwnedHeaders::new_with_capacity(headers.len());
                for h in &headers {
                    text(h, row, &mut hbuf);
                    hs = hs.insert(Header {
                        key: &h.name,
                        value: Some(&hbuf),
                    });
                }
                if let Some(c) = key_col {
                    text(c, row, &mut key);
                }
                loop {
                    let mut record = FutureRecord::to(&self.cfg.topic)
                        .payload(&value)
                        .headers(hs.clone());
                    if key_col.is_some() {
                        record = record.key(&key);
                    }
                    match self.producer.send_result(record) {
                        Ok(f) => {
                            self.pending.push(f);
                            break;
                        }
                        // The local queue is full: let deliveries drain, then retry.
                        Err((e, _))
                            if e.rdkafka_error_code()
                                == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                        {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err((e, _)) => return Err(self.fail(e.to_string())),
                    }
                }
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            for f in std::mem::take(&mut self.pending) {
                match f.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => {
                        return Err(
                            self.fail(format!("delivery to `{}` failed: {e}", self.cfg.topic))
                        );
                    }
                    Err(_) => return Err(self.fail("the producer was dropped".into())),
                }
            }
            Ok(())
        })
    }

    fn wants_flush(&self) -> bool {
        // Deliveries complete in the background; wait for them only every so many messages
        // or when the sink's delay passes, so that produce and acknowledge overlap.
        self.pending.len() >= 10_000
    }

    fn max_delay(&self) -> Duration {
        Duration::from_millis(50)
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}
