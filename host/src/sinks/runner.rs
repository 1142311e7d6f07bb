//! Runs one sink as a task: rows arrive tagged with the sequence number of the source batch
//! they came from, and the task publishes the highest sequence number up to which every row
//! it was given is durable. The pipeline commits source offsets only below the lowest such
//! number across sinks.

use super::{Sink, SinkError};
use adstream_sdk::Batch;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A message to a sink task.
pub enum SinkMsg {
    /// Rows derived from source batch `seq`; `done` is told once they are durable.
    Rows {
        seq: u64,
        batch: Arc<Batch>,
        done: Option<oneshot::Sender<()>>,
    },
    /// Source batch `seq` produced nothing for this sink.
    Mark { seq: u64 },
}

/// The pipeline's end of a sink task.
pub struct SinkHandle {
    pub name: String,
    pub tx: mpsc::Sender<SinkMsg>,
    /// Every row of source batches up to this sequence number is durable.
    pub acked: watch::Receiver<u64>,
    pub task: JoinHandle<Result<(), SinkError>>,
}

/// Batches waiting in a sink's channel before the pipeline blocks (backpressure).
const QUEUE: usize = 64;

/// Starts the task for `sink`.
pub fn spawn(name: &str, sink: Box<dyn Sink>) -> SinkHandle {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (ack_tx, acked) = watch::channel(0);
    let task = tokio::spawn(run(sink, rx, ack_tx));
    SinkHandle {
        name: name.to_string(),
        tx,
        acked,
        task,
    }
}

async fn run(
    mut sink: Box<dyn Sink>,
    mut rx: mpsc::Receiver<SinkMsg>,
    acked: watch::Sender<u64>,
) -> Result<(), SinkError> {
    // The last sequence number seen, and whether rows since the last flush are pending.
    let mut last = 0;
    let mut deadline: Option<Instant> = None;
    // Senders waiting to hear that their rows are durable (dead letters from other sinks).
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                sink.flush().await?;
                deadline = None;
                let _ = acked.send(last);
                waiting.drain(..).for_each(|w| { let _ = w.send(()); });
                continue;
            }
        };
        match msg {
            Some(SinkMsg::Rows { seq, batch, done }) => {
                sink.write(batch).await?;
                // Sequence numbers only grow here; rows sent by another sink carry 0.
                last = last.max(seq);
                waiting.extend(done);
                if sink.wants_flush() {
                    sink.flush().await?;
                    deadline = None;
                    let _ = acked.send(last);
                    waiting.drain(..).for_each(|w| {
                        let _ = w.send(());
                    });
                } else if deadline.is_none() {
                    deadline = Some(Instant::now() + sink.max_delay());
                }
            }
            Some(SinkMsg::Mark { seq }) => {
                last = last.max(seq);
                if deadline.is_none() {
                    let _ = acked.send(last);
                }
            }
            None => {
                sink.flush().await?;
                let _ = acked.send(last);
                waiting.drain(..).for_each(|w| {
                    let _ = w.send(());
                });
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::BoxFut;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::sync::Semaphore;

    /// Buffers rows; a flush waits for a permit, so a test decides when rows are durable.
    struct Gate {
        permits: Arc<Semaphore>,
        buffered: usize,
        durable: Arc<Mutex<usize>>,
    }

    impl Sink for Gate {
        fn write(&mut self, batch: Arc<Batch>) -> BoxFut<'_, Result<(), SinkError>> {
            self.buffered += batch.len();
            Box::pin(async { Ok(()) })
        }
        fn flush(&mut self) -> BoxFut<'_, Result<(), SinkError>> {
            Box::pin(async move {
                self.permits.acquire().await.expect("open").forget();
                *self.durable.lock().unwrap() += std::mem::take(&mut self.buffered);
                Ok(())
            })
        }
    }

    fn rows(n: usize) -> Arc<Batch> {
        let mut b = adstream_sdk::I64Builder::default();
        (0..n).for_each(|i| b.push(i as i64));
        Arc::new(Batch::from_columns(vec![b.finish("x")]).unwrap())
    }

    #[tokio::test]
    async fn a_batch_is_acknowledged_only_once_its_rows_are_durable() {
        let permits = Arc::new(Semaphore::new(0));
        let durable = Arc::new(Mutex::new(0));
        let sink = Gate {
            permits: permits.clone(),
            buffered: 0,
            durable: durable.clone(),
        };
        let mut h = spawn("gate", Box::new(sink));
        let send = |seq| SinkMsg::Rows {
            seq,
            batch: rows(5),
            done: None,
        };
        h.tx.send(send(1)).await.unwrap();
        h.tx.send(SinkMsg::Mark { seq: 2 }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(*h.acked.borrow(), 0, "rows of batch 1 are not durable yet");
        permits.add_permits(1);
        h.acked.wait_for(|&a| a >= 1).await.unwrap();
        assert_eq!(*durable.lock().unwrap(), 5);
        h.tx.send(SinkMsg::Mark { seq: 3 }).await.unwrap();
        h.acked.wait_for(|&a| a >= 3).await.unwrap();
        drop(h.tx);
        permits.add_permits(1);
        h.task.await.unwrap().unwrap();
    }
}
