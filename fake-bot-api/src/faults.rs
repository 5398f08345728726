//! Faults on demand: the wrong answers the real Bot API gives under load and during incidents, per
//! method, for the next N calls or for a fraction of all calls, plus chats whose user blocked the
//! bot. Set from code ([`crate::State::inject`], [`crate::State::inject_rate`],
//! [`crate::State::block`]), from the binary's `--fault` and `--blocked` flags, or over HTTP
//! (`POST /control/faults`, `POST /control/block`, `DELETE /control/faults`).
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Methods a `*` rule spares: polling and the bot's start-up calls (a bot that cannot start is
/// restarted by its supervisor; these faults are about the conversation).
const START_UP: [&str; 5] = [
    "getupdates",
    "getme",
    "setmycommands",
    "deletewebhook",
    "getwebhookinfo",
];

/// A wrong answer the server gives instead of serving a call, to test the bot's retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429 Too Many Requests with Telegram's `retry_after` in seconds.
    TooManyRequests {
        /// Seconds the client is told to wait.
        retry_after: u32,
    },
    /// A server error with this HTTP status (500, 502, 503...).
    ServerError {
        /// The status.
        status: u16,
    },
    /// The answer comes this many milliseconds late (the call is served after the wait, if the
    /// client still listens; past its timeout it never is).
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// The connection is closed without an answer (the call is not served).
    Drop,
}

impl Fault {
    /// The fault's label in counts.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::TooManyRequests { .. } => "429",
            Fault::ServerError { .. } => "5xx",
            Fault::Delay { .. } => "delay",
            Fault::Drop => "drop",
        }
    }

    /// How long to hold the answer, for [`Fault::Delay`].
    pub fn delay(&self) -> Option<Duration> {
        match self {
            Fault::Delay { ms } => Some(Duration::from_millis(*ms)),
            _ => None,
        }
    }
}

/// A fault rule as the `--fault` flag and the HTTP control call give it: which method (`*`: every
/// method but getUpdates and the start-up calls), what, and for how many calls or what fraction of
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// A Bot API method (any case), or `*`.
    pub method: String,
    /// What to answer.
    pub fault: Fault,
    /// Answer the next this-many calls so (when no `rate` is given).
    #[serde(default)]
    pub times: Option<usize>,
    /// Answer this fraction of calls (0..=1) so.
    #[serde(default)]
    pub rate: Option<f64>,
}

impl std::str::FromStr for FaultRule {
    type Err = String;

    /// `METHOD=KIND[:ARG](@RATE|xTIMES)`, for example `*=429:2@0.05` (5% of calls answered 429
    /// with retry_after 2), `sendPhoto=500x3`, `*=delay:20000@0.01`, `getFile=drop@0.02`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "bad fault '{spec}': want METHOD=KIND[:ARG](@RATE|xTIMES), KIND one of 429[:retry_after], 500, 502, 503, delay:MS, drop"
            )
        };
        let (method, rest) = spec.split_once('=').ok_or_else(usage)?;
        let (what, times, rate) = if let Some((what, rate)) = rest.split_once('@') {
            let rate: f64 = rate.parse().map_err(|_| usage())?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(usage());
            }
            (what, None, Some(rate))
        } else if let Some((what, times)) = rest.rsplit_once('x') {
            (what, Some(times.parse().map_err(|_| usage())?), None)
        } else {
            (rest, Some(1), None)
        };
        let (kind, arg) = what.split_once(':').unwrap_or((what, ""));
        let number = |default: u64| -> Result<u64, String> {
            if arg.is_empty() {
                Ok(default)
            } else {
                arg.parse().map_err(|_| usage())
            }
        };
        let fault = match kind {
            "429" => Fault::TooManyRequests {
                retry_after: u32::try_from(number(1)?).map_err(|_| usage())?,
            },
            "500" | "502" | "503" | "504" => Fault::ServerError {
                status: kind.parse().map_err(|_| usage())?,
            },
            "delay" => Fault::Delay {
                ms: number(20_000)?,
            },
            "drop" => Fault::Drop,
            _ => return Err(usage()),
        };
        Ok(FaultRule {
            method: method.to_owned(),
            fault,
            times,
            rate,
        })
    }
}

