//! Lock-free capacity reservation for one agent.
//!
//! An agent can hold a bounded number of conversations per [`Channel`] and a
//! bounded number overall. [`CapacityCell`] keeps the loads of all channels and
//! the overall load in **one** `AtomicU64`, so a reservation checks both limits
//! and takes both slots in a single compare-and-swap: two threads can never
//! both take the last slot, and the overall cap can never be passed by
//! reserving on two channels at once.
//!
//! ```
//! use loket_capacity::{CapacityCell, Channel, Limits};
//!
//! let cell = CapacityCell::new(Limits::new().with(Channel::Chat, 2).with_total(2));
//! assert!(cell.try_reserve(Channel::Chat).is_ok());
//! assert!(cell.try_reserve(Channel::Chat).is_ok());
//! assert!(cell.try_reserve(Channel::Chat).is_err()); // channel full
//! cell.release(Channel::Chat).unwrap();
//! assert_eq!(cell.load(Channel::Chat), 1);
//! ```
//!
//! # Layout
//!
//! Bits `8*i .. 8*i+8` hold the load of channel `i` (at most 255 each) and bits
//! `48..64` the overall load (at most 65,535). Limits use the same layout in a
//! second word; changing them never touches the loads, so lowering a limit
//! below the current load leaves existing reservations alone and only stops
//! new ones.
//!
//! Under `--cfg loom` the atomics come from loom, and the tests in `loom_tests`
//! check every interleaving of concurrent reservations.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::fmt;

#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A contact channel. Each has its own capacity per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Live web chat.
    Chat = 0,
    /// WhatsApp.
    Whatsapp = 1,
    /// Facebook Messenger and similar social messaging.
    Messenger = 2,
    /// SMS.
    Sms = 3,
    /// Email.
    Email = 4,
    /// Voice calls.
    Voice = 5,
}

impl Channel {
    /// Every channel, in index order.
    pub const ALL: [Channel; CHANNELS] = [
        Channel::Chat,
        Channel::Whatsapp,
        Channel::Messenger,
        Channel::Sms,
        Channel::Email,
        Channel::Voice,
    ];

    /// The dense index of this channel, `0..CHANNELS`.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The lowercase name used in JSON and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Chat => "chat",
            Channel::Whatsapp => "whatsapp",
            Channel::Messenger => "messenger",
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Voice => "voice",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Number of channels.
pub const CHANNELS: usize = 6;
/// The largest load or limit one channel can hold.
pub const MAX_PER_CHANNEL: u32 = 0xFF;
/// The largest overall load or limit.
pub const MAX_TOTAL: u32 = 0xFFFF;

const TOTAL_SHIFT: u32 = 48;
const TOTAL_ONE: u64 = 1 << TOTAL_SHIFT;

#[inline]
const fn channel_shift(channel: Channel) -> u32 {
    8 * channel as u32
}

#[inline]
const fn channel_field(word: u64, channel: Channel) -> u32 {
    ((word >> channel_shift(channel)) & 0xFF) as u32
}

#[inline]
const fn total_field(word: u64) -> u32 {
    (word >> TOTAL_SHIFT) as u32
}

/// Per-channel limits plus an overall cap, packed like the loads.
///
/// Values above [`MAX_PER_CHANNEL`] and [`MAX_TOTAL`] saturate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits(u64);

impl Limits {
    /// No capacity on any channel.
    pub const fn new() -> Limits {
        Limits(0)
    }

    /// These limits with `channel` set to `limit` (saturating at 255).
    #[must_use]
    pub const fn with(self, channel: Channel, limit: u32) -> Limits {
        let limit = if limit > MAX_PER_CHANNEL { MAX_PER_CHANNEL } else { limit };
        let shift = channel_shift(channel);
        Limits((self.0 & !(0xFF << shift)) | ((limit as u64) << shift))
    }

    /// These limits with the overall cap set to `total` (saturating at 65,535).
    #[must_use]
    pub const fn with_total(self, total: u32) -> Limits {
        let total = if total > MAX_TOTAL { MAX_TOTAL } else { total };
        Limits((self.0 & (TOTAL_ONE - 1)) | ((total as u64) << TOTAL_SHIFT))
    }

