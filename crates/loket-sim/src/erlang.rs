//! Exact Erlang B, Erlang C (M/M/n) and Erlang A (M/M/n+M).
//!
//! Erlang A follows Garnett, Mandelbaum and Reiman, "Designing a call
//! center with impatient customers" (M&SOM 4(3), 2002), in its exact form:
//! with `x = nμ/θ` and `y = λ/θ` it needs
//!
//! ```text
//! A(x, y) = x·e^y·y^(−x)·γ(x, y) = Σ_{j≥0} y^j / ((x+1)(x+2)…(x+j))
//! ```
//!
//! (γ the lower incomplete gamma function), which is summed here as that
//! series of positive terms, in logarithms, until the terms no longer
//! change the sum in double precision: no normal or fluid approximation.
//! The series is also the birth–death chain of the queue (term `j` is the
//! stationary weight of `j` waiting relative to all servers busy and none
//! waiting), so its companion `Σ j·t_j` gives the abandonment probability
//! without the cancellation of GMR's `1/(ρA) + 1 − 1/ρ` near ρ = 1.
//!
//! Every function takes rates per hour and times in seconds and returns
//! [`ErlangError`] for inputs outside its domain (no panics).

/// Inputs outside a formula's domain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErlangError {
    /// A rate, time or count is not a finite positive number.
    #[error("{name} must be a finite number above 0, not {value}")]
    NotPositive {
        /// The input's name (`rate`, `handle_s`, `patience_s`, `agents`).
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// Erlang C has no steady state when the load reaches the agents.
    #[error(
        "the load is {load:.3} Erlang on {agents} agents: Erlang C needs fewer Erlang than agents (use Erlang A, with patience)"
    )]
    Unstable {
        /// Offered load λ·h in Erlang.
        load: f64,
        /// Agents.
        agents: u32,
    },
}

/// The answer of [`erlang_c`] or [`erlang_a`], for arrivals in steady state.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Erlang {
    /// Offered load λ·h, in Erlang.
    pub load: f64,
    /// Occupancy: the mean share of agents busy (λ·h/n for Erlang C; the
    /// load actually served over n for Erlang A).
    pub occupancy: f64,
    /// Probability that an arrival waits at all (all agents busy).
    pub p_wait: f64,
    /// Mean wait of all arrivals, in seconds (0 for those who do not
    /// wait; until they leave for those who abandon).
    pub mean_wait_s: f64,
    /// Probability that an arrival abandons (0 for Erlang C).
    pub p_abandon: f64,
    /// Service level: the share of all arrivals answered within the target
    /// (abandoning arrivals count against it), `None` without a target.
    pub service_level: Option<f64>,
}

/// Erlang B: the blocking probability of `agents` servers offered `load`
/// Erlang, by the stable recursion `B(k) = aB(k−1) / (k + aB(k−1))`.
pub fn erlang_b(load: f64, agents: u32) -> Result<f64, ErlangError> {
    positive("load", load)?;
    let mut b = 1.0f64;
    for k in 1..=agents {
        b = load * b / (f64::from(k) + load * b);
    }
    Ok(b)
}

/// Erlang C for an M/M/n queue: `rate_per_hour` arrivals, mean handle
/// `handle_s`, `agents` agents, the service level for `target_s` if given.
///
/// Errors when an input is not positive, or when the load is not below the
/// agents (no steady state).
pub fn erlang_c(
    rate_per_hour: f64,
    handle_s: f64,
    agents: u32,
    target_s: Option<f64>,
) -> Result<Erlang, ErlangError> {
    positive("rate", rate_per_hour)?;
    positive("handle_s", handle_s)?;
    positive("agents", f64::from(agents))?;
    let load = rate_per_hour / 3600.0 * handle_s;
    let n = f64::from(agents);
    if load >= n {
        return Err(ErlangError::Unstable { load, agents });
    }
    let b = erlang_b(load, agents)?;
    let p_wait = n * b / (n - load * (1.0 - b));
    let mean_wait_s = p_wait * handle_s / (n - load);
    let service_level = match target_s {
        Some(t) => {
            nonnegative("target_s", t)?;
            Some(1.0 - p_wait * (-(n - load) * t / handle_s).exp())
        }
        None => None,
    };
    Ok(Erlang { load, occupancy: load / n, p_wait, mean_wait_s, p_abandon: 0.0, service_level })
}

