//! A loom model of the router's wake-up protocol (`router.rs` module docs,
//! "No lost wake-ups"): a conversation that finds no agent announces itself
//! (`waiting += 1`), fences, and looks again under the backlog lock before
//! it waits; whoever frees capacity frees it first, fences, and only then
//! reads `waiting`. Either the second look sees the freed capacity, or the
//! freer sees the waiter and drains.
//!
//! The model uses the real capacity primitive (whose atomics are loom's under
//! `--cfg loom`) and the router's orderings; the backlog is a loom mutex.
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p loket-router --release
//! --test loom_waiting`.
#![cfg(loom)]

use loket_capacity::{CapacityCell, Channel, Limits};
use loom::sync::atomic::{AtomicUsize, Ordering, fence};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// The shared state of one agent and the backlog.
struct Desk {
    agent: CapacityCell,
    waiting: AtomicUsize,
    backlog: Mutex<Vec<u32>>,
    assigned: AtomicUsize,
}

impl Desk {
    /// An agent with room for one chat, already holding one.
    fn full() -> Arc<Desk> {
        let agent = CapacityCell::new(Limits::new().with(Channel::Chat, 1).with_total(1));
        agent.try_reserve(Channel::Chat).unwrap();
        Arc::new(Desk {
            agent,
            waiting: AtomicUsize::new(0),
            backlog: Mutex::new(Vec::new()),
            assigned: AtomicUsize::new(0),
        })
    }

    /// A new conversation: look, then announce, fence and look again under
    /// the backlog lock before waiting (`Inner::enqueue`). With `fenced`
    /// false the fence is left out, to show the model catches that.
    fn arrive(&self, conversation: u32, fenced: bool) {
        if self.agent.try_reserve(Channel::Chat).is_ok() {
            self.assigned.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let mut backlog = self.backlog.lock().unwrap();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        if fenced {
            fence(Ordering::SeqCst);
        }
        if self.agent.try_reserve(Channel::Chat).is_ok() {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(backlog);
            self.assigned.fetch_add(1, Ordering::SeqCst);
            return;
        }
        backlog.push(conversation);
    }

    /// A close: capacity back first, then fence and read `waiting`, then
    /// drain under the backlog lock (`Inner::close` and `Inner::drain`).
    fn close(&self, fenced: bool) {
        self.agent.release(Channel::Chat).unwrap();
        if fenced {
            fence(Ordering::SeqCst);
        }
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut backlog = self.backlog.lock().unwrap();
        if backlog.is_empty() || self.agent.try_reserve(Channel::Chat).is_err() {
            return;
        }
        backlog.pop();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(backlog);
        self.assigned.fetch_add(1, Ordering::SeqCst);
    }

    /// Nobody waits while the agent has room.
    fn check(&self) {
        let waiting = self.backlog.lock().unwrap().len();
        assert!(
            !(waiting > 0 && self.agent.has_room(Channel::Chat)),
            "lost wake-up: a conversation waits, the agent has room"
        );
        assert_eq!(self.waiting.load(Ordering::SeqCst), waiting, "the counter matches the backlog");
    }
}

fn run(fenced: bool) {
    loom::model(move || {
        let desk = Desk::full();
        let arriving = {
            let desk = desk.clone();
            thread::spawn(move || desk.arrive(1, fenced))
        };
        let closing = {
            let desk = desk.clone();
            thread::spawn(move || desk.close(fenced))
        };
        arriving.join().unwrap();
        closing.join().unwrap();
        desk.check();
    });
}

#[test]
fn a_conversation_never_waits_while_freed_capacity_goes_unused() {
    run(true);
}

/// Without the fences, loom finds the interleaving where the arrival's
/// second look misses the release and the close misses the arrival.
#[test]
#[should_panic(expected = "lost wake-up")]
fn without_the_fences_a_wake_up_is_lost() {
    run(false);
}
