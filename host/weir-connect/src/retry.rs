//! The one place where an error's [`ErrorKind`] becomes what the pipeline
//! does: retry after a delay, stop, or set the event aside.

use std::time::{Duration, Instant};

use weir_core::ErrorKind;

/// What to do about a failed stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Restart from the last checkpoint after this delay.
    RetryAfter(Duration),
    /// Stop; the error's message tells the operator what to do.
    Stop,
    /// Send the event at fault to the dead letters and go on.
    DeadLetter,
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

    /// What to do about an error of `kind` that ended the current attempt.
    pub fn decide(&mut self, kind: ErrorKind) -> Directive {
        match kind {
            ErrorKind::Transient => {
                if self.started.elapsed() >= self.healthy_after {
                    self.next = self.first;
                }
                let delay = self.next;
                self.next = (self.next * 2).min(self.max);
                Directive::RetryAfter(delay)
            }
            ErrorKind::Operator => Directive::Stop,
            ErrorKind::Event => Directive::DeadLetter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_back_off_and_reset_after_a_healthy_run() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(350),
            Duration::from_millis(50),
        );
        let delays: Vec<Directive> = (0..4)
            .map(|_| {
                b.attempt();
                b.decide(ErrorKind::Transient)
            })
            .collect();
        assert_eq!(
            delays,
            [100, 200, 350, 350].map(|ms| Directive::RetryAfter(Duration::from_millis(ms)))
        );
        b.attempt();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            b.decide(ErrorKind::Transient),
            Directive::RetryAfter(Duration::from_millis(100))
        );
    }

    #[test]
    fn operator_errors_stop_and_event_errors_dead_letter() {
        let mut b = Backoff::default();
        assert_eq!(b.decide(ErrorKind::Operator), Directive::Stop);
        assert_eq!(b.decide(ErrorKind::Event), Directive::DeadLetter);
    }
}
