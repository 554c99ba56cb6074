//! Staffing by simulation against Erlang C, on a day whose arrivals
//! double, with two groups, and its errors.

use loket_sim::erlang::erlang_c_agents;
use loket_sim::{Scenario, StaffingError, StaffingOptions, StaffingTarget, staffing};

const HANDLE_S: f64 = 60.0;

fn mmc(profile: &str, interval_s: u64, duration_s: u64) -> Scenario {
    let text = format!(
        r#"
duration_s = {duration_s}
interval_s = {interval_s}

[[arrivals]]
channel = "chat"
language = "nl"
skills = {{ sales = 1 }}
profile = {profile}
handle = {{ dist = "exponential", mean_s = {HANDLE_S} }}

[[agents]]
name = "sales"
count = 10
skills = {{ sales = 5 }}
languages = ["nl"]
capacity = {{ chat = 1 }}

[router]
affinity_lookback_ms = 0
"#
    );
    Scenario::from_toml(&text).unwrap()
}

fn options(target: &str, max_agents: Option<u32>) -> StaffingOptions {
    StaffingOptions {
        seed: 24,
        replications: 8,
        target: target.parse::<StaffingTarget>().unwrap(),
        max_agents,
        arrivals_per_replication: 10_000,
    }
}

/// M/M/c (one skill, capacity 1, exponential handle, no abandonment) at
/// loads of 3, 8.5 and 20 Erlang: the simulated staffing is within one
/// agent of Erlang C's, meets the target, and its Erlang C guess is
/// Erlang C's answer.
#[test]
fn mm_c_staffing_is_erlang_cs_within_one_agent() {
    for (load, target) in [(3.0, "sl=0.8@20s"), (8.5, "sl=0.8@20s"), (20.0, "sl=90%@15s")] {
        let rate = load * 3600.0 / HANDLE_S;
        let options = options(target, None);
        let t = options.target;
        let erlang = erlang_c_agents(rate, HANDLE_S, t.within_ms as f64 / 1000.0, t.service_level)
            .unwrap()
            .unwrap();
        let found = staffing(&mmc(&format!("[{rate}]"), 3600, 3600), &options).unwrap();
        assert_eq!(found.intervals.len(), 1);
        let interval = &found.intervals[0];
        let group = &interval.groups[0];
        eprintln!(
            "load {load}: simulated {} agents (service level {:?}, occupancy {:?}), Erlang C {erlang}",
            group.agents, interval.service_level.mean, interval.occupancy.mean
        );
        assert_eq!(group.erlang_c_guess, Some(erlang));
        assert!(group.agents.abs_diff(erlang) <= 1, "load {load}: {} vs {erlang}", group.agents);
        assert!(interval.lowest_stream_service_level.unwrap() >= t.service_level);
        assert!(interval.service_level.mean.unwrap() >= t.service_level);
    }
}

