//! The retry loop every sink uses: exponential backoff (backon's) under a
//! [`RetryConfig`], with a wait the peer asks for (HTTP `Retry-After`) taking precedence up
//! to [`MAX_ASKED_WAIT`], and each failed attempt logged.

use crate::config::RetryConfig;
use backon::{BackoffBuilder, ExponentialBuilder};
use std::future::Future;
use std::time::Duration;

/// Why an attempt failed, and whether to try again.
pub enum Attempt<E> {
    /// Worth another try, after at least `wait` if the peer named one.
    Retry { error: E, wait: Option<Duration> },
    /// Will fail the same way again.
    Fatal(E),
}

/// A failure: fatal, or after the last attempt.
#[derive(Debug)]
pub struct GaveUp<E> {
    pub attempts: u32,
    pub last: E,
    /// The error said another try would fail the same way.
    pub fatal: bool,
}

/// The longest wait a peer may ask for: a longer `Retry-After` is cut to it, so that a peer
/// cannot hold a sink, and the alerts queued behind it, for hours.
pub const MAX_ASKED_WAIT: Duration = Duration::from_secs(60);

fn backoff(cfg: &RetryConfig) -> impl Iterator<Item = Duration> {
    let b = ExponentialBuilder::default()
        .with_min_delay(cfg.initial.get())
        .with_max_delay(cfg.max.get())
        .with_factor(2.0);
    match cfg.attempts {
        Some(n) => b.with_max_times(n.saturating_sub(1) as usize).build(),
        None => b.without_max_times().build(),
    }
}

tokio::task_local! {
    /// Where the task running a sink counts its retries, for status and metrics (the
    /// sink runner sets it; elsewhere retries are only logged).
    pub static RETRIES: std::sync::Arc<std::sync::atomic::AtomicU64>;
}

/// Runs `op` until it succeeds, fails fatally, or `cfg`'s attempts are used up. `what`
/// names the operation in the log.
pub async fn retry<T, E, F, Fut>(cfg: &RetryConfig, what: &str, mut op: F) -> Result<T, GaveUp<E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let mut delays = backoff(cfg);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (error, asked) = match op().await {
            Ok(v) => return Ok(v),
            Err(Attempt::Fatal(last)) => {
                return Err(GaveUp {
                    attempts,
                    last,
                    fatal: true,
                });
            }
            Err(Attempt::Retry { error, wait }) => (error, wait),
        };
        let Some(delay) = delays.next() else {
            return Err(GaveUp {
                attempts,
                last: error,
                fatal: false,
            });
        };
        let wait = asked.map_or(delay, |w| w.min(MAX_ASKED_WAIT).max(delay));
        let _ = RETRIES.try_with(|r| r.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        tracing::warn!(
            attempt = attempts,
            "{what} failed, retrying in {wait:?}: {error}"
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration as D;

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_or_the_last_attempt() {
        let cfg = RetryConfig {
            initial: D::from_millis(10),
            max: D::from_millis(40),
            attempts: Some(3),
        };
        let mut calls = 0;
        let r: Result<(), _> = retry(&cfg, "t", || {
            calls += 1;
            async {
                Err(Attempt::Retry {
                    error: "down",
                    wait: None,
                })
            }
        })
        .await;
        assert_eq!(r.unwrap_err().attempts, 3);
        assert_eq!(calls, 3);
        let mut calls = 0;
        let ok = retry(&RetryConfig::default(), "t", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 5 {
                    Err(Attempt::Retry {
                        error: "down",
                        wait: None,
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(ok.unwrap(), 5, "unlimited attempts go on until it works");
        let fatal: Result<(), _> = retry(&RetryConfig::default(), "t", || async {
            Err(Attempt::Fatal("no"))
        })
        .await;
        assert_eq!(fatal.unwrap_err().attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peers_wait_is_kept_up_to_a_minute() {
        for (asked, waited) in [(2, 2), (3600 * 24 * 365, 60)] {
            let began = tokio::time::Instant::now();
            let mut calls = 0;
            let r = retry(&RetryConfig::default(), "t", || {
                calls += 1;
                let first = calls == 1;
                async move {
                    match first {
                        true => Err(Attempt::Retry {
                            error: "429",
                            wait: Some(Duration::from_secs(asked)),
                        }),
                        false => Ok(()),
                    }
                }
            })
            .await;
            assert!(r.is_ok());
            // The clock is paused: it moved by exactly the waits slept.
            assert_eq!(began.elapsed().as_secs(), waited, "asked {asked} s");
        }
    }
}
