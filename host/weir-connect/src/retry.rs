//! The one place where an error's [`ErrorKind`] becomes what the pipeline
//! does: retry after a delay, stop, or set the event aside.

use std::time::{Duration, Instant};

use weir_core::ErrorKind;

/// What to do about a failed stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Restart from the last checkpoint after a delay ([`Backoff`]).
    Retry,
    /// Stop; the error's message tells the operator what to do.
    Stop,
    /// Send the event at fault to the dead letters and go on.
    DeadLetter,
}

impl Directive {
    /// What the pipeline does about an error of `kind`: the one mapping
    /// every stage follows.
    pub fn for_kind(kind: ErrorKind) -> Directive {
        match kind {
            ErrorKind::Transient => Directive::Retry,
            ErrorKind::Operator => Directive::Stop,
            ErrorKind::Event => Directive::DeadLetter,
        }
    }
}

/// Exponential backoff for transient failures: 1 s, 2 s, 4 s ... capped at
/// 30 s, starting over once a run has lasted a minute (the failure was not
/// a persistent one).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// A run that lasted this long resets the delay.
    healthy_after: Duration,
    next: Duration,
    started: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }
}

impl Backoff {
    pub fn new(first: Duration, max: Duration, healthy_after: Duration) -> Self {
        Backoff {
            first,
            max,
            healthy_after,
            next: first,
            started: Instant::now(),
        }
    }

    /// Marks the start of an attempt.
    pub fn attempt(&mut self) {
        self.started = Instant::now();
    }

    /// The delay before the next attempt, after the current one failed.
    pub fn next_delay(&mut self) -> Duration {
        if self.started.elapsed() >= self.healthy_after {
            self.next = self.first;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_reset_after_a_healthy_run() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(350),
            Duration::from_millis(50),
        );
        let delays: Vec<Duration> = (0..4)
            .map(|_| {
                b.attempt();
                b.next_delay()
            })
            .collect();
        assert_eq!(delays, [100, 200, 350, 350].map(Duration::from_millis));
        b.attempt();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn each_kind_has_its_directive() {
        assert_eq!(Directive::for_kind(ErrorKind::Transient), Directive::Retry);
        assert_eq!(Directive::for_kind(ErrorKind::Operator), Directive::Stop);
        assert_eq!(Directive::for_kind(ErrorKind::Event), Directive::DeadLetter);
    }
}