/// A day whose arrivals double at noon needs more agents in the afternoon
/// than in the morning, the same all morning and all afternoon; the
/// staffing found is the fewest: with one agent fewer allowed, the search
/// says the target cannot be met, naming the interval.
#[test]
fn a_day_that_doubles_at_noon_needs_more_agents_after_noon() {
    let rate = 6.0 * 3600.0 / HANDLE_S;
    let profile = format!(
        "[{}]",
        [[rate; 12], [2.0 * rate; 12]]
            .concat()
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let scenario = mmc(&profile, 3600, 86_400);
    let found = staffing(&scenario, &options("sl=0.8@20s", None)).unwrap();
    assert_eq!(found.intervals.len(), 24);
    let agents: Vec<u32> = found.intervals.iter().map(|i| i.groups[0].agents).collect();
    assert!(agents[..12].iter().all(|&a| a == agents[0]), "{agents:?}");
    assert!(agents[12..].iter().all(|&a| a == agents[12]), "{agents:?}");
    assert!(agents[12] > agents[0], "{agents:?}");
    assert_eq!(found.intervals[12].from_s, 12 * 3600);
    assert_eq!(found.intervals[12].rate_per_hour, 2.0 * rate);
    // Two distinct intervals searched, each in a few counts.
    assert!(found.counts_tried <= 12, "{}", found.counts_tried);

    let short = staffing(&scenario, &options("sl=0.8@20s", Some(agents[12] - 1)));
    match short {
        Err(e @ StaffingError::Unreachable { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("from 12:00") && text.contains(&format!("up to {}", agents[12] - 1)),
                "{text}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

/// Two groups, each the only one for its stream (Dutch chat, English
/// WhatsApp with concurrency 2): each group is staffed for its own stream,
/// and every stream meets the target.
#[test]
fn each_group_is_staffed_for_the_streams_it_can_take() {
    let text = r#"
duration_s = 3600
interval_s = 3600

[[arrivals]]
channel = "chat"
language = "nl"
rate_per_hour = 480
handle = { dist = "exponential", mean_s = 60 }

[[arrivals]]
channel = "whatsapp"
language = "en"
rate_per_hour = 120
handle = { dist = "exponential", mean_s = 240 }

[[agents]]
name = "chat-nl"
count = 5
languages = ["nl"]
capacity = { chat = 1, whatsapp = 0 }

[[agents]]
name = "whatsapp-en"
count = 5
languages = ["en"]
capacity = { chat = 0, whatsapp = 2, total = 2 }

[router]
affinity_lookback_ms = 0
"#;
    let found =
        staffing(&Scenario::from_toml(text).unwrap(), &options("sl=0.8@20s", None)).unwrap();
    let interval = &found.intervals[0];
    let chat = erlang_c_agents(480.0, 60.0, 20.0, 0.8).unwrap().unwrap();
    let whatsapp = erlang_c_agents(120.0, 240.0, 20.0, 0.8).unwrap().unwrap();
    let [a, b] = [&interval.groups[0], &interval.groups[1]];
    eprintln!("{interval:?}; Erlang C: {chat} and {whatsapp} servers");
    assert_eq!(a.erlang_c_guess, Some(chat));
    assert_eq!(b.erlang_c_guess, Some(whatsapp.div_ceil(2)));
    assert!(a.agents.abs_diff(chat) <= 1, "{a:?}");
    assert!(b.agents >= whatsapp.div_ceil(2) - 1 && b.agents <= whatsapp, "{b:?}");
    assert!(interval.lowest_stream_service_level.unwrap() >= 0.8);
}

/// A stream nobody can take makes every target unreachable: said at once,
/// naming the stream.
#[test]
fn a_stream_nobody_can_take_is_named() {
    let text = r#"
duration_s = 3600
[[arrivals]]
channel = "chat"
language = "de"
rate_per_hour = 60
handle = { dist = "exponential", mean_s = 60 }
[[agents]]
count = 3
languages = ["nl"]
capacity = { chat = 1 }
"#;
    let e =
        staffing(&Scenario::from_toml(text).unwrap(), &options("sl=0.8@20s", None)).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("arrivals[0] (chat, de) has arrivals but no agent group"), "{text}");
}

/// A bot that answers every chat first and hands a quarter of them to a
/// person: people are staffed for the hand-offs alone. The hand-offs of a
/// Poisson stream are a Poisson stream at a quarter of its rate (the bot's
/// fixed hold only shifts them), so the people needed are Erlang C's for
/// 120 chats an hour (also the search's starting guess), not 0 (every
/// arrival meets the target at the bot) and not Erlang C's for all 480.
#[test]
fn bots_that_answer_first_leave_people_their_hand_offs() {
    let text = r#"
duration_s = 3600
interval_s = 3600

[[arrivals]]
channel = "chat"
language = "nl"
rate_per_hour = 480
handle = { dist = "exponential", mean_s = 60 }

[[agents]]
name = "bot"
count = 1
kind = "bot"
languages = ["nl"]
capacity = { chat = 200 }
handle = { dist = "fixed", value_s = 30 }
resolve = 0.75
escalate = 0.25

[[agents]]
name = "people"
count = 10
languages = ["nl"]
capacity = { chat = 1 }

[router]
bot_first = true
affinity_lookback_ms = 0
"#;
    let found =
        staffing(&Scenario::from_toml(text).unwrap(), &options("sl=0.8@20s", None)).unwrap();
    let interval = &found.intervals[0];
    let people = &interval.groups[1];
    let hand_offs = erlang_c_agents(120.0, 60.0, 20.0, 0.8).unwrap().unwrap();
    let all = erlang_c_agents(480.0, 60.0, 20.0, 0.8).unwrap().unwrap();
    eprintln!("{interval:?}; Erlang C: {hand_offs} for the hand-offs, {all} for every chat");
    assert!(interval.groups[0].bot && interval.groups[0].agents == 1);
    assert_eq!(people.erlang_c_guess, Some(hand_offs));
    assert!(people.agents.abs_diff(hand_offs) <= 1, "{people:?}, Erlang C {hand_offs}");
    assert!(people.agents < all);
    let level = interval.lowest_stream_service_level.unwrap();
    assert!(level >= 0.8, "{level}");
}