/// Erlang A for an M/M/n+M queue (exponential patience with mean
/// `patience_s`), after Garnett, Mandelbaum and Reiman (2002), exact.
/// Stable at any load, overloads included.
///
/// The service level is the share of arrivals served within `target_s`:
/// `1 − P(abandon) − P(served after waiting longer than T)`, where the
/// last term is `π_n · x/(x+1) · A(x+1, y·e^{−θT}) · e^{−(nμ+θ)T + y(1−e^{−θT})}`
/// (π_n the probability of all agents busy and none waiting), from the
/// offered-wait density `nμ·π_n·exp(λH(t) − nμt)` with
/// `H(t) = (1 − e^{−θt})/θ`.
pub fn erlang_a(
    rate_per_hour: f64,
    handle_s: f64,
    patience_s: f64,
    agents: u32,
    target_s: Option<f64>,
) -> Result<Erlang, ErlangError> {
    positive("rate", rate_per_hour)?;
    positive("handle_s", handle_s)?;
    positive("patience_s", patience_s)?;
    positive("agents", f64::from(agents))?;
    let lambda = rate_per_hour / 3600.0;
    let mu = 1.0 / handle_s;
    let theta = 1.0 / patience_s;
    let n = f64::from(agents);
    let load = lambda * handle_s;
    let x = n * mu / theta;
    let y = lambda / theta;
    let b = erlang_b(load, agents)?;
    let sums = series(x, y);
    // π_n = E / (1 + (A − 1)E); P(W > 0) = A·π_n. In logarithms, as A can
    // exceed f64 under heavy overload.
    let (p_wait, ln_pi_n) = if b == 0.0 {
        (0.0, f64::NEG_INFINITY)
    } else {
        // 1 + (A − 1)E = E·A·(1 + (1 − E)/(E·A)).
        let r = ((1.0 - b).ln() - b.ln() - sums.ln_a).exp();
        let p_wait = 1.0 / (1.0 + r);
        (p_wait, p_wait.ln() - sums.ln_a)
    };
    // P(Ab | W > 0) = Σ j·t_j / (y·A), exact and free of cancellation.
    let p_abandon_given_wait = (sums.ln_ja - sums.ln_a).exp() / y;
    let p_abandon = p_wait * p_abandon_given_wait;
    // Little's law on the queue: λ·P(Ab) = θ·E[Q], E[W] = E[Q]/λ.
    let mean_wait_s = p_abandon / theta;
    let occupancy = load * (1.0 - p_abandon) / n;
    let service_level = match target_s {
        Some(t) => {
            nonnegative("target_s", t)?;
            let late = if p_wait == 0.0 {
                0.0
            } else {
                let y_t = y * (-theta * t).exp();
                let tail = series(x + 1.0, y_t);
                let ln_late = ln_pi_n + (x / (x + 1.0)).ln() + tail.ln_a - (n * mu + theta) * t
                    + y * (-(-theta * t).exp_m1());
                ln_late.exp()
            };
            Some((1.0 - p_abandon - late).clamp(0.0, 1.0))
        }
        None => None,
    };
    Ok(Erlang { load, occupancy, p_wait, mean_wait_s, p_abandon, service_level })
}

/// `ln Σ t_j` and `ln Σ j·t_j` for `t_0 = 1`, `t_j = t_{j−1}·y/(x+j)`.
#[derive(Debug, Clone, Copy)]
struct Sums {
    ln_a: f64,
    ln_ja: f64,
}

/// Sums the GMR series in logarithms. Terms rise while `x + j < y`, then
/// fall faster than geometrically; summing stops once a falling term is
/// below 2^−60 of the sum. `y = 0` gives `A = 1`, `Σ j·t_j = 0`.
fn series(x: f64, y: f64) -> Sums {
    if y <= 0.0 {
        return Sums { ln_a: 0.0, ln_ja: f64::NEG_INFINITY };
    }
    // Scaled sums: the true sums are s·e^scale and sj·e^scale.
    let mut scale = 0.0f64;
    let mut s = 1.0f64;
    let mut sj = 0.0f64;
    let mut ln_t = 0.0f64;
    let mut j = 0.0f64;
    loop {
        j += 1.0;
        ln_t += y.ln() - (x + j).ln();
        if ln_t - scale > 300.0 {
            let shift = ln_t - scale;
            s *= (-shift).exp();
            sj *= (-shift).exp();
            scale = ln_t;
        }
        let t = (ln_t - scale).exp();
        s += t;
        sj += j * t;
        let falling = x + j + 1.0 > y;
        // Stop when the term no longer counts for either sum (j·t against
        // Σ j·t too); beyond, each term shrinks by y/(x+j) < 1.
        if falling && t < s * 1e-18 && j * t < sj * 1e-18 {
            break;
        }
        if j > 1e9 {
            break;
        }
    }
    Sums { ln_a: s.ln() + scale, ln_ja: sj.ln() + scale }
}

fn positive(name: &'static str, value: f64) -> Result<(), ErlangError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ErlangError::NotPositive { name, value })
    }
}

fn nonnegative(name: &'static str, value: f64) -> Result<(), ErlangError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ErlangError::NotPositive { name, value })
    }
}

