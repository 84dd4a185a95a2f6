//! A token bucket for update requests: a small burst, then one request per interval.

use std::time::{Duration, Instant};

/// Requests allowed in a burst.
pub const BURST: f64 = 6.0;
/// One more request is allowed per this interval.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Token bucket state.
#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    burst: f64,
    interval: Duration,
}

impl Default for TokenBucket {
    fn default() -> Self {
        Self::new(BURST, INTERVAL)
    }
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled one per `interval`.
    pub fn new(burst: f64, interval: Duration) -> Self {
        Self {
            tokens: burst,
            last: Instant::now(),
            burst,
            interval,
        }
    }

    /// Takes a token at `now`; `Err(seconds)` says when to retry.
    pub fn take(&mut self, now: Instant) -> Result<(), u64> {
        let refill =
            now.saturating_duration_since(self.last).as_secs_f64() / self.interval.as_secs_f64();
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) * self.interval.as_secs_f64();
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_interval() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, Duration::from_secs(2));
        assert!(bucket.take(start).is_ok());
        assert!(bucket.take(start).is_ok());
        assert_eq!(bucket.take(start), Err(2));
        assert!(bucket.take(start + Duration::from_secs(2)).is_ok());
        assert!(bucket.take(start + Duration::from_secs(2)).is_err());
    }
}
