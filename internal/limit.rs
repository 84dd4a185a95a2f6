//! Rate limiting: a token bucket (a burst, then one request per interval) and a keyed set of
//! them whose memory is bounded whatever the number of keys. Used for self-update requests
//! and for failed authentication per client address.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token bucket state.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    burst: f64,
    interval: Duration,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled one per `interval`.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            tokens: f64::from(burst),
            last: Instant::now(),
            burst: f64::from(burst),
            interval,
        }
    }

    fn refill(&mut self, now: Instant) {
        let refill =
            now.saturating_duration_since(self.last).as_secs_f64() / self.interval.as_secs_f64();
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
    }

    fn wait(&self) -> u64 {
        let wait = (1.0 - self.tokens) * self.interval.as_secs_f64();
        wait.ceil().max(1.0) as u64
    }

    /// Takes a token at `now`; `Err(seconds)` says when to retry.
    pub fn take(&mut self, now: Instant) -> Result<(), u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait())
        }
    }

    /// Whether a token is there at `now`, without taking it; `Err(seconds)` as [`Self::take`].
    pub fn check(&mut self, now: Instant) -> Result<(), u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.wait())
        }
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// One [`TokenBucket`] per key, at most `max_keys` of them: when a new key comes to a full
/// map, the buckets that have refilled (and so remember nothing) are dropped, then the one
/// used longest ago.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    buckets: Mutex<HashMap<K, TokenBucket>>,
    burst: u32,
    interval: Duration,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// Buckets of `burst` tokens refilled one per `interval`, for at most `max_keys` keys.
    pub fn new(burst: u32, interval: Duration, max_keys: usize) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            burst,
            interval,
            max_keys: max_keys.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, TokenBucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a token of `key`; `Err(seconds)` says when to retry.
    pub fn take(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.lock();
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            buckets.retain(|_, b| !b.is_full(now));
            if buckets.len() >= self.max_keys {
                let stalest = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.last)
                    .map(|(k, _)| k.clone());
                if let Some(stalest) = stalest {
                    buckets.remove(&stalest);
                }
            }
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(self.burst, self.interval))
            .take(now)
    }

    /// Whether `key` has a token left, without taking it; `Err(seconds)` as [`Self::take`].
    pub fn check(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.lock();
        let Some(bucket) = buckets.get_mut(key) else {
            return Ok(());
        };
        let result = bucket.check(now);
        if bucket.is_full(now) {
            buckets.remove(key);
        }
        result
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_interval() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2, Duration::from_secs(2));
        assert!(bucket.take(start).is_ok());
        assert!(bucket.take(start).is_ok());
        assert_eq!(bucket.check(start), Err(2));
        assert_eq!(bucket.take(start), Err(2));
        assert!(bucket.take(start + Duration::from_secs(2)).is_ok());
        assert!(bucket.take(start + Duration::from_secs(2)).is_err());
    }

    #[test]
    fn keys_are_limited_apart_and_the_map_stays_bounded() {
        let limiter = KeyedLimiter::new(2, Duration::from_secs(60), 100);
        assert!(limiter.take(&0).is_ok());
        assert!(limiter.take(&0).is_ok());
        assert!(limiter.take(&0).is_err());
        assert!(limiter.check(&0).is_err());
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.take(&1).is_ok());
        for key in 2..1000u32 {
            let _ = limiter.take(&key);
        }
        assert!(limiter.len() <= 100, "{}", limiter.len());
    }
}
