//! Decoding ahead of the processor: a task between the source loop and the processor
//! decodes each raw batch on a blocking thread while the processor runs the stages on an
//! earlier one, up to one batch per core at once, and passes the batches on in the order
//! they came, each as soon as it is decoded.

use super::feed::{Feed, Incoming};
use crate::batch::RawBatch;
use crate::batch::decode::Decoder;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Starts the decoding task; returns where to send raw batches (closing it ends the task
/// once every batch sent is passed on) and the task.
pub fn start(
    decoder: Decoder,
    feed: mpsc::Sender<Feed>,
) -> (mpsc::Sender<RawBatch>, JoinHandle<()>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (tx, rx) = mpsc::channel(1);
    let decoding = Decoding {
        decoder: Arc::new(decoder),
        ahead: VecDeque::new(),
        depth: cores.clamp(1, 4),
    };
    (tx, tokio::spawn(decoding.run(rx, feed)))
}

/// Batches being decoded, oldest first.
struct Decoding {
    decoder: Arc<Decoder>,
    ahead: VecDeque<JoinHandle<Box<Incoming>>>,
    depth: usize,
}

impl Decoding {
    fn push(&mut self, raw: RawBatch) {
        let decoder = self.decoder.clone();
        self.ahead.push_back(tokio::task::spawn_blocking(move || {
            let decoded = decoder.decode(&raw);
            Box::new(Incoming { raw, decoded })
        }));
    }

    /// The oldest batch, once decoded. Cancel-safe: the batch stays first until taken.
    async fn oldest(&mut self) -> Box<Incoming> {
        let handle = self.ahead.front_mut().expect("called with batches ahead");
        let incoming = handle
            .await
            .expect("the decoder does not panic (tests/it/fuzz.rs)");
        self.ahead.pop_front();
        incoming
    }

    async fn run(mut self, mut raw: mpsc::Receiver<RawBatch>, feed: mpsc::Sender<Feed>) {
        let (mut seq, mut open) = (0, true);
        loop {
            let (busy, room) = (!self.ahead.is_empty(), self.ahead.len() < self.depth);
            tokio::select! {
                biased;
                incoming = self.oldest(), if busy => {
                    seq += 1;
                    if feed.send(Feed::Batch(seq, incoming)).await.is_err() {
                        return; // the processor stopped; its result says why
                    }
                }
                next = raw.recv(), if open && room => match next {
                    Some(b) => self.push(b),
                    None => open = false,
                },
                else => return,
            }
        }
    }
}
