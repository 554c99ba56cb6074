//! A mergeable, deterministic histogram of millisecond durations.
//!
//! Values below 64 ms have a bucket each; above, every power of two is split
//! into 32 buckets, so a bucket is never wider than 1/32 of its values
//! (3.1 %). Only integer counts are stored, sparse and sorted by bucket, so
//! two histograms fed the same values in any order are equal, and merging
//! (adding counts) is exact: a quantile of merged 15-minute histograms is
//! the quantile of the hour.

use serde::{Deserialize, Serialize};

/// Values below this have a bucket of their own.
const EXACT_BELOW: u64 = 64;
/// log2 of the buckets per power of two above [`EXACT_BELOW`].
const SUB_BITS: u32 = 5;

/// Counts of durations by bucket, with their count, sum and maximum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    count: u64,
    sum: u64,
    max: u64,
    /// (bucket, count), sorted by bucket, no zero counts.
    buckets: Vec<(u16, u64)>,
}

impl Histogram {
    /// Adds one value.
    pub fn record(&mut self, value: u64) {
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
        self.max = self.max.max(value);
        let bucket = bucket_of(value);
        match self.buckets.binary_search_by_key(&bucket, |&(b, _)| b) {
            Ok(at) => self.buckets[at].1 += 1,
            Err(at) => self.buckets.insert(at, (bucket, 1)),
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
        let (ours, theirs) = (&self.buckets, &other.buckets);
        let mut merged = Vec::with_capacity(ours.len() + theirs.len());
        let (mut i, mut j) = (0, 0);
        while i < ours.len() && j < theirs.len() {
            let ((a, n), (b, m)) = (ours[i], theirs[j]);
            if a == b {
                merged.push((a, n + m));
                i += 1;
                j += 1;
            } else if a < b {
                merged.push((a, n));
                i += 1;
            } else {
                merged.push((b, m));
                j += 1;
            }
        }
        merged.extend_from_slice(&ours[i..]);
        merged.extend_from_slice(&theirs[j..]);
        self.buckets = merged;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum (saturating).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The mean, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The nearest-rank quantile for `percent` (1..=100): the highest value
    /// of the bucket holding the value of rank `ceil(count × percent / 100)`,
    /// capped at the largest value recorded. It is never below the exact
    /// quantile and exceeds it by less than 1/32 of it. `None` when empty.
    pub fn quantile(&self, percent: u64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = (self.count * percent).div_ceil(100).max(1);
        let mut seen = 0;
        for &(bucket, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(bucket_high(bucket).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// The bucket holding `value`.
fn bucket_of(value: u64) -> u16 {
    if value < EXACT_BELOW {
        return value as u16;
    }
    let exponent = 63 - value.leading_zeros(); // 6..=63
    let sub = (value >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (EXACT_BELOW + u64::from(exponent - 6) * (1 << SUB_BITS) + sub) as u16
}

/// The highest value in `bucket`.
fn bucket_high(bucket: u16) -> u64 {
    let bucket = u64::from(bucket);
    if bucket < EXACT_BELOW {
        return bucket;
    }
    let exponent = (bucket - EXACT_BELOW) / (1 << SUB_BITS) + 6;
    let sub = (bucket - EXACT_BELOW) % (1 << SUB_BITS);
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    let low = (1u64 << exponent) + sub * width;
    low + (width - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut previous = 0;
        for value in (0..5000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket >= previous);
            previous = bucket;
            let high = bucket_high(bucket);
            assert!(high >= value);
            assert!(high - value <= value / 32, "{value} -> {high}");
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut histogram = Histogram::default();
        for value in 1..=100 {
            histogram.record(value);
        }
        assert_eq!(histogram.quantile(50), Some(50));
        assert_eq!(histogram.quantile(99), Some(99));
        assert_eq!(histogram.mean(), Some(50.5));
        assert_eq!(Histogram::default().quantile(50), None);
    }

    #[test]
    fn merging_equals_recording_everything() {
        let (mut a, mut b, mut all) =
            (Histogram::default(), Histogram::default(), Histogram::default());
        for value in [5, 70, 70, 9000, 100_000] {
            a.record(value);
            all.record(value);
        }
        for value in [70, 3, 1 << 40] {
            b.record(value);
            all.record(value);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }
}
