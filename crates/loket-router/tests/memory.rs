//! Memory per open conversation, measured with a counting global allocator
//! (its own test binary, so no other test's allocations are counted).
//!
//! 10,000 agents with 200 skills are registered first; then 100,000
//! conversations are opened (each from its own customer, needing one skill;
//! those that find no agent wait in the queue). The live heap grows by the router's
//! conversation records, customer histories, agents' holding lists, the
//! backlog and the timers: divided by the open conversations, that must stay
//! at or under 1 KiB (the target).
//!
//! `cargo test -p loket-router --test memory -- --nocapture` prints the figure.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use loket_router::{
    AgentId, AgentSpec, Capacity, Channel, ConversationId, CustomerId, EventKind, Language,
    Message, Router, SkillId, SkillLevel,
};

/// Counts live heap bytes; delegates to the system allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees carry over; the counter has no effect on them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with this layout.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const AGENTS: u64 = 10_000;
const SKILLS: u16 = 200;
const CONVERSATIONS: u64 = 100_000;
/// The target.
const MAX_BYTES_PER_CONVERSATION: f64 = 1024.0;

#[test]
fn an_open_conversation_costs_at_most_one_kibibyte() {
    let router = Router::new();
    for skill in 0..SKILLS {
        router.skill(&format!("skill-{skill}")).unwrap();
    }
    let mut events = Vec::new();
    let specs = (0..AGENTS).map(|agent| {
        let mut spec = AgentSpec::new(AgentId(agent));
        spec.languages =
            if agent % 4 == 0 { vec![Language::NL, Language::EN] } else { vec![Language::NL] };
        // Four skills each, spread over all 200.
        spec.skills = (0..4u16)
            .map(|k| SkillLevel {
                skill: SkillId(((agent * 7 + u64::from(k) * 50) % u64::from(SKILLS)) as u16),
                level: 5 + (k as u8),
            })
            .collect();
        spec.capacity = Capacity { chat: 3, whatsapp: 5, email: 8, total: 10, ..Capacity::ZERO };
        spec
    });
    router.upsert_agents(specs, &mut events).unwrap();
    events.clear();
    events.shrink_to_fit();

    let channels = [Channel::Chat, Channel::Whatsapp, Channel::Email];
    let mut message = Message::new(ConversationId(0), CustomerId(0), Channel::Chat, Language::NL);
    let mut assigned = 0u64;
    let mut queued = 0u64;
    // One event buffer, reused (and allocated before the baseline).
    events.reserve(16);
    let before = LIVE.load(Ordering::SeqCst);
    for id in 0..CONVERSATIONS {
        message.conversation = ConversationId(id);
        message.customer = CustomerId(1_000_000 + id);
        message.channel = channels[(id % 3) as usize];
        message.language = if id % 5 == 0 { Language::EN } else { Language::NL };
        message.required.clear();
        message
            .required
            .push(SkillLevel { skill: SkillId((id % u64::from(SKILLS)) as u16), level: 3 });
        message.buying_intent = (id % 10) as f32 / 10.0;
        events.clear();
        let decision = router.route(&message, &mut events);
        match decision.kind {
            EventKind::Assigned { .. } => assigned += 1,
            EventKind::Queued { .. } => queued += 1,
            other => panic!("conversation {id}: {other:?}"),
        }
    }
    let after = LIVE.load(Ordering::SeqCst);

    let stats = router.stats();
    assert_eq!(stats.conversations as u64, CONVERSATIONS, "every conversation is open");
    assert_eq!(assigned + queued, CONVERSATIONS);
    assert!(assigned > CONVERSATIONS / 2, "most conversations found an agent: {assigned}");
    let per_conversation = (after - before) as f64 / CONVERSATIONS as f64;
    println!(
        "memory: {per_conversation:.0} bytes per open conversation \
         ({CONVERSATIONS} open: {assigned} assigned, {queued} queued; \
         {AGENTS} agents, {SKILLS} skills; {} bytes live growth)",
        after - before
    );
    assert!(
        per_conversation <= MAX_BYTES_PER_CONVERSATION,
        "{per_conversation:.0} bytes per open conversation, over the 1 KiB target"
    );
    assert!(per_conversation > 0.0, "opening conversations must cost something");
    drop(router);
}
