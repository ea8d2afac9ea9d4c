//! Fault injection for `reprise serve --faults 429=0.05,500=0.02,stall=0.01,cut=0.01,malformed=0.01`:
//! each request draws at most one fault, with the given probabilities, so clients can be tested
//! against every failure a real API has.

use std::fmt;
use std::str::FromStr;

/// What can go wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// 429 with `Retry-After`, in OpenAI's rate-limit error shape.
    RateLimit,
    /// 500 in OpenAI's server-error shape.
    Server,
    /// The response is held back (see `ServeConfig::stall`) before it starts.
    Stall,
    /// The connection is closed part-way through the response body.
    Cut,
    /// A 200 whose body (or one stream event) is not valid JSON.
    Malformed,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::RateLimit,
        Fault::Server,
        Fault::Stall,
        Fault::Cut,
        Fault::Malformed,
    ];

    /// The name used in `--faults`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::RateLimit => "429",
            Fault::Server => "500",
            Fault::Stall => "stall",
            Fault::Cut => "cut",
            Fault::Malformed => "malformed",
        }
    }
}

/// The probability of each fault per request; they add up to at most 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    rates: Vec<(Fault, f64)>,
}

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }

    pub fn rate(&self, fault: Fault) -> f64 {
        self.rates
            .iter()
            .find(|(f, _)| *f == fault)
            .map_or(0.0, |(_, r)| *r)
    }

    /// The fault for a request whose uniform draw in [0, 1) is `u`: the rates laid end to end.
    pub fn pick(&self, u: f64) -> Option<Fault> {
        let mut edge = 0.0;
        for &(fault, rate) in &self.rates {
            edge += rate;
            if u < edge {
                return Some(fault);
            }
        }
        None
    }
}

impl FromStr for Faults {
    type Err = String;

    /// `429=0.05,500=0.02,…` (or `none`); every name at most once, each rate in [0, 1], their
    /// sum ≤ 1.
    fn from_str(s: &str) -> Result<Faults, String> {
        if s.trim() == "none" {
            return Ok(Faults::none());
        }
        let mut rates: Vec<(Fault, f64)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, rate)) = part.split_once('=') else {
                return Err(format!("`{part}` is not NAME=RATE (e.g. 429=0.05)"));
            };
            let name = name.trim();
            let Some(fault) = Fault::ALL.iter().copied().find(|f| f.name() == name) else {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                return Err(format!(
                    "unknown fault `{name}`; expected one of {}",
                    names.join(", ")
                ));
            };
            let rate: f64 = rate
                .trim()
                .parse()
                .ok()
                .filter(|r: &f64| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    format!(
                        "the rate of `{name}` must be a number from 0 to 1, got `{}`",
                        rate.trim()
                    )
                })?;
            if rates.iter().any(|(f, _)| *f == fault) {
                return Err(format!("fault `{name}` is given twice"));
            }
            rates.push((fault, rate));
        }
        let total: f64 = rates.iter().map(|(_, r)| r).sum();
        if total > 1.0 + 1e-9 {
            return Err(format!(
                "the fault rates add up to {total}, more than 1 (each request gets at most one fault)"
            ));
        }
        rates.retain(|(_, r)| *r > 0.0);
        Ok(Faults { rates })
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rates.is_empty() {
            return write!(f, "none");
        }
        let parts: Vec<String> = self
            .rates
            .iter()
            .map(|(fault, rate)| format!("{}={rate}", fault.name()))
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_laid_end_to_end() {
        let f: Faults = "429=0.05,500=0.02,stall=0.01,cut=0.01,malformed=0.01"
            .parse()
            .unwrap();
        assert_eq!(f.pick(0.0), Some(Fault::RateLimit));
        assert_eq!(f.pick(0.0499), Some(Fault::RateLimit));
        assert_eq!(f.pick(0.05), Some(Fault::Server));
        assert_eq!(f.pick(0.075), Some(Fault::Stall));
        assert_eq!(f.pick(0.085), Some(Fault::Cut));
        assert_eq!(f.pick(0.095), Some(Fault::Malformed));
        assert_eq!(f.pick(0.1), None);
        assert_eq!(f.pick(0.99), None);
        assert_eq!(f.rate(Fault::Server), 0.02);
        assert_eq!(
            f.to_string(),
            "429=0.05,500=0.02,stall=0.01,cut=0.01,malformed=0.01"
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Faults>().unwrap_err();
        assert_eq!(
            err("404=0.1"),
            "unknown fault `404`; expected one of 429, 500, stall, cut, malformed"
        );
        assert_eq!(err("429"), "`429` is not NAME=RATE (e.g. 429=0.05)");
        assert_eq!(
            err("429=lots"),
            "the rate of `429` must be a number from 0 to 1, got `lots`"
        );
        assert_eq!(
            err("cut=1.5"),
            "the rate of `cut` must be a number from 0 to 1, got `1.5`"
        );
        assert_eq!(err("cut=0.1,cut=0.2"), "fault `cut` is given twice");
        assert!(err("429=0.6,500=0.6").contains("more than 1"));
        assert!("".parse::<Faults>().unwrap().is_empty());
        assert!("none".parse::<Faults>().unwrap().is_empty());
        assert_eq!(
            "429=1".parse::<Faults>().unwrap().pick(0.999),
            Some(Fault::RateLimit)
        );
    }
}
