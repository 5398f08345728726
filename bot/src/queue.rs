//! The in-process job queue: one lane per mode, so a fast job never waits behind quality jobs; one
//! active job per user and an hourly cap; positions in line; cancellation of waiting and running jobs.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use stylegram_engine::Mode;
use tokio::sync::Notify;

use crate::i18n::Lang;
use crate::session::Draft;

/// Milliseconds since 1970.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a worker needs to run a job and answer the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Unique within the queue (assigned on submission).
    pub id: u64,
    /// When it was submitted, in milliseconds since 1970 (assigned on submission).
    pub submitted_ms: u64,
    /// Who asked.
    pub user: u64,
    /// Where to answer.
    pub chat: i64,
    /// In which language.
    pub lang: Lang,
    /// What to paint.
    pub draft: Draft,
    /// A status message already sent (position and progress are edited into it).
    pub status_message: Option<i32>,
}

/// A job being handled, with its cancel flag.
#[derive(Debug)]
pub struct Ticket {
    /// The job.
    pub job: Job,
    /// When it was submitted (latency counts from here).
    pub submitted: Instant,
    cancelled: AtomicBool,
    interrupted: AtomicBool,
    painted: AtomicBool,
}

impl Ticket {
    /// A ticket for a submitted job.
    pub fn new(job: Job) -> Self {
        let age = Duration::from_millis(unix_ms().saturating_sub(job.submitted_ms));
        Ticket {
            submitted: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
            cancelled: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            painted: AtomicBool::new(false),
            job,
        }
    }

    /// Whether the user cancelled it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Tells the worker running it to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Stops the job because this process is shutting down (not because its user asked).
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
        self.cancel();
    }

    /// Whether the job was stopped by a shutdown.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Records that the engine finished the picture (what is left is its delivery).
    pub fn mark_painted(&self) {
        self.painted.store(true, Ordering::Relaxed);
    }

    /// Whether the engine finished the picture.
    pub fn is_painted(&self) -> bool {
        self.painted.load(Ordering::Relaxed)
    }

    /// The message showing the job's position and progress, if one was sent.
    pub fn status_message(&self) -> Option<i32> {
        self.job.status_message
    }
}

/// The queue's answer to a submission.
#[derive(Debug)]
pub enum Admission {
    /// Accepted; `position` jobs are ahead of it in its lane (0 = next).
    Queued {
        /// The queued job.
        ticket: Arc<Ticket>,
        /// Jobs ahead of it.
        position: usize,
    },
    /// The user already has a job waiting or running.
    Busy,
    /// The user reached the hourly limit.
    RateLimited,
}

/// What `/cancel` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// A waiting job was removed from its lane.
    Waiting(Job),
    /// A running job was told to stop.
    Running(Job),
    /// The user had no job.
    Nothing,
}

#[derive(Default)]
struct Inner {
    lanes: HashMap<Mode, VecDeque<Arc<Ticket>>>,
    active: HashMap<u64, Arc<Ticket>>,
    running: HashMap<u64, Arc<Ticket>>,
    started: HashMap<u64, VecDeque<Instant>>,
    next_id: u64,
}

/// The queue.
pub struct Queue {
    inner: Mutex<Inner>,
    ready: HashMap<Mode, Notify>,
    per_hour: usize,
}

impl Queue {
    /// An empty queue allowing each user `per_hour` jobs an hour.
    pub fn new(per_hour: usize) -> Self {
        // Ids start at the clock (milliseconds), so that results spooled by an earlier run keep
        // ids no new job takes.
        let inner = Inner {
            next_id: unix_ms(),
            ..Inner::default()
        };
        Queue {
            inner: Mutex::new(inner),
            ready: [(Mode::Fast, Notify::new()), (Mode::Quality, Notify::new())].into(),
            per_hour,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a job to its mode's lane, unless the user is busy or over the limit. The id is assigned
    /// here.
    pub fn submit(&self, mut job: Job) -> Admission {
        let mode = job.draft.mode;
        let mut inner = self.lock();
        if inner.active.contains_key(&job.user) {
            return Admission::Busy;
        }
        let now = Instant::now();
        let starts = inner.started.entry(job.user).or_default();
        while starts
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600))
        {
            starts.pop_front();
        }
        if starts.len() >= self.per_hour {
            return Admission::RateLimited;
        }
        starts.push_back(now);
        inner.next_id += 1;
        job.id = inner.next_id;
        job.submitted_ms = unix_ms();
        let ticket = Arc::new(Ticket::new(job));
        inner.active.insert(ticket.job.user, ticket.clone());
        let lane = inner.lanes.entry(mode).or_default();
        lane.push_back(ticket.clone());
        let position = lane.len() - 1;
        drop(inner);
        self.ready[&mode].notify_one();
        Admission::Queued { ticket, position }
    }

    /// Waits for the next job of `mode`'s lane and marks it running.
    pub async fn next(&self, mode: Mode) -> Arc<Ticket> {
        loop {
            let notified = self.ready[&mode].notified();
            {
                let mut inner = self.lock();
                if let Some(ticket) = inner.lanes.get_mut(&mode).and_then(VecDeque::pop_front) {
                    inner.running.insert(ticket.job.id, ticket.clone());
                    return ticket;
                }
            }
            notified.await;
        }
    }