/// The fewest agents (from 1) for which Erlang C meets `service_level`
/// within `target_s`: the staffing calculators' answer and the starting
/// guess of simulated staffing. `None` beyond 100,000 agents.
pub fn erlang_c_agents(
    rate_per_hour: f64,
    handle_s: f64,
    target_s: f64,
    service_level: f64,
) -> Result<Option<u32>, ErlangError> {
    positive("rate", rate_per_hour)?;
    positive("handle_s", handle_s)?;
    let load = rate_per_hour / 3600.0 * handle_s;
    let first = (load.floor() as u32).saturating_add(1);
    for agents in first..=100_000 {
        let answer = erlang_c(rate_per_hour, handle_s, agents, Some(target_s))?;
        if answer.service_level.unwrap_or(0.0) >= service_level {
            return Ok(Some(agents));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300) || (a - b).abs() < 1e-15
    }

    /// Erlang B table values (the classic tables, 4 decimals) and exact
    /// rationals: B(1, a) = a/(1+a); B(3, 2) = (8/6)/(1+2+2+8/6) = 4/19.
    #[test]
    fn erlang_b_matches_tables_and_rationals() {
        assert!(close(erlang_b(0.5, 1).unwrap(), 1.0 / 3.0, 1e-15));
        assert!(close(erlang_b(2.0, 3).unwrap(), 4.0 / 19.0, 1e-15));
        // Table: 5 Erlang on 10 lines blocks 1.84 %, 10 on 10: 21.46 %.
        assert!((erlang_b(5.0, 10).unwrap() - 0.018385).abs() < 5e-6);
        assert!((erlang_b(10.0, 10).unwrap() - 0.214582).abs() < 5e-6);
    }

    /// Erlang C: C(3, 2 Erlang) = 4/9 by hand; the identity
    /// C = nB / (n − a(1 − B)); M/M/1: C = ρ and E[W] = ρh/(1−ρ).
    #[test]
    fn erlang_c_matches_hand_values_and_mm1() {
        let c = erlang_c(7200.0, 1.0, 3, Some(0.0)).unwrap();
        assert!(close(c.p_wait, 4.0 / 9.0, 1e-14), "{c:?}");
        assert!(close(c.service_level.unwrap(), 5.0 / 9.0, 1e-14));
        let mm1 = erlang_c(36.0, 60.0, 1, Some(30.0)).unwrap(); // ρ = 0.6
        assert!(close(mm1.p_wait, 0.6, 1e-14));
        assert!(close(mm1.mean_wait_s, 0.6 * 60.0 / 0.4, 1e-13));
        assert!(close(
            mm1.service_level.unwrap(),
            1.0 - 0.6 * (-0.4 * 30.0 / 60.0f64).exp(),
            1e-14
        ));
        // A calculator's textbook case: 100 chats/30 min → 200/h, 3 min
        // handle (10 Erlang), 13 agents: P(wait) 36.8 %, ASA 18.4 s...
        // checked here against the B→C identity rather than rounded print.
        let c = erlang_c(200.0, 180.0, 13, Some(20.0)).unwrap();
        let b = erlang_b(10.0, 13).unwrap();
        assert!(close(c.p_wait, 13.0 * b / (13.0 - 10.0 * (1.0 - b)), 1e-14));
        assert!(matches!(erlang_c(200.0, 180.0, 10, None), Err(ErlangError::Unstable { .. })));
    }

    /// As patience grows without bound Erlang A tends to Erlang C.
    #[test]
    fn erlang_a_tends_to_erlang_c() {
        for (rate, handle, agents) in [(120.0, 240.0, 10), (600.0, 240.0, 45), (50.0, 60.0, 1)] {
            let c = erlang_c(rate, handle, agents, Some(20.0)).unwrap();
            let a = erlang_a(rate, handle, 1e9, agents, Some(20.0)).unwrap();
            assert!(close(a.p_wait, c.p_wait, 1e-5), "{a:?} {c:?}");
            assert!(close(a.mean_wait_s, c.mean_wait_s, 1e-4), "{a:?} {c:?}");
            assert!(close(a.service_level.unwrap(), c.service_level.unwrap(), 1e-5));
            assert!(a.p_abandon < 1e-5);
        }
    }

    /// With patience equal to the handle time (θ = μ) every customer leaves
    /// at rate μ whether waiting or served, so the number present is
    /// Poisson(a) (M/M/∞): P(wait) = P(N ≥ n), P(abandon) = E[(N − n)+]/a.
    #[test]
    fn erlang_a_with_theta_equal_mu_is_poisson() {
        for (load, agents) in [(8.0f64, 10u32), (12.0, 10), (3.0, 2), (50.0, 40)] {
            let mut pmf = (-load).exp();
            let (mut below, mut excess_below) = (0.0, 0.0);
            for k in 0..agents {
                below += pmf;
                excess_below += pmf * (f64::from(agents) - f64::from(k));
                pmf *= load / f64::from(k + 1);
            }
            let p_wait = 1.0 - below;
            // E[(N − n)+] = E[N] − n + E[(n − N)+].
            let excess = load - f64::from(agents) + excess_below;
            let a = erlang_a(load * 3600.0 / 100.0, 100.0, 100.0, agents, None).unwrap();
            assert!(close(a.p_wait, p_wait, 1e-10), "{load} {agents}: {a:?} vs {p_wait}");
            assert!(close(a.p_abandon, excess / load, 1e-10), "{a:?} vs {}", excess / load);
        }
    }

    /// An independent method: the birth–death chain summed directly over
    /// states, with the offered-wait tail from the hypoexponential sum of
    /// the rates ahead, integrated numerically.
    #[test]
    fn erlang_a_matches_the_birth_death_chain() {
        let (lambda, mu, theta, n) = (0.5f64, 1.0 / 10.0, 1.0 / 20.0, 5u32);
        let mut weights = Vec::new();
        let mut w = 1.0f64;
        for k in 0..400u32 {
            weights.push(w);
            let death =
                f64::from((k + 1).min(n)) * mu + f64::from((k + 1).saturating_sub(n)) * theta;
            w *= lambda / death;
        }
        let total: f64 = weights.iter().sum();
        let pi: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let p_wait: f64 = pi[n as usize..].iter().sum();
        let queue: f64 =
            pi.iter().enumerate().map(|(k, p)| p * (k.saturating_sub(n as usize)) as f64).sum();
        let p_abandon = theta * queue / lambda;
        let a = erlang_a(lambda * 3600.0, 1.0 / mu, 1.0 / theta, n, Some(15.0)).unwrap();
        assert!(close(a.p_wait, p_wait, 1e-12), "{a:?} {p_wait}");
        assert!(close(a.p_abandon, p_abandon, 1e-12), "{a:?} {p_abandon}");
        assert!(close(a.mean_wait_s, queue / lambda, 1e-12));
        // Served within T, by uniformising the tagged arrival's own chain:
        // with i ahead, one goes (service start or abandonment ahead) at
        // nμ + iθ; at 0 ahead that is the arrival's service; its own
        // patience runs out at θ. Poisson weights of Λ·T give the exact
        // transient probabilities.
        let t_target = 15.0;
        let depth = pi.iter().rposition(|p| *p > 1e-18).unwrap() - n as usize;
        let rate = f64::from(n) * mu + depth as f64 * theta + theta;
        let mut ahead: Vec<f64> = (0..=depth).map(|j| pi[n as usize + j]).collect();
        let immediately = pi[..n as usize].iter().sum::<f64>();
        // Σ_k Poisson(k; ΛT) · (served within k steps).
        let mut served = 0.0f64;
        let mut weight = (-rate * t_target).exp();
        let mut within = weight * served;
        let mut weights = weight;
        let mut k = 0u32;
        while weights < 1.0 - 1e-15 && k < 10_000 {
            k += 1;
            let mut next = vec![0.0f64; depth + 1];
            for (i, &p) in ahead.iter().enumerate() {
                let go = (f64::from(n) * mu + i as f64 * theta) / rate;
                let own = theta / rate;
                next[i] += p * (1.0 - go - own);
                if i == 0 {
                    served += p * go;
                } else {
                    next[i - 1] += p * go;
                }
            }
            ahead = next;
            weight *= rate * t_target / f64::from(k);
            weights += weight;
            within += weight * served;
        }
        let sl = a.service_level.unwrap();
        assert!((sl - (immediately + within)).abs() < 1e-9, "{sl} vs {}", immediately + within);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(erlang_c(0.0, 1.0, 1, None).is_err());
        assert!(erlang_c(f64::NAN, 1.0, 1, None).is_err());
        assert!(erlang_a(10.0, 1.0, -1.0, 1, None).is_err());
        assert!(erlang_a(10.0, 1.0, 1.0, 0, None).is_err());
        // Overload is fine for Erlang A.
        let a = erlang_a(10_000.0, 240.0, 60.0, 10, Some(20.0)).unwrap();
        assert!(a.p_abandon > 0.9 && a.p_wait > 0.999, "{a:?}");
    }

    #[test]
    fn staffing_finds_the_fewest_agents() {
        let agents = erlang_c_agents(200.0, 180.0, 20.0, 0.8).unwrap().unwrap();
        let meets =
            |n| erlang_c(200.0, 180.0, n, Some(20.0)).unwrap().service_level.unwrap() >= 0.8;
        assert!(meets(agents));
        assert!(agents == 11 || !meets(agents - 1));
    }
}
