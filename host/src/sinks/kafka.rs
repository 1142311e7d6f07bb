//! The `kafka` sink: one message per row, the value being the row as JSON or one text
//! column (e.g. a formatted `payload`), the key and headers taken from other columns.
//! Rows are durable once the broker acknowledged every message (`acks = all`); messages
//! whose delivery failed are produced again under the sink's `retry`. The idempotent
//! producer is off by default because tansu 0.6's SQLite storage panics on some
//! idempotent produces (seen here); set `options = { "enable.idempotence" = "true" }` against
//! Apache Kafka. A retried produce may then duplicate a message; alert ids make duplicate
//! alerts recognisable downstream.

use super::{Sink, SinkError};
use crate::batch::encode::{row_json, write_value};
use crate::config::sink::KafkaSinkConfig;
use crate::connect::BoxFut;
use crate::connect::kafka::{client_config, ensure_topic};
use crate::connect::retry::{Attempt, retry};
use adstream_sdk::{Batch, Column};
use rdkafka::Message;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct KafkaSink {
    name: String,
    cfg: KafkaSinkConfig,
    producer: FutureProducer,
    pending: Vec<DeliveryFuture>,
    /// Deliveries being waited for by a flush, including messages produced again.
    retrying: Mutex<Vec<DeliveryFuture>>,
}

const PRODUCER: [(&str, &str); 5] = [
    ("enable.idempotence", "false"),
    ("acks", "all"),
    ("max.in.flight.requests.per.connection", "1"),
    ("linger.ms", "5"),
    ("message.timeout.ms", "30000"),
];

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
        .map_err(|e| fail(e.to_string()))?;
        let producer: FutureProducer = client_config(&cfg.brokers, &PRODUCER, &cfg.options)
            .map_err(|e| fail(e.to_string()))?
            .create()
            .map_err(|e| fail(e.to_string()))?;
        Ok(KafkaSink {
            name: name.into(),
            cfg: cfg.clone(),
            producer,
            pending: Vec::new(),
            retrying: Mutex::default(),
        })
    }

    fn header_columns<'a>(&self, batch: &'a Batch) -> Vec<&'a Column> {
        let all = self.cfg.headers.iter().any(|h| h == "*");
        batch
            .columns
            .iter()
            .filter(|c| c.name != self.cfg.value && (all || self.cfg.headers.contains(&c.name)))
            .collect()
    }

    /// Queues one message, waiting while librdkafka's local queue is full.
    async fn send(
        &self,
        payload: &[u8],
        key: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<DeliveryFuture, SinkError> {
        loop {
            let mut record = FutureRecord::to(&self.cfg.topic)
                .payload(payload)
                .headers(headers.clone());
            if let Some(k) = key {
                record = record.key(k);
            }
            match self.producer.send_result(record) {
                Ok(f) => return Ok(f),
                Err((e, _))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => {
                    return Err(SinkError::Delivery {
                        sink: self.name.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
    }

    /// Waits for `pending`; produces the failed ones again and returns their futures.
    async fn settle(&self, pending: Vec<DeliveryFuture>) -> Result<(), Attempt<String>> {
        let mut failed: Vec<(String, OwnedMessage)> = Vec::new();
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, msg))) => failed.push((e.to_string(), msg)),
                Err(_) => return Err(Attempt::Fatal("the producer was dropped".into())),
            }
        }
        let Some((error, _)) = failed.first().cloned() else {
            return Ok(());
        };
        let mut again = Vec::new();
        for (_, m) in failed {
            let headers = m.headers().cloned().unwrap_or_default();
            let f = self
                .send(m.payload().unwrap_or_default(), m.key(), headers)
                .await
                .map_err(|e| Attempt::Fatal(e.to_string()))?;
            again.push(f);
        }
        *self.retrying.lock().expect("retry queue") = again;
        Err(Attempt::Retry {
            error: format!("delivery to `{}` failed: {error}", self.cfg.topic),
            wait: None,
        })
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
                return Err(SinkError::Delivery {
                    sink: self.name.clone(),
                    message: format!(
                        "rows have no column `{}` for the message value",
                        self.cfg.value
                    ),
                });
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
                let f = self
                    .send(&value, key_col.map(|_| key.as_slice()), hs)
                    .await?;
                self.pending.push(f);
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
        Box::pin(async move {
            *self.retrying.lock().expect("retry queue") = std::mem::take(&mut self.pending);
            let what = format!("sink `{}`: delivery to `{}`", self.name, self.cfg.topic);
            let this = &*self;
            retry(&this.cfg.retry, &what, || async {
                let pending = std::mem::take(&mut *this.retrying.lock().expect("retry queue"));
                this.settle(pending).await
            })
            .await
            .map_err(|g| SinkError::Delivery {
                sink: this.name.clone(),
                message: format!("{} (after {} tries)", g.last, g.attempts),
            })
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
