//! Failed authentications per client address (`GANTRY_AUTH_FAILURES_PER_MIN`):
//! a leaky bucket per peer IPv4 address or IPv6 /64 that fills by one per
//! bad token and drains at the configured rate. Once full, that address gets 429 before its token is
//! even looked at, so guessing tokens costs minutes, not microseconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Addresses tracked at most; past it, buckets that drained are dropped,
/// and if every one is still full the oldest state is forgotten rather
/// than growing without bound.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

/// The failure counter; `None` of it means no limit.
#[derive(Debug)]
pub(crate) struct FailureLimit {
    /// Failures drained per second.
    rate: f64,
    /// Failures an address may have before it is refused.
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// The bucket of an address: an IPv6 client usually holds a whole /64,
/// so it counts as one; an IPv4-mapped address as its IPv4 one.
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

impl FailureLimit {
    /// `per_min` failures a minute sustained, bursts of as many; `None`
    /// for 0 (off).
    pub(crate) fn new(per_min: u32) -> Option<Self> {
        (per_min > 0).then(|| Self {
            rate: f64::from(per_min) / 60.0,
            burst: f64::from(per_min),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn level(&self, b: &Bucket, now: Instant) -> f64 {
        let drained = now.saturating_duration_since(b.at).as_secs_f64() * self.rate;
        (b.level - drained).max(0.0)
    }

    /// `Some(seconds to wait)` when `ip` has used up its failures.
    pub(crate) fn blocked(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let level = self.level(buckets.get(&bucket_of(ip))?, now);
        // One more failure must fit for the request to be heard.
        let over = level + 1.0 - self.burst;
        (over > 0.0).then(|| ((over / self.rate).ceil() as u64).max(1))
    }

    /// Count one failed authentication of `ip`.
    pub(crate) fn record(&self, ip: IpAddr, now: Instant) {
        let ip = bucket_of(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            buckets.retain(|_, b| self.level(b, now) > 0.0);
            if buckets.len() >= MAX_TRACKED {
                buckets.clear();
            }
        }
        let level = buckets.get(&ip).map_or(0.0, |b| self.level(b, now));
        buckets.insert(
            ip,
            Bucket {
                level: (level + 1.0).min(self.burst),
                at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refuses_past_the_burst_and_drains_over_time() {
        let limit = FailureLimit::new(10).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..9 {
            assert_eq!(limit.blocked(a, t0), None);
            limit.record(a, t0);
        }
        assert_eq!(limit.blocked(a, t0), None, "the tenth is still heard");
        limit.record(a, t0);
        assert_eq!(limit.blocked(a, t0), Some(6), "one failure drains in 6 s");
        assert_eq!(
            limit.blocked(b, t0),
            None,
            "another address is not affected"
        );
        assert_eq!(limit.blocked(a, t0 + Duration::from_secs(6)), None);
        assert!(limit.blocked(a, t0 + Duration::from_secs(5)).is_some());
        assert!(FailureLimit::new(0).is_none());
    }

    #[test]
    fn an_ipv6_64_counts_as_one_address() {
        let limit = FailureLimit::new(2).unwrap();
        let t0 = Instant::now();
        limit.record("2001:db8:1:2::1".parse().unwrap(), t0);
        limit.record("2001:db8:1:2:ffff::9".parse().unwrap(), t0);
        assert!(limit
            .blocked("2001:db8:1:2::77".parse().unwrap(), t0)
            .is_some());
        assert!(limit
            .blocked("2001:db8:1:3::1".parse().unwrap(), t0)
            .is_none());
        limit.record("::ffff:10.0.0.1".parse().unwrap(), t0);
        limit.record("10.0.0.1".parse().unwrap(), t0);
        assert!(limit.blocked("10.0.0.1".parse().unwrap(), t0).is_some());
    }
}