    /// Marks a job done (whatever its outcome), freeing its user for the next one. Calling it again
    /// for the same job changes nothing.
    pub fn finish(&self, ticket: &Ticket) {
        let mut inner = self.lock();
        inner.running.remove(&ticket.job.id);
        if inner
            .active
            .get(&ticket.job.user)
            .is_some_and(|t| t.job.id == ticket.job.id)
        {
            inner.active.remove(&ticket.job.user);
        }
    }

    /// Cancels the user's job: removed if waiting, told to stop if running.
    pub fn cancel(&self, user: u64) -> Cancelled {
        let mut inner = self.lock();
        let Some(ticket) = inner.active.get(&user).cloned() else {
            return Cancelled::Nothing;
        };
        ticket.cancel();
        if let Some(running) = inner.running.get(&ticket.job.id) {
            running.cancel();
            return Cancelled::Running(running.job.clone());
        }
        for lane in inner.lanes.values_mut() {
            lane.retain(|t| t.job.id != ticket.job.id);
        }
        inner.active.remove(&user);
        Cancelled::Waiting(ticket.job.clone())
    }

    /// Waiting jobs of `mode` with their positions (0 = next), for position updates.
    pub fn waiting(&self, mode: Mode) -> Vec<(usize, Job)> {
        self.lock()
            .lanes
            .get(&mode)
            .map(|lane| lane.iter().map(|t| t.job.clone()).enumerate().collect())
            .unwrap_or_default()
    }

    /// Empties both lanes (the process is shutting down), freeing their users; returns the jobs.
    pub fn drain_waiting(&self) -> Vec<Job> {
        let mut inner = self.lock();
        let tickets: Vec<Arc<Ticket>> = inner.lanes.values_mut().flat_map(std::mem::take).collect();
        for ticket in &tickets {
            inner.active.remove(&ticket.job.user);
        }
        tickets.iter().map(|t| t.job.clone()).collect()
    }

    /// Jobs waiting and running, per mode.
    pub fn depths(&self) -> [(Mode, usize, usize); 2] {
        let inner = self.lock();
        [Mode::Fast, Mode::Quality].map(|mode| {
            let waiting = inner.lanes.get(&mode).map_or(0, VecDeque::len);
            let running = inner
                .running
                .values()
                .filter(|t| t.job.draft.mode == mode)
                .count();
            (mode, waiting, running)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(user: u64, mode: Mode) -> Job {
        Job {
            id: 0,
            submitted_ms: 0,
            user,
            chat: user as i64,
            lang: Lang::En,
            draft: Draft {
                photo: "p".into(),
                style: None,
                mix: None,
                mode,
                strength: stylegram_engine::Strength::NEUTRAL,
                preserve_colors: false,
            },
            status_message: None,
        }
    }

    #[tokio::test]
    async fn fast_jobs_do_not_wait_behind_quality_jobs() {
        let q = Queue::new(10);
        for user in 1..=3 {
            assert!(matches!(
                q.submit(job(user, Mode::Quality)),
                Admission::Queued { .. }
            ));
        }
        let Admission::Queued { position, .. } = q.submit(job(9, Mode::Fast)) else {
            panic!("not queued")
        };
        assert_eq!(position, 0, "the fast lane is empty");
        let t = q.next(Mode::Fast).await;
        assert_eq!(t.job.user, 9);
        assert_eq!(q.waiting(Mode::Quality).len(), 3);
    }

    #[tokio::test]
    async fn one_active_job_per_user_and_an_hourly_cap() {
        let q = Queue::new(2);
        assert!(matches!(
            q.submit(job(1, Mode::Fast)),
            Admission::Queued { .. }
        ));
        assert!(matches!(q.submit(job(1, Mode::Quality)), Admission::Busy));
        let t = q.next(Mode::Fast).await;
        q.finish(&t);
        assert!(matches!(
            q.submit(job(1, Mode::Fast)),
            Admission::Queued { .. }
        ));
        let t = q.next(Mode::Fast).await;
        q.finish(&t);
        assert!(matches!(
            q.submit(job(1, Mode::Fast)),
            Admission::RateLimited
        ));
        assert!(matches!(
            q.submit(job(2, Mode::Fast)),
            Admission::Queued { .. }
        ));
    }

    #[tokio::test]
    async fn cancel_removes_a_waiting_job_and_flags_a_running_one() {
        let q = Queue::new(10);
        let _ = q.submit(job(1, Mode::Quality));
        let _ = q.submit(job(2, Mode::Quality));
        let running = q.next(Mode::Quality).await;
        assert!(matches!(q.cancel(2), Cancelled::Waiting(_)));
        assert!(q.waiting(Mode::Quality).is_empty());
        assert!(matches!(q.cancel(1), Cancelled::Running(_)));
        assert!(running.is_cancelled());
        q.finish(&running);
        assert_eq!(q.cancel(1), Cancelled::Nothing);
    }

    #[tokio::test]
    async fn positions_count_the_jobs_ahead() {
        let q = Queue::new(10);
        for user in 1..=3 {
            let Admission::Queued { position, .. } = q.submit(job(user, Mode::Quality)) else {
                panic!()
            };
            assert_eq!(position, usize::try_from(user - 1).unwrap());
        }
        let _ = q.next(Mode::Quality).await;
        let positions: Vec<(usize, u64)> = q
            .waiting(Mode::Quality)
            .into_iter()
            .map(|(p, j)| (p, j.user))
            .collect();
        assert_eq!(positions, vec![(0, 2), (1, 3)]);
    }
}
