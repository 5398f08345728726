//! Where jobs go: the in-process queue (the default) or Redis (scale-out), behind one interface
//! for the handlers and the workers.
use std::sync::Arc;

use stylegram_engine::Mode;

use crate::queue::{Admission, Cancelled, Job, Queue, Ticket};
use crate::redis_queue::RedisQueue;
use crate::store::{Bounded, Finished};

/// Bytes of finished results kept in memory for their buttons.
const RESULT_CACHE_BYTES: usize = 256 << 20;

/// The job queue and the finished results.
#[expect(
    clippy::large_enum_variant,
    reason = "one per process, never moved around"
)]
pub enum Jobs {
    /// In this process: painted by this process's workers, results kept in memory.
    Local {
        /// The lanes.
        queue: Queue,
        /// Finished results by job id.
        results: Bounded<Finished>,
    },
    /// In Redis: painted by `stylegram-bot worker` processes.
    Shared(Arc<RedisQueue>),
}

impl Jobs {
    /// An in-process queue allowing each user `per_hour` jobs an hour.
    pub fn local(per_hour: usize) -> Self {
        Jobs::Local {
            queue: Queue::new(per_hour),
            results: Bounded::new(RESULT_CACHE_BYTES),
        }
    }

    /// Adds a job to its lane, unless the user is busy or over the hourly limit.
    pub async fn submit(&self, job: Job) -> anyhow::Result<Admission> {
        match self {
            Jobs::Local { queue, .. } => Ok(queue.submit(job)),
            Jobs::Shared(redis) => redis.submit(job).await,
        }
    }

    /// Cancels the user's job: removed if waiting, told to stop if running.
    pub async fn cancel(&self, user: u64) -> anyhow::Result<Cancelled> {
        match self {
            Jobs::Local { queue, .. } => Ok(queue.cancel(user)),
            Jobs::Shared(redis) => redis.cancel(user).await,
        }
    }

    /// Jobs waiting and running, per mode.
    pub async fn depths(&self) -> anyhow::Result<[(Mode, usize, usize); 2]> {
        match self {
            Jobs::Local { queue, .. } => Ok(queue.depths()),
            Jobs::Shared(redis) => redis.depths().await,
        }
    }

    /// How many jobs of `mode` are painted at once: this process's `workers`, or in Redis mode
    /// the sum over the live worker processes.
    pub async fn capacity(&self, mode: Mode, workers: usize) -> anyhow::Result<usize> {
        match self {
            Jobs::Local { .. } => Ok(workers),
            Jobs::Shared(redis) => Ok(redis
                .workers()
                .await?
                .iter()
                .map(|w| match mode {
                    Mode::Fast => w.fast,
                    Mode::Quality => w.quality,
                })
                .sum()),
        }
    }

    /// Waiting jobs of `mode` with their positions (0 = next).
    pub async fn waiting(&self, mode: Mode) -> anyhow::Result<Vec<(usize, Job)>> {
        match self {
            Jobs::Local { queue, .. } => Ok(queue.waiting(mode)),
            Jobs::Shared(redis) => redis.waiting(mode).await,
        }
    }

    /// Frees the ticket's user to start another job (the engine is done with this one).
    pub async fn release(&self, ticket: &Ticket) {
        match self {
            Jobs::Local { queue, .. } => queue.finish(ticket),
            Jobs::Shared(redis) => {
                if let Err(e) = redis.release(ticket.job.user, ticket.job.id).await {
                    tracing::error!(job = ticket.job.id, "cannot free the user's slot: {e:#}");
                }
            }
        }
    }

    /// Whether this process may send job `id`'s result: always in-process; in Redis mode unless
    /// another worker sent it or is sending it. When Redis cannot say, the result is sent: a
    /// duplicate is better than a loss.
    pub async fn claim_delivery(&self, id: u64) -> bool {
        match self {
            Jobs::Local { .. } => true,
            Jobs::Shared(redis) => redis.claim_delivery(id).await.unwrap_or_else(|e| {
                tracing::error!(job = id, "cannot claim the delivery: {e:#}");
                true
            }),
        }
    }

    /// Keeps job `id`'s result for its buttons, before it is sent: a button pressed the moment
    /// the picture arrives finds it.
    pub async fn keep_result(&self, id: u64, finished: Finished) {
        match self {
            Jobs::Local { results, .. } => {
                let size = finished.jpeg.len();
                results.insert(id.to_string(), Arc::new(finished), size);
            }
            Jobs::Shared(redis) => {
                if let Err(e) = redis.keep_result(id, &finished).await {
                    tracing::error!(job = id, "cannot keep the result: {e:#}");
                }
            }
        }
    }

    /// Records that job `id`'s result was sent (in Redis mode, so that no worker sends it again).
    pub async fn delivered(&self, id: u64) {
        if let Jobs::Shared(redis) = self
            && let Err(e) = redis.delivered(id).await
        {
            tracing::error!(job = id, "cannot record the delivery: {e:#}");
        }
    }

    /// A finished result, while it is kept.
    pub async fn result(&self, id: u64) -> anyhow::Result<Option<Arc<Finished>>> {
        match self {
            Jobs::Local { results, .. } => Ok(results.get(&id.to_string())),
            Jobs::Shared(redis) => Ok(redis.result(id).await?.map(Arc::new)),
        }
    }
}
