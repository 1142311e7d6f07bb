//! `retry = { initial = "200ms", max = "5s", attempts = 10 }`: the one vocabulary every
//! sink uses for how it retries a failed write. `attempts` unset retries until the write
//! succeeds, which holds the pipeline back (nothing is lost, and the source stops reading)
//! while a service is down.

use super::units::Duration;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The first wait; each later one doubles, up to `max`.
    #[serde(default = "initial")]
    pub initial: Duration,
    #[serde(default = "max")]
    pub max: Duration,
    /// Tries in all, the first included; unset: until it succeeds.
    pub attempts: Option<u32>,
}

fn initial() -> Duration {
    Duration::from_millis(200)
}

/// Short enough that a service that comes back is used again within seconds (and a
/// stop waiting on a retry ends well inside its bound).
fn max() -> Duration {
    Duration::from_secs(5)
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial: initial(),
            max: max(),
            attempts: None,
        }
    }
}

/// A `retry` table as written, for a component whose defaults are not the generic ones
/// (the webhook's): the keys left out keep that component's values rather than the
/// generic defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialRetry {
    initial: Option<Duration>,
    max: Option<Duration>,
    attempts: Option<u32>,
}

impl PartialRetry {
    pub fn over(self, defaults: RetryConfig) -> RetryConfig {
        RetryConfig {
            initial: self.initial.unwrap_or(defaults.initial),
            max: self.max.unwrap_or(defaults.max),
            attempts: self.attempts.or(defaults.attempts),
        }
    }
}

impl RetryConfig {
    /// The default policy with at most `n` attempts.
    pub fn at_most(n: u32) -> Self {
        RetryConfig {
            attempts: Some(n),
            ..Default::default()
        }
    }
}
