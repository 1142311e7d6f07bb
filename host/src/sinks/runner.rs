//! Runs one sink as a task: rows arrive in the order the pipeline produced them, and a
//! barrier asks the sink to make everything before it durable and to say how far it has
//! written (for sinks that can be rewound, a file's length). A checkpoint is written only
//! once every sink has answered its barrier, so the rows a checkpoint counts as emitted are
//! durable in every sink.

use super::{Sink, SinkError};
use crate::connect::retry::RETRIES;
use adstream_sdk::Batch;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A sink's answer to a barrier: its mark (see `Sink::checkpoint`), or why it failed.
pub type BarrierAnswer = Result<Option<u64>, String>;

/// A message to a sink task.
pub enum SinkMsg {
    /// Rows to write; `done` is told once they are durable.
    Rows {
        batch: Arc<Batch>,
        done: Option<oneshot::Sender<()>>,
    },
    /// Make every row sent before this durable, then answer with the sink's mark.
    Barrier {
        reply: oneshot::Sender<BarrierAnswer>,
    },
}

/// The pipeline's end of a sink task.
pub struct SinkHandle {
    pub name: String,
    pub tx: mpsc::Sender<SinkMsg>,
    pub task: JoinHandle<Result<(), SinkError>>,
    /// Attempts the sink retried (`connect::retry` counts them).
    pub retries: Arc<AtomicU64>,
}

/// Batches waiting in a sink's channel before the pipeline blocks (backpressure).
const QUEUE: usize = 64;

/// Starts the task for `sink`.
pub fn spawn(name: &str, sink: Box<dyn Sink>) -> SinkHandle {
    let (tx, rx) = mpsc::channel(QUEUE);
    let retries = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(RETRIES.scope(retries.clone(), run(sink, rx)));
    SinkHandle {
        name: name.to_string(),
        tx,
        task,
        retries,
    }
}

/// Flushes and tells everyone waiting for durability.
async fn flush(
    sink: &mut Box<dyn Sink>,
    waiting: &mut Vec<oneshot::Sender<()>>,
) -> Result<(), SinkError> {
    sink.flush().await?;
    waiting.drain(..).for_each(|w| {
        let _ = w.send(());
    });
    Ok(())
}

async fn run(mut sink: Box<dyn Sink>, mut rx: mpsc::Receiver<SinkMsg>) -> Result<(), SinkError> {
    let mut deadline: Option<Instant> = None;
    // Senders waiting to hear that their rows are durable (dead letters from other sinks).
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                flush(&mut sink, &mut waiting).await?;
                deadline = None;
                continue;
            }
        };
        match msg {
            Some(SinkMsg::Rows { batch, done }) => {
                sink.write(batch).await?;
                waiting.extend(done);
                if sink.wants_flush() {
                    flush(&mut sink, &mut waiting).await?;
                    deadline = None;
                } else if deadline.is_none() {
                    deadline = Some(Instant::now() + sink.max_delay());
                }
            }
            Some(SinkMsg::Barrier { reply }) => {
                deadline = None;
                let marked = match flush(&mut sink, &mut waiting).await {
                    Ok(()) => sink.checkpoint().await,
                    Err(e) => Err(e),
                };
                let _ = reply.send(marked.as_ref().map(|m| *m).map_err(|e| e.to_string()));
                marked?;
            }
            None => return flush(&mut sink, &mut waiting).await,
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
        fn wants_flush(&self) -> bool {
            false
        }
        fn max_delay(&self) -> Duration {
            Duration::from_secs(3600)
        }
        fn checkpoint(&mut self) -> BoxFut<'_, Result<Option<u64>, SinkError>> {
            let mark = *self.durable.lock().unwrap() as u64;
            Box::pin(async move { Ok(Some(mark)) })
        }
    }

    fn rows(n: usize) -> Arc<Batch> {
        let mut b = adstream_sdk::I64Builder::default();
        (0..n).for_each(|i| b.push(i as i64));
        Arc::new(Batch::from_columns(vec![b.finish("x")]).unwrap())
    }

    #[tokio::test]
    async fn a_barrier_is_answered_only_once_the_rows_before_it_are_durable() {
        let permits = Arc::new(Semaphore::new(0));
        let durable = Arc::new(Mutex::new(0));
        let sink = Gate {
            permits: permits.clone(),
            buffered: 0,
            durable: durable.clone(),
        };
        let h = spawn("gate", Box::new(sink));
        let rows = |n| SinkMsg::Rows {
            batch: rows(n),
            done: None,
        };
        // Buffered rows (this sink wants no flush of its own until the barrier).
        h.tx.send(rows(5)).await.unwrap();
        let (reply, mut answer) = oneshot::channel();
        h.tx.send(SinkMsg::Barrier { reply }).await.unwrap();
        h.tx.send(rows(2)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            answer.try_recv().is_err(),
            "rows before the barrier are not durable yet"
        );
        permits.add_permits(1);
        assert_eq!(
            answer.await.unwrap(),
            Ok(Some(5)),
            "the mark covers exactly the rows before it"
        );
        drop(h.tx);
        permits.add_permits(1);
        h.task.await.unwrap().unwrap();
        assert_eq!(*durable.lock().unwrap(), 7, "closing flushes the rest");
    }
}
