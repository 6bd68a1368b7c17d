//! Reconnect delays: exponential backoff with full jitter.
//!
//! The n-th consecutive failure waits a uniformly random time in
//! `[0, min(max, base * 2^n)]`, so connection points that lost the same instance at the
//! same moment do not come back in lockstep.

use std::time::Duration;

use rand::Rng;

/// The delay state of one channel.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: 0,
        }
    }

    /// Forgets past failures (after a channel stayed up long enough).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The ceiling of the next delay.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The next delay, with full jitter; counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling());
            let d = b.next_delay();
            assert!(d <= *ceilings.last().expect("pushed"));
        }
        assert_eq!(ceilings[0], Duration::from_millis(250));
        assert_eq!(ceilings[1], Duration::from_millis(500));
        assert_eq!(ceilings[6], Duration::from_secs(16));
        assert_eq!(ceilings[7], Duration::from_secs(30));
        assert_eq!(ceilings[9], Duration::from_secs(30));
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(30));
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(250));
    }
}
