//! The processor's half of a checkpoint: the cut at a batch boundary. Every stateful stage
//! is snapshotted, the source positions and watermark noted, and every sink sent a barrier;
//! the writer task (`writer.rs`) writes the file once every sink has answered.
//! A snapshot that fails means no checkpoint this time, never a partial one.

use super::file::Checkpoint;
use super::writer::Pending;
use crate::pipeline::error::RunError;
use crate::pipeline::processor::Processor;
use crate::sinks::runner::SinkMsg;
use std::time::SystemTime;
use tokio::sync::oneshot;

impl Processor {
    /// Cuts after batch `seq` and hands the checkpoint over to be written.
    pub(in crate::pipeline) fn checkpoint(&mut self, seq: u64) -> Result<(), RunError> {
        let mut stages = Vec::new();
        for stage in self.stages.iter_mut().filter(|s| s.spec.plugin.stateful()) {
            match stage.snapshot() {
                Ok(Some(state)) => stages.push((stage.spec.name.to_string(), state)),
                Ok(None) => {}
                Err(why) => {
                    tracing::error!("no checkpoint after batch {seq}: {why}");
                    self.stats.lock().expect("stats").checkpoint_failures += 1;
                    if let Some(cut) = &mut self.cut {
                        cut.skipped();
                    }
                    return Ok(());
                }
            }
        }
        let merging = self.shared.as_ref().and_then(|s| s.merging.as_ref());
        stages.extend(merging.map(|m| m.state()));
        let (watermark, partition_times) = self.watermark.state();
        let cp = Checkpoint {
            seq,
            positions: self.next.iter().map(|(&p, &o)| (p, o)).collect(),
            watermark,
            partition_times,
            stages,
            sinks: Vec::new(),
            taken_at_ms: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        let mut marks = Vec::with_capacity(self.sinks.len());
        for i in 0..self.sinks.len() {
            let (reply, answer) = oneshot::channel();
            self.send(i, SinkMsg::Barrier { reply })?;
            marks.push((self.sinks[i].0.clone(), answer));
        }
        let claims = (self.shared.as_ref()).map(|s| s.owned.values().copied().collect());
        let release =
            (self.shared.as_mut()).map_or_else(Vec::new, |s| std::mem::take(&mut s.releasing));
        if let Some(cut) = &mut self.cut {
            cut.send(Pending {
                cp,
                marks,
                claims,
                release,
            });
        }
        Ok(())
    }
}