    /// The limit of one channel.
    #[inline]
    pub const fn channel(self, channel: Channel) -> u32 {
        channel_field(self.0, channel)
    }

    /// The overall cap.
    #[inline]
    pub const fn total(self) -> u32 {
        total_field(self.0)
    }
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for channel in Channel::ALL {
            map.entry(&channel.as_str(), &self.channel(channel));
        }
        map.entry(&"total", &self.total());
        map.finish()
    }
}

/// Why a reservation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The channel is at its limit.
    Channel,
    /// The agent is at its overall cap.
    Total,
}

/// Releasing a slot that was never reserved: a bookkeeping bug in the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NothingReserved;

/// One agent's loads and limits; see the crate docs.
///
/// Invariant: after every operation, for each channel `load <= limit` holds
/// unless the limit was lowered below an existing load, and no reservation
/// succeeds while `load >= limit` on its channel or overall.
pub struct CapacityCell {
    loads: AtomicU64,
    limits: AtomicU64,
}

impl CapacityCell {
    /// A cell with no load and the given limits.
    pub fn new(limits: Limits) -> CapacityCell {
        CapacityCell { loads: AtomicU64::new(0), limits: AtomicU64::new(limits.0) }
    }

    /// Takes one slot on `channel` if both the channel and the overall cap
    /// have room, and returns the overall load after it. Lock-free: retries
    /// only when another thread changed the loads in between.
    #[inline]
    pub fn try_reserve(&self, channel: Channel) -> Result<u32, Full> {
        let one = (1u64 << channel_shift(channel)) | TOTAL_ONE;
        let mut current = self.loads.load(Ordering::Acquire);
        loop {
            let limits = self.limits.load(Ordering::Acquire);
            if channel_field(current, channel) >= channel_field(limits, channel) {
                return Err(Full::Channel);
            }
            if total_field(current) >= total_field(limits) {
                return Err(Full::Total);
            }
            // Cannot overflow a field: each field is below its limit, and a
            // limit is at most the field's maximum.
            match self.loads.compare_exchange_weak(
                current,
                current + one,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(total_field(current) + 1),
                Err(actual) => current = actual,
            }
        }
    }

    /// Returns one slot on `channel`, and returns the overall load after it.
    /// Fails, changing nothing, if the channel holds no reservation.
    #[inline]
    pub fn release(&self, channel: Channel) -> Result<u32, NothingReserved> {
        let one = (1u64 << channel_shift(channel)) | TOTAL_ONE;
        let mut current = self.loads.load(Ordering::Acquire);
        loop {
            if channel_field(current, channel) == 0 || total_field(current) == 0 {
                return Err(NothingReserved);
            }
            match self.loads.compare_exchange_weak(
                current,
                current - one,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(total_field(current) - 1),
                Err(actual) => current = actual,
            }
        }
    }

    /// Would a reservation on `channel` succeed right now? A hint only: by
    /// the time the caller acts another thread may have taken the slot.
    #[inline]
    pub fn has_room(&self, channel: Channel) -> bool {
        let current = self.loads.load(Ordering::Acquire);
        let limits = self.limits.load(Ordering::Acquire);
        channel_field(current, channel) < channel_field(limits, channel)
            && total_field(current) < total_field(limits)
    }

    /// Replaces the limits. Existing reservations are kept even where they
    /// now exceed the new limits; new ones wait until the load drops.
    pub fn set_limits(&self, limits: Limits) {
        self.limits.store(limits.0, Ordering::Release);
    }

    /// The current limits.
    pub fn limits(&self) -> Limits {
        Limits(self.limits.load(Ordering::Acquire))
    }

    /// The current load of one channel.
    #[inline]
    pub fn load(&self, channel: Channel) -> u32 {
        channel_field(self.loads.load(Ordering::Acquire), channel)
    }

