//! Bounded waits whose patience CI can tune (linkerd's `assert_eventually!`).
//!
//! [`patience`] scales a base duration by the `CMG_TEST_PATIENCE` environment variable
//! (a multiplier, read at every call; 1 when unset), for `tokio::time::timeout` around
//! an event a test waits on (a `watch`, a channel, a task's end). [`eventually`] polls an
//! observation until a condition holds, within such a scaled bound, and panics naming
//! what it awaited and the last value it observed.
//!
//! Poll only what no event announces (a counter on a metrics page, a row in a store, a
//! file another process writes). It never sets the variable, and it does not catch a
//! panic inside the observation: an observation that can fail returns its `Result` as
//! the observed value, so the last error shows in the timeout message.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// The environment variable that scales every wait: a positive number ("3", "2.5").
pub const PATIENCE_VAR: &str = "CMG_TEST_PATIENCE";

/// How long [`eventually`] waits unless told otherwise (before scaling).
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);

/// How often [`eventually`] observes unless told otherwise.
pub const DEFAULT_EVERY: Duration = Duration::from_millis(20);

/// `base` times the multiplier in [`PATIENCE_VAR`], read now.
///
/// Panics when the variable is set to anything but a positive number up to 1000: a typo
/// in a CI setting should fail loudly, not silently wait the default.
pub fn patience(base: Duration) -> Duration {
    base.mul_f64(factor())
}

/// The multiplier in [`PATIENCE_VAR`], read now; 1 when unset.
pub fn factor() -> f64 {
    match std::env::var(PATIENCE_VAR) {
        Err(std::env::VarError::NotPresent) => 1.0,
        Ok(text) => parse_factor(&text).unwrap_or_else(|| {
            panic!("{PATIENCE_VAR}={text:?}: expected a positive multiplier such as 3 or 2.5")
        }),
        Err(e) => panic!("{PATIENCE_VAR}: {e}"),
    }
}

fn parse_factor(text: &str) -> Option<f64> {
    let f: f64 = text.trim().parse().ok()?;
    (f.is_finite() && f > 0.0 && f <= 1000.0).then_some(f)
}

/// Starts a bounded wait for `what` (said in the panic message: "the gateway to count
/// the third request"). Defaults: [`DEFAULT_WITHIN`] (scaled), observed every
/// [`DEFAULT_EVERY`].
pub fn eventually(what: impl Into<String>) -> Eventually {
    Eventually {
        what: what.into(),
        within: DEFAULT_WITHIN,
        every: DEFAULT_EVERY,
    }
}

/// A bounded wait, built by [`eventually`]; run it with one of the `until` methods.
#[derive(Debug, Clone)]
#[must_use = "a wait does nothing until one of its `until` methods is awaited"]
pub struct Eventually {
    what: String,
    within: Duration,
    every: Duration,
}

/// How a wait ended without its condition: the last observation and the bound.
struct Expired<T> {
    last: T,
    bound: Duration,
}

impl Eventually {
    /// Waits at most `base` scaled by [`patience`].
    pub fn within(mut self, base: Duration) -> Self {
        self.within = base;
        self
    }

    /// Observes every `interval` (the last sleep is cut short at the deadline).
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = interval;
        self
    }

    /// Calls `observe` until `done` holds for its value, and returns that value.
    ///
    /// Panics at the deadline with what was awaited and the last value observed.
    pub async fn until<T: Debug>(
        self,
        mut observe: impl FnMut() -> T,
        done: impl FnMut(&T) -> bool,
    ) -> T {
        let what = self.what.clone();
        self.run(|| std::future::ready(observe()), done)
            .await
            .unwrap_or_else(|e| e.panic(&what))
    }

    /// As [`Self::until`], for an observation that has to be awaited.
    pub async fn until_async<T: Debug, F: Future<Output = T>>(
        self,
        observe: impl FnMut() -> F,
        done: impl FnMut(&T) -> bool,
    ) -> T {
        let what = self.what.clone();
        self.run(observe, done)
            .await
            .unwrap_or_else(|e| e.panic(&what))
    }

    /// As [`Self::until`], but at the deadline returns `Err` with the last value
    /// instead of panicking: for a test that checks that something does *not* happen
    /// within the bound, or accepts either outcome and checks each.
    pub async fn try_until<T>(
        self,
        mut observe: impl FnMut() -> T,
        done: impl FnMut(&T) -> bool,
    ) -> Result<T, T> {
        self.run(|| std::future::ready(observe()), done)
            .await
            .map_err(|e| e.last)
    }

    async fn run<T, F: Future<Output = T>>(
        self,
        mut observe: impl FnMut() -> F,
        mut done: impl FnMut(&T) -> bool,
    ) -> Result<T, Expired<T>> {
        let bound = patience(self.within);
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let value = observe().await;
            if done(&value) {
                return Ok(value);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Expired { last: value, bound });
            }
            tokio::time::sleep(self.every.min(deadline - now)).await;
        }
    }
}

impl<T: Debug> Expired<T> {
    fn panic(self, what: &str) -> ! {
        panic!(
            "timed out after {:?} waiting for {what} ({PATIENCE_VAR} scales the bound); \
             last observed: {:?}",
            self.bound, self.last
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors() {
        assert_eq!(parse_factor("3"), Some(3.0));
        assert_eq!(parse_factor(" 2.5 "), Some(2.5));
        for bad in ["", "0", "-1", "fast", "inf", "NaN", "1001"] {
            assert_eq!(parse_factor(bad), None, "{bad:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn returns_the_first_value_that_is_done() {
        let mut n = 0;
        let got = eventually("n to reach 3")
            .until(
                || {
                    n += 1;
                    n
                },
                |n| *n >= 3,
            )
            .await;
        assert_eq!(got, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn async_observations_are_awaited() {
        let (tx, rx) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(7);
            tx.closed().await;
        });
        let got = eventually("the value 7")
            .until_async(|| std::future::ready(*rx.borrow()), |v| *v == 7)
            .await;
        assert_eq!(got, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn try_until_gives_the_last_value_at_the_deadline() {
        let started = tokio::time::Instant::now();
        let got = eventually("never")
            .within(Duration::from_millis(500))
            .every(Duration::from_millis(100))
            .try_until(|| "still waiting", |_| false)
            .await;
        assert_eq!(got, Err("still waiting"));
        // Paused time: exactly the bound (scaled by the environment's factor), no more.
        assert_eq!(started.elapsed(), patience(Duration::from_millis(500)));
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(
        expected = "waiting for the door to open (CMG_TEST_PATIENCE scales the bound); last observed: \"closed\""
    )]
    async fn panics_naming_what_and_the_last_value() {
        eventually("the door to open")
            .within(Duration::from_millis(100))
            .until(|| "closed", |_| false)
            .await;
    }
}
