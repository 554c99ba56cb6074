//! The simulator against queueing theory: M/M/c against Erlang C, M/M/c+M
//! against Erlang A, each formula value inside the simulation's 95%
//! interval (Student t over independent replications, fixed seeds). And
//! the same seed gives the same output on one thread and on two.

use loket_sim::erlang::{erlang_a, erlang_c};
use loket_sim::{Estimate, Options, RunOptions, Scenario, Summary, run};

const HANDLE_S: f64 = 60.0;
const AGENTS: u32 = 10;
const TARGET_S: f64 = 20.0;

fn scenario(rate_per_hour: f64, patience: &str, warmup_s: u64, duration_s: u64) -> Scenario {
    let text = format!(
        r#"
duration_s = {duration_s}
warmup_s = {warmup_s}
service_level_s = {TARGET_S}

[[arrivals]]
channel = "chat"
language = "nl"
skills = {{ sales = 1 }}
rate_per_hour = {rate_per_hour}
handle = {{ dist = "exponential", mean_s = {HANDLE_S} }}
patience = {patience}

[[agents]]
count = {AGENTS}
skills = {{ sales = 5 }}
languages = ["nl"]
capacity = {{ chat = 1 }}

[router]
affinity_lookback_ms = 0
"#
    );
    Scenario::from_toml(&text).unwrap()
}

fn simulate(scenario: &Scenario, seed: u64, replications: u32, meter: bool) -> Summary {
    let options = RunOptions { seed, replications, options: Options { meter, pages: false } };
    Summary::new(&run(scenario, &options).unwrap(), seed)
}

fn check(name: &str, estimate: &Estimate, expected: f64, failures: &mut Vec<String>) {
    let line =
        format!("{name}: formula {expected:.5}, simulated {:?} {:?}", estimate.mean, estimate.ci95);
    eprintln!("{line}");
    if !estimate.contains(expected) {
        failures.push(line);
    }
}

/// M/M/10 at occupancy 0.7, 0.85 and 0.95: the probability of waiting,
/// the mean wait and the service level (answered within 20 s) contain
/// Erlang C's values. Warm-up and length grow with the relaxation time
/// near saturation.
#[test]
fn mm_c_matches_erlang_c() {
    let mut failures = Vec::new();
    for (occupancy, warmup_s, duration_s) in
        [(0.70, 3_600, 43_200), (0.85, 7_200, 86_400), (0.95, 14_400, 172_800)]
    {
        let rate = occupancy * f64::from(AGENTS) * 3600.0 / HANDLE_S;
        let erlang = erlang_c(rate, HANDLE_S, AGENTS, Some(TARGET_S)).unwrap();
        let s = simulate(&scenario(rate, "\"none\"", warmup_s, duration_s), 24, 12, false);
        let tag = format!("M/M/10 ρ={occupancy}");
        check(&format!("{tag} P(wait)"), &s.direct.p_wait, erlang.p_wait, &mut failures);
        check(
            &format!("{tag} mean wait ms"),
            &s.direct.wait_ms_avg,
            erlang.mean_wait_s * 1000.0,
            &mut failures,
        );
        check(
            &format!("{tag} service level"),
            &s.direct.service_level,
            erlang.service_level.unwrap(),
            &mut failures,
        );
        check(&format!("{tag} occupancy"), &s.direct.occupancy, erlang.occupancy, &mut failures);
        assert_eq!(s.direct.abandon_rate.mean, Some(0.0));
    }
    assert!(failures.is_empty(), "outside the 95% interval:\n{}", failures.join("\n"));
}

/// M/M/10+M (exponential patience, mean 120 s) at loads 9 and 12 Erlang
/// (under and over the agents): abandonment, mean wait of all arrivals
/// and the service level contain Erlang A's values.
#[test]
fn mm_c_m_matches_erlang_a() {
    let mut failures = Vec::new();
    let patience_s = 120.0;
    for load in [9.0, 12.0] {
        let rate = load * 3600.0 / HANDLE_S;
        let erlang = erlang_a(rate, HANDLE_S, patience_s, AGENTS, Some(TARGET_S)).unwrap();
        let patience = format!("{{ dist = \"exponential\", mean_s = {patience_s} }}");
        let s = simulate(&scenario(rate, &patience, 3_600, 43_200), 24, 12, false);
        let tag = format!("M/M/10+M a={load}");
        check(
            &format!("{tag} P(abandon)"),
            &s.direct.abandon_rate,
            erlang.p_abandon,
            &mut failures,
        );
        check(
            &format!("{tag} mean wait ms"),
            &s.direct.wait_ms_avg,
            erlang.mean_wait_s * 1000.0,
            &mut failures,
        );
        check(&format!("{tag} P(wait)"), &s.direct.p_wait, erlang.p_wait, &mut failures);
        check(
            &format!("{tag} service level"),
            &s.direct.service_level,
            erlang.service_level.unwrap(),
            &mut failures,
        );
        // Without bots every conversation needs a person from its arrival:
        // people's service level is Erlang's, those who leave included.
        assert_eq!(s.direct.person_service_level, s.direct.service_level, "{tag}");
    }
    assert!(failures.is_empty(), "outside the 95% interval:\n{}", failures.join("\n"));
}

/// The meter's service level (first reply within the target, reply delay
/// 0, no abandonment) is Erlang C's too.
#[test]
fn the_meters_service_level_is_erlang_cs() {
    let rate = 0.85 * f64::from(AGENTS) * 3600.0 / HANDLE_S;
    let erlang = erlang_c(rate, HANDLE_S, AGENTS, Some(TARGET_S)).unwrap();
    let s = simulate(&scenario(rate, "\"none\"", 7_200, 43_200), 5, 8, true);
    let estimate = Estimate { mean: s.service_level, ci95: s.ci95.service_level };
    let mut failures = Vec::new();
    check("meter service level ρ=0.85", &estimate, erlang.service_level.unwrap(), &mut failures);
    assert!(failures.is_empty(), "{failures:?}");
    assert!(s.answered.unwrap() > 0.0 && s.abandoned == Some(0.0));
}

/// The same seed gives the same summary on a pool of one thread and on a
/// pool of two (the replications are seeded by index, not by thread).
#[test]
fn same_seed_same_output_on_one_and_two_threads() {
    let patience = "{ dist = \"exponential\", mean_s = 120 }";
    let scenario = scenario(500.0, patience, 600, 7_200);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut s = pool.install(|| simulate(&scenario, 99, 4, true));
        s.sim_conversations_per_sec = 0.0;
        s.wall_ms = 0;
        serde_json::to_string(&s).unwrap()
    };
    let one = on(1);
    assert_eq!(one, on(2));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut other = pool.install(|| simulate(&scenario, 100, 4, true));
    other.wall_ms = 0;
    other.sim_conversations_per_sec = 0.0;
    assert_ne!(one, serde_json::to_string(&other).unwrap(), "another seed, other numbers");
}
