//! Distributions of a scenario: the TOML shape ([`DistSpec`]) and the
//! compiled sampler ([`Dist`]), drawn with `rand_distr`.

use rand::Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma, LogNormal};
use serde::{Deserialize, Serialize};

/// A distribution as a scenario writes it: `{ dist = "exponential",
/// mean_s = 240 }`. Keys ending in `_s` are seconds for durations; for
/// order values the same keys without `_s` (`mean`, `sd`, `value`,
/// `values`) read better and are accepted everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum DistSpec {
    /// Exponential with mean `mean_s`.
    Exponential {
        /// The mean.
        #[serde(alias = "mean")]
        mean_s: f64,
    },
    /// Lognormal with mean `mean_s` and standard deviation `sd_s` (of the
    /// value itself, not of its logarithm).
    Lognormal {
        /// The mean.
        #[serde(alias = "mean")]
        mean_s: f64,
        /// The standard deviation.
        #[serde(alias = "sd")]
        sd_s: f64,
    },
    /// Gamma with shape `shape` and mean `mean_s` (scale `mean_s/shape`).
    Gamma {
        /// The shape k.
        shape: f64,
        /// The mean.
        #[serde(alias = "mean")]
        mean_s: f64,
    },
    /// Always `value_s`.
    Fixed {
        /// The value.
        #[serde(alias = "value")]
        value_s: f64,
    },
    /// Uniform between `min_s` and `max_s`.
    Uniform {
        /// Lower bound.
        #[serde(alias = "min")]
        min_s: f64,
        /// Upper bound.
        #[serde(alias = "max")]
        max_s: f64,
    },
    /// One of `values_s`, each equally likely (a sample of real handle
    /// times, say).
    Empirical {
        /// The values.
        #[serde(alias = "values")]
        values_s: Vec<f64>,
    },
    /// Beta(a, b) on 0..1 (for buying intent).
    Beta {
        /// α.
        a: f64,
        /// β.
        b: f64,
    },
}

/// A compiled distribution: every parameter checked, sampling never fails
/// and never returns a negative or non-finite value.
#[derive(Debug, Clone)]
pub enum Dist {
    /// Exponential.
    Exponential(Exp<f64>),
    /// Lognormal.
    Lognormal(LogNormal<f64>),
    /// Gamma.
    Gamma(Gamma<f64>),
    /// A constant.
    Fixed(f64),
    /// Uniform on `[lo, hi)`.
    Uniform(f64, f64),
    /// An empirical sample.
    Empirical(Box<[f64]>),
    /// Beta.
    Beta(Beta<f64>),
}

impl Dist {
    /// Compiles `spec`; the error names what is wrong (the caller adds
    /// the key).
    pub fn new(spec: &DistSpec) -> Result<Dist, String> {
        let finite = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(format!("`{name}` must be a finite number of 0 or more, not {v}"))
            }
        };
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(format!("`{name}` must be a finite number above 0, not {v}"))
            }
        };
        Ok(match spec {
            DistSpec::Exponential { mean_s } => {
                let mean = positive("mean_s", *mean_s)?;
                Dist::Exponential(Exp::new(1.0 / mean).map_err(|e| e.to_string())?)
            }
            DistSpec::Lognormal { mean_s, sd_s } => {
                let mean = positive("mean_s", *mean_s)?;
                let sd = finite("sd_s", *sd_s)?;
                let sigma2 = (1.0 + (sd / mean).powi(2)).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                Dist::Lognormal(LogNormal::new(mu, sigma2.sqrt()).map_err(|e| e.to_string())?)
            }
            DistSpec::Gamma { shape, mean_s } => {
                let shape = positive("shape", *shape)?;
                let mean = positive("mean_s", *mean_s)?;
                Dist::Gamma(Gamma::new(shape, mean / shape).map_err(|e| e.to_string())?)
            }
            DistSpec::Fixed { value_s } => Dist::Fixed(finite("value_s", *value_s)?),
            DistSpec::Uniform { min_s, max_s } => {
                let lo = finite("min_s", *min_s)?;
                let hi = finite("max_s", *max_s)?;
                if hi < lo {
                    return Err(format!("`max_s` {hi} is below `min_s` {lo}"));
                }
                Dist::Uniform(lo, hi)
            }
            DistSpec::Empirical { values_s } => {
                if values_s.is_empty() {
                    return Err("`values_s` is empty".to_owned());
                }
                for (i, v) in values_s.iter().enumerate() {
                    finite(&format!("values_s[{i}]"), *v)?;
                }
                Dist::Empirical(values_s.clone().into_boxed_slice())
            }
            DistSpec::Beta { a, b } => {
                let a = positive("a", *a)?;
                let b = positive("b", *b)?;
                Dist::Beta(Beta::new(a, b).map_err(|e| e.to_string())?)
            }
        })
    }

    /// One draw, finite and 0 or more.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let v = match self {
            Dist::Exponential(d) => d.sample(rng),
            Dist::Lognormal(d) => d.sample(rng),
            Dist::Gamma(d) => d.sample(rng),
            Dist::Fixed(v) => *v,
            Dist::Uniform(lo, hi) => {
                if hi > lo {
                    rng.random_range(*lo..*hi)
                } else {
                    *lo
                }
            }
            Dist::Empirical(values) => values[rng.random_range(0..values.len())],
            Dist::Beta(d) => d.sample(rng),
        };
        if v.is_finite() && v > 0.0 { v } else { 0.0 }
    }

    /// One draw in milliseconds, rounded to the nearest.
    #[inline]
    pub fn sample_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        // Saturates: a draw of more than 584 million years is one.
        (self.sample(rng) * 1000.0).round() as u64
    }
}