impl std::fmt::Display for FaultRule {
    /// The flag form that [`FaultRule`]'s `FromStr` reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.fault {
            Fault::TooManyRequests { retry_after } => format!("429:{retry_after}"),
            Fault::ServerError { status } => status.to_string(),
            Fault::Delay { ms } => format!("delay:{ms}"),
            Fault::Drop => "drop".into(),
        };
        match (self.rate, self.times) {
            (Some(rate), _) => write!(f, "{}={what}@{rate}", self.method),
            (None, times) => write!(f, "{}={what}x{}", self.method, times.unwrap_or(1)),
        }
    }
}

/// The faults switched on, and what was served.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Faults for the next calls of a method (lowercase), first first.
    queued: HashMap<String, VecDeque<Fault>>,
    /// (method lowercase or `*`, fraction, fault).
    rates: Vec<(String, f64, Fault)>,
    /// Chats whose user blocked the bot: every call for them answers 403.
    pub(crate) blocked: HashSet<i64>,
    /// A xorshift state, so a run's faults can be repeated (seeded by [`Faults::seed`]).
    rng: u64,
    /// Faults served, by label.
    pub(crate) served: HashMap<&'static str, u64>,
}

impl Faults {
    /// Seeds the fraction faults' random draws.
    pub(crate) fn seed(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    /// Adds a rule.
    pub(crate) fn add(&mut self, rule: &FaultRule) {
        let method = rule.method.to_ascii_lowercase();
        match rule.rate {
            Some(rate) => self.rates.push((method, rate, rule.fault)),
            None => self
                .queued
                .entry(method)
                .or_default()
                .extend(std::iter::repeat_n(rule.fault, rule.times.unwrap_or(1))),
        }
    }

    /// Switches every fault off (blocked chats stay blocked).
    pub(crate) fn clear(&mut self) {
        self.queued.clear();
        self.rates.clear();
    }

    fn draw(&mut self) -> f64 {
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault to answer this call of `method` (lowercase) with, if any.
    pub(crate) fn take(&mut self, method: &str) -> Option<Fault> {
        let fault = match self.queued.get_mut(method).and_then(VecDeque::pop_front) {
            Some(f) => Some(f),
            None => {
                let mut hit = None;
                for i in 0..self.rates.len() {
                    let (m, rate, fault) = self.rates[i].clone();
                    let applies = m == method || (m == "*" && !START_UP.contains(&method));
                    if applies && self.draw() < rate {
                        hit = Some(fault);
                        break;
                    }
                }
                hit
            }
        }?;
        *self.served.entry(fault.name()).or_insert(0) += 1;
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_from_their_flag_form() {
        let rule: FaultRule = "*=429:2@0.05".parse().unwrap();
        assert_eq!(rule.fault, Fault::TooManyRequests { retry_after: 2 });
        assert_eq!((rule.method.as_str(), rule.rate), ("*", Some(0.05)));
        let rule: FaultRule = "sendPhoto=502x3".parse().unwrap();
        assert_eq!(rule.fault, Fault::ServerError { status: 502 });
        assert_eq!(rule.times, Some(3));
        assert_eq!(
            "getFile=delay:1500".parse::<FaultRule>().unwrap().fault,
            Fault::Delay { ms: 1500 }
        );
        assert!("sendPhoto=teapot".parse::<FaultRule>().is_err());
        for spec in [
            "*=429:2@0.05",
            "getFile=drop@0.5",
            "sendPhoto=502x3",
            "x=delay:10x1",
        ] {
            let rule: FaultRule = spec.parse().unwrap();
            assert_eq!(rule.to_string(), spec, "round trip");
        }
        assert!("*=drop@2".parse::<FaultRule>().is_err());
    }

    #[test]
    fn a_rate_hits_about_that_fraction_and_spares_polling() {
        let mut faults = Faults::default();
        faults.seed(7);
        faults.add(&"*=500@0.1".parse().unwrap());
        let hits = (0..10_000)
            .filter(|_| faults.take("sendmessage").is_some())
            .count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| faults.take("getupdates").is_none()));
        assert_eq!(faults.served["5xx"], hits as u64);
    }
}