    /// The current overall load.
    #[inline]
    pub fn total_load(&self) -> u32 {
        total_field(self.loads.load(Ordering::Acquire))
    }
}

impl fmt::Debug for CapacityCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for channel in Channel::ALL {
            map.entry(&channel.as_str(), &(self.load(channel), self.limits().channel(channel)));
        }
        map.entry(&"total", &(self.total_load(), self.limits().total()));
        map.finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserve_stops_at_channel_limit_and_total_cap() {
        let cell = CapacityCell::new(
            Limits::new().with(Channel::Chat, 2).with(Channel::Email, 5).with_total(3),
        );
        assert_eq!(cell.try_reserve(Channel::Chat), Ok(1));
        assert_eq!(cell.try_reserve(Channel::Chat), Ok(2));
        assert_eq!(cell.try_reserve(Channel::Chat), Err(Full::Channel));
        assert_eq!(cell.try_reserve(Channel::Email), Ok(3));
        assert_eq!(cell.try_reserve(Channel::Email), Err(Full::Total));
        assert_eq!(cell.try_reserve(Channel::Voice), Err(Full::Channel));
        assert_eq!(cell.total_load(), 3);
    }

    #[test]
    fn release_of_nothing_is_an_error_and_changes_nothing() {
        let cell = CapacityCell::new(Limits::new().with(Channel::Chat, 1).with_total(1));
        assert_eq!(cell.release(Channel::Chat), Err(NothingReserved));
        cell.try_reserve(Channel::Chat).unwrap();
        assert_eq!(cell.release(Channel::Email), Err(NothingReserved));
        assert_eq!(cell.load(Channel::Chat), 1);
        assert_eq!(cell.release(Channel::Chat), Ok(0));
        assert_eq!(cell.total_load(), 0);
    }

    #[test]
    fn lowering_a_limit_keeps_loads_and_blocks_new_reservations() {
        let cell = CapacityCell::new(Limits::new().with(Channel::Chat, 3).with_total(3));
        for _ in 0..3 {
            cell.try_reserve(Channel::Chat).unwrap();
        }
        cell.set_limits(Limits::new().with(Channel::Chat, 1).with_total(3));
        assert_eq!(cell.load(Channel::Chat), 3);
        assert!(!cell.has_room(Channel::Chat));
        cell.release(Channel::Chat).unwrap();
        cell.release(Channel::Chat).unwrap();
        assert_eq!(cell.try_reserve(Channel::Chat), Err(Full::Channel));
        cell.release(Channel::Chat).unwrap();
        assert_eq!(cell.try_reserve(Channel::Chat), Ok(1));
    }

    #[test]
    fn limits_saturate_and_round_trip() {
        let limits = Limits::new().with(Channel::Voice, 1000).with_total(1 << 20);
        assert_eq!(limits.channel(Channel::Voice), MAX_PER_CHANNEL);
        assert_eq!(limits.total(), MAX_TOTAL);
        let limits = limits.with(Channel::Voice, 1).with(Channel::Sms, 7);
        assert_eq!(limits.channel(Channel::Voice), 1);
        assert_eq!(limits.channel(Channel::Sms), 7);
        assert_eq!(limits.total(), MAX_TOTAL);
    }

    #[test]
    fn full_channels_saturate_without_spilling_into_neighbours() {
        let cell = CapacityCell::new(
            Limits::new().with(Channel::Chat, 255).with(Channel::Whatsapp, 1).with_total(MAX_TOTAL),
        );
        for _ in 0..255 {
            cell.try_reserve(Channel::Chat).unwrap();
        }
        assert_eq!(cell.try_reserve(Channel::Chat), Err(Full::Channel));
        assert_eq!(cell.load(Channel::Whatsapp), 0);
        assert_eq!(cell.try_reserve(Channel::Whatsapp), Ok(256));
        assert_eq!(cell.total_load(), 256);
    }

    #[test]
    fn threads_never_overshoot() {
        let cell = std::sync::Arc::new(CapacityCell::new(
            Limits::new().with(Channel::Chat, 50).with(Channel::Email, 50).with_total(70),
        ));
        let won: u32 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let cell = &cell;
                    scope.spawn(move || {
                        let channel = if t % 2 == 0 { Channel::Chat } else { Channel::Email };
                        (0..1000).filter(|_| cell.try_reserve(channel).is_ok()).count() as u32
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(won, 70);
        assert_eq!(cell.total_load(), 70);
        assert!(cell.load(Channel::Chat) <= 50 && cell.load(Channel::Email) <= 50);
    }

    proptest! {
        /// The cell agrees with a plain counter model on any operation sequence.
        #[test]
        fn agrees_with_a_counting_model(
            limits in proptest::collection::vec(0u32..6, CHANNELS),
            total in 0u32..20,
            ops in proptest::collection::vec((any::<bool>(), 0usize..CHANNELS), 0..200),
        ) {
            let mut packed = Limits::new().with_total(total);
            for channel in Channel::ALL {
                packed = packed.with(channel, limits[channel.index()]);
            }
            let cell = CapacityCell::new(packed);
            let mut model = [0u32; CHANNELS];
            for (reserve, index) in ops {
                let channel = Channel::ALL[index];
                let sum: u32 = model.iter().sum();
                if reserve {
                    let expect = model[index] < limits[index] && sum < total;
                    prop_assert_eq!(cell.try_reserve(channel).ok(), expect.then_some(sum + 1));
                    if expect { model[index] += 1; }
                } else {
                    let expect = model[index] > 0;
                    prop_assert_eq!(cell.release(channel).ok(), expect.then(|| sum - 1));
                    if expect { model[index] -= 1; }
                }
                for c in Channel::ALL {
                    prop_assert_eq!(cell.load(c), model[c.index()]);
                }
                prop_assert_eq!(cell.total_load(), model.iter().sum::<u32>());
            }
        }
    }
}

/// Exhaustive interleaving checks; run with
/// `RUSTFLAGS="--cfg loom" cargo test -p loket-capacity --release`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn concurrent_reservations_never_take_more_than_the_limit() {
        loom::model(|| {
            let cell =
                Arc::new(CapacityCell::new(Limits::new().with(Channel::Chat, 1).with_total(1)));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let cell = cell.clone();
                    thread::spawn(move || cell.try_reserve(Channel::Chat).is_ok())
                })
                .collect();
            let won = handles.into_iter().map(|h| h.join().unwrap()).filter(|&w| w).count();
            assert_eq!(won, 1);
            assert_eq!(cell.load(Channel::Chat), 1);
        });
    }

    #[test]
    fn reservations_on_two_channels_respect_the_total_cap() {
        loom::model(|| {
            let cell = Arc::new(CapacityCell::new(
                Limits::new().with(Channel::Chat, 1).with(Channel::Email, 1).with_total(1),
            ));
            let a = {
                let cell = cell.clone();
                thread::spawn(move || cell.try_reserve(Channel::Chat).is_ok())
            };
            let b = {
                let cell = cell.clone();
                thread::spawn(move || cell.try_reserve(Channel::Email).is_ok())
            };
            let won = [a.join().unwrap(), b.join().unwrap()].iter().filter(|&&w| w).count();
            assert_eq!(won, 1);
            assert_eq!(cell.total_load(), 1);
        });
    }

    #[test]
    fn release_and_reserve_race_keeps_the_count_exact() {
        loom::model(|| {
            let cell =
                Arc::new(CapacityCell::new(Limits::new().with(Channel::Chat, 1).with_total(1)));
            cell.try_reserve(Channel::Chat).unwrap();
            let releaser = {
                let cell = cell.clone();
                thread::spawn(move || cell.release(Channel::Chat).unwrap())
            };
            let reserver = {
                let cell = cell.clone();
                thread::spawn(move || cell.try_reserve(Channel::Chat).is_ok())
            };
            releaser.join().unwrap();
            let reserved = reserver.join().unwrap();
            assert_eq!(cell.load(Channel::Chat), u32::from(reserved));
            assert!(cell.load(Channel::Chat) <= 1);
        });
    }
}
