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
#[serde(try_from = "Unchecked")]
pub struct Histogram {
    count: u64,
    sum: u64,
    max: u64,
    /// Buckets that hold values, ascending (searched apart from the
    /// counts, so a search touches 2 bytes per bucket).
    buckets: Vec<u16>,
    /// The count of each bucket of `buckets`, never zero.
    counts: Vec<u64>,
}

impl Histogram {
    /// Adds one value.
    pub fn record(&mut self, value: u64) {
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
        self.max = self.max.max(value);
        let bucket = bucket_of(value);
        // Buckets below 64 hold one value each and are usually all present
        // from 0 up, so the bucket is at its own index: try it first.
        let guess = usize::from(bucket).min(self.buckets.len().saturating_sub(1));
        if self.buckets.get(guess) == Some(&bucket) {
            self.counts[guess] += 1;
            return;
        }
        match self.buckets.binary_search(&bucket) {
            Ok(at) => self.counts[at] += 1,
            Err(at) => {
                self.buckets.insert(at, bucket);
                self.counts.insert(at, 1);
            }
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
        // Usually every bucket of `other` is already here (a day's slots
        // see the same durations): add in place, no allocation.
        let mut at = 0;
        let contained = other.buckets.iter().all(|bucket| {
            while self.buckets.get(at).is_some_and(|ours| ours < bucket) {
                at += 1;
            }
            self.buckets.get(at) == Some(bucket)
        });
        if contained {
            let mut at = 0;
            for (bucket, count) in other.buckets.iter().zip(&other.counts) {
                while self.buckets[at] != *bucket {
                    at += 1;
                }
                self.counts[at] += count;
            }
            return;
        }
        let total = self.buckets.len() + other.buckets.len();
        let (mut buckets, mut counts) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let (mut i, mut j) = (0, 0);
        while i < self.buckets.len() || j < other.buckets.len() {
            let ours = self.buckets.get(i).copied().unwrap_or(u16::MAX);
            let theirs = other.buckets.get(j).copied().unwrap_or(u16::MAX);
            let mut count = 0;
            if ours <= theirs && i < self.buckets.len() {
                count += self.counts[i];
                i += 1;
            }
            if theirs <= ours && j < other.buckets.len() {
                count += other.counts[j];
                j += 1;
            }
            buckets.push(ours.min(theirs));
            counts.push(count);
        }
        self.buckets = buckets;
        self.counts = counts;
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
        for (&bucket, &n) in self.buckets.iter().zip(&self.counts) {
            seen += n;
            if seen >= rank {
                return Some(bucket_high(bucket).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// The largest bucket (that of `u64::MAX`).
const LAST_BUCKET: u16 = 64 + 57 * 32 + 31;

/// A histogram as read from a snapshot, before its invariants are checked.
#[derive(Deserialize)]
struct Unchecked {
    count: u64,
    sum: u64,
    max: u64,
    buckets: Vec<u16>,
    counts: Vec<u64>,
}

impl TryFrom<Unchecked> for Histogram {
    type Error = &'static str;

    /// Buckets ascending, known and one count each; counts positive and
    /// adding up to `count`.
    fn try_from(h: Unchecked) -> Result<Histogram, &'static str> {
        let ascending = h.buckets.windows(2).all(|pair| pair[0] < pair[1]);
        let known = h.buckets.last().is_none_or(|&last| last <= LAST_BUCKET);
        let total =
            h.counts.iter().try_fold(0u64, |sum, &n| (n > 0).then(|| sum.checked_add(n)).flatten());
        if !ascending || !known || h.buckets.len() != h.counts.len() || total != Some(h.count) {
            return Err("damaged histogram");
        }
        Ok(Histogram {
            count: h.count,
            sum: h.sum,
            max: h.max,
            buckets: h.buckets,
            counts: h.counts,
        })
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
        assert_eq!(bucket_of(u64::MAX), LAST_BUCKET);
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
        let mut in_place = a.clone();
        in_place.merge(&a.clone());
        a.merge(&b);
        assert_eq!(a, all);
        let mut twice = Histogram::default();
        for value in [5, 70, 70, 9000, 100_000, 5, 70, 70, 9000, 100_000] {
            twice.record(value);
        }
        assert_eq!(in_place, twice);
    }

    #[test]
    fn damaged_histograms_are_refused() {
        let mut good = Histogram::default();
        good.record(7);
        good.record(700);
        let json = serde_json::to_string(&good).unwrap();
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), good);
        for damaged in [
            json.replace("\"count\":2", "\"count\":3"),
            json.replace("[7,", "[70000,"),
            json.replace("[1,1]", "[0,2]"),
        ] {
            assert!(serde_json::from_str::<Histogram>(&damaged).is_err(), "{damaged}");
        }
    }
}
