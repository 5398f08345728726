//! Job statistics: latency and overhead windows, outcomes per mode, jobs per day.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use stylegram_engine::Mode;

use crate::outcome::{JobEvent, Outcome, mode_name};

/// (p50, p95) of a window, `None` when it is empty.
pub type Quantiles = (Option<f64>, Option<f64>);

/// Samples kept per mode for percentiles.
const WINDOW: usize = 1000;

#[derive(Default)]
struct Inner {
    /// Seconds from "Go" to the result, last [`WINDOW`] per mode.
    latency: HashMap<Mode, VecDeque<f64>>,
    /// The bot's own seconds per job: everything but waiting in line and the engine.
    overhead: VecDeque<f64>,
    outcomes: HashMap<(Mode, Outcome), u64>,
    /// Seconds per stage of delivered jobs, last [`WINDOW`] per mode and stage.
    stages: HashMap<(Mode, String), VecDeque<f64>>,
    /// (day number since 1970, jobs finished that day).
    today: (u64, u64),
}

/// Job statistics since the process started.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

fn day_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

fn push(window: &mut VecDeque<f64>, value: f64) {
    if window.len() == WINDOW {
        window.pop_front();
    }
    window.push_back(value);
}

/// The `q`-quantile (0..=1) of `values` by nearest rank; `None` when empty.
pub fn quantile(values: &VecDeque<f64>, q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a finished job: its outcome, and for results the latency, the bot's overhead and
    /// the stages.
    pub fn record(&self, event: &JobEvent) {
        let JobEvent {
            mode,
            outcome,
            latency,
            overhead,
            ..
        } = *event;
        let mut inner = self.lock();
        *inner.outcomes.entry((mode, outcome)).or_insert(0) += 1;
        let day = day_now();
        if inner.today.0 != day {
            inner.today = (day, 0);
        }
        inner.today.1 += 1;
        if outcome == Outcome::Done {
            push(inner.latency.entry(mode).or_default(), latency);
            push(&mut inner.overhead, overhead);
            for (stage, seconds) in &event.stages {
                push(
                    inner.stages.entry((mode, stage.clone())).or_default(),
                    *seconds,
                );
            }
        }
    }

    /// (p50, p95) seconds of each stage of delivered jobs, by mode and stage name.
    pub fn stages(&self) -> Vec<((Mode, String), Quantiles)> {
        let inner = self.lock();
        let mut v: Vec<_> = inner
            .stages
            .iter()
            .map(|(k, w)| (k.clone(), (quantile(w, 0.5), quantile(w, 0.95))))
            .collect();
        v.sort_by(|a, b| (mode_name(a.0.0), &a.0.1).cmp(&(mode_name(b.0.0), &b.0.1)));
        v
    }

    /// (p50, p95) latency of `mode` in seconds.
    pub fn latency(&self, mode: Mode) -> (Option<f64>, Option<f64>) {
        let inner = self.lock();
        let empty = VecDeque::new();
        let values = inner.latency.get(&mode).unwrap_or(&empty);
        (quantile(values, 0.5), quantile(values, 0.95))
    }

    /// (p50, p95) of the bot's own time per job, in seconds.
    pub fn overhead(&self) -> (Option<f64>, Option<f64>) {
        let inner = self.lock();
        (
            quantile(&inner.overhead, 0.5),
            quantile(&inner.overhead, 0.95),
        )
    }

    /// Jobs finished today (UTC).
    pub fn jobs_today(&self) -> u64 {
        let inner = self.lock();
        if inner.today.0 == day_now() {
            inner.today.1
        } else {
            0
        }
    }

    /// Jobs per mode and outcome, sorted by their names.
    pub fn outcomes(&self) -> Vec<((Mode, Outcome), u64)> {
        let mut v: Vec<_> = self.lock().outcomes.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_by_key(|((m, o), _)| (mode_name(*m), o.name()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: VecDeque<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.95), Some(95.0));
        assert_eq!(quantile(&VecDeque::new(), 0.5), None);
    }

    fn event(outcome: Outcome, latency: f64, network: f64) -> JobEvent {
        JobEvent {
            mode: Mode::Fast,
            outcome,
            latency,
            overhead: 0.01,
            stages: vec![("network".into(), network)],
        }
    }

    #[test]
    fn only_results_count_towards_latency_and_stages() {
        let s = Stats::default();
        s.record(&event(Outcome::Done, 1.0, 0.4));
        s.record(&event(Outcome::Failed, 9.0, 9.0));
        assert_eq!(s.latency(Mode::Fast), (Some(1.0), Some(1.0)));
        assert_eq!(s.jobs_today(), 2);
        assert_eq!(
            s.stages(),
            [((Mode::Fast, "network".to_owned()), (Some(0.4), Some(0.4)))]
        );
    }
}
