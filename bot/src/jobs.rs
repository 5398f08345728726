//! Where jobs and finished results live: the [`JobStore`] trait, with the in-process [`LocalJobs`]
//! (the default) and Redis ([`RedisQueue`], scale-out with `stylegram-bot worker` processes)
//! behind it. Handlers, workers and operator commands see only the trait; `lib.rs`, which builds
//! the store, is the one place that knows which it is.
use std::sync::Arc;

use async_trait::async_trait;
use stylegram_engine::Mode;

use crate::delivery::Spool;
use crate::queue::{Admission, Cancelled, Job, Queue, Ticket};
use crate::redis_queue::{RedisQueue, WorkerInfo};
use crate::store::{Bounded, Finished};

/// Bytes of finished results kept in memory for their buttons.
const RESULT_CACHE_BYTES: usize = 256 << 20;
/// How long a finished result stays available for its buttons (as in Redis).
pub const RESULT_KEEP: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The job queue and the finished results.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Adds a job to its lane, unless the user is busy or over the hourly limit.
    async fn submit(&self, job: Job) -> anyhow::Result<Admission>;
    /// Cancels the user's job: removed if waiting, told to stop if running.
    async fn cancel(&self, user: u64) -> anyhow::Result<Cancelled>;
    /// Jobs waiting and running, per mode.
    async fn depths(&self) -> anyhow::Result<[(Mode, usize, usize); 2]>;
    /// How many jobs of `mode` are painted at once, given this process's `workers` for it.
    async fn capacity(&self, mode: Mode, workers: usize) -> anyhow::Result<usize>;
    /// Waiting jobs of `mode` with their positions (0 = next).
    async fn waiting(&self, mode: Mode) -> anyhow::Result<Vec<(usize, Job)>>;
    /// Frees the ticket's user to start another job (the engine is done with this one).
    async fn release(&self, ticket: &Ticket);
    /// Whether this process may send job `id`'s result (never twice).
    async fn claim_delivery(&self, id: u64) -> bool;
    /// Keeps job `id`'s result until it is delivered (in the spool, or in Redis), and for its
    /// buttons; done before it is sent, so a button pressed the moment the picture arrives finds it.
    async fn keep_result(&self, id: u64, finished: Finished);
    /// Records that job `id`'s result was sent, or given up: it is no longer waiting.
    async fn delivered(&self, id: u64);
    /// Results kept by an earlier run of this process and never delivered (the spool).
    async fn undelivered(&self) -> Vec<(u64, Finished)> {
        Vec::new()
    }
    /// Job `id`'s result, when it was painted by an earlier attempt and not yet sent (a worker
    /// that stopped between painting and delivering).
    async fn undelivered_result(&self, _id: u64) -> Option<Finished> {
        None
    }
    /// A finished result, while it is kept.
    async fn result(&self, id: u64) -> anyhow::Result<Option<Arc<Finished>>>;
    /// Keeps a user's checked picture (by Telegram file id) where the process that paints its job
    /// can read it, so that it is downloaded once. By default nothing: this process paints it.
    async fn keep_picture(&self, _file_id: &str, _bytes: Arc<Vec<u8>>) {}
    /// A picture kept by [`JobStore::keep_picture`], while it is kept.
    async fn picture(&self, _file_id: &str) -> Option<Arc<Vec<u8>>> {
        None
    }
    /// Forgets pictures kept by [`JobStore::keep_picture`] (their job is over).
    async fn forget_picture(&self, _file_id: &str) {}
    /// Remembers job `id`'s preview message for whoever delivers its result. By default nothing:
    /// one process sees the whole job.
    async fn set_preview(&self, _id: u64, _message: i32) {}
    /// Tells the processes that paint to serve model `name`; `Ok(true)` when other processes were
    /// told, `Ok(false)` when this process is the only one that paints.
    async fn order_model(&self, _name: &str) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// Tells the processes that paint to rescan their models folder, as [`JobStore::order_model`].
    async fn order_reload(&self) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// The worker processes that paint, or `None` when this process paints its jobs itself.
    async fn workers(&self) -> Option<Vec<WorkerInfo>> {
        None
    }
}

/// Jobs painted by this process's own workers; results kept in memory for their buttons, and in
/// the spool until they are delivered.
pub struct LocalJobs {
    queue: Queue,
    results: Bounded<Finished>,
    spool: Option<Spool>,
}

impl LocalJobs {
    /// An in-process queue allowing each user `per_hour` jobs an hour, spooling undelivered
    /// results in `spool` (none: they are kept in memory only, and lost with the process).
    pub fn new(per_hour: usize, spool: Option<Spool>) -> Self {
        LocalJobs {
            queue: Queue::new(per_hour),
            results: Bounded::new(RESULT_CACHE_BYTES).with_max_age(RESULT_KEEP),
            spool,
        }
    }

    /// The lanes, for this process's workers.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}

#[async_trait]
impl JobStore for LocalJobs {
    async fn submit(&self, job: Job) -> anyhow::Result<Admission> {
        Ok(self.queue.submit(job))
    }

    async fn cancel(&self, user: u64) -> anyhow::Result<Cancelled> {
        Ok(self.queue.cancel(user))
    }

    async fn depths(&self) -> anyhow::Result<[(Mode, usize, usize); 2]> {
        Ok(self.queue.depths())
    }

    async fn capacity(&self, _mode: Mode, workers: usize) -> anyhow::Result<usize> {
        Ok(workers)
    }

    async fn waiting(&self, mode: Mode) -> anyhow::Result<Vec<(usize, Job)>> {
        Ok(self.queue.waiting(mode))
    }

    async fn release(&self, ticket: &Ticket) {
        self.queue.finish(ticket);
    }

    async fn claim_delivery(&self, _id: u64) -> bool {
        true
    }

    async fn keep_result(&self, id: u64, finished: Finished) {
        if let Some(spool) = &self.spool
            && let Err(e) = spool.keep(id, &finished)
        {
            tracing::error!(
                job = id,
                "cannot spool the result (kept in memory only): {e}"
            );
        }
        let size = finished.jpeg.len();
        self.results
            .insert(id.to_string(), Arc::new(finished), size);
    }

    async fn delivered(&self, id: u64) {
        if let Some(spool) = &self.spool {
            spool.remove(id);
        }
    }

    async fn undelivered(&self) -> Vec<(u64, Finished)> {
        self.spool.as_ref().map(Spool::pending).unwrap_or_default()
    }

    async fn result(&self, id: u64) -> anyhow::Result<Option<Arc<Finished>>> {
        Ok(self.results.get(&id.to_string()))
    }
}

/// Jobs in Redis, painted by `stylegram-bot worker` processes. When Redis cannot say whether a
/// result was sent, it is sent: a duplicate is better than a loss.
#[async_trait]
impl JobStore for RedisQueue {
    async fn submit(&self, job: Job) -> anyhow::Result<Admission> {
        RedisQueue::submit(self, job).await
    }

    async fn cancel(&self, user: u64) -> anyhow::Result<Cancelled> {
        RedisQueue::cancel(self, user).await
    }

    async fn depths(&self) -> anyhow::Result<[(Mode, usize, usize); 2]> {
        RedisQueue::depths(self).await
    }

    async fn capacity(&self, mode: Mode, _workers: usize) -> anyhow::Result<usize> {
        Ok(RedisQueue::workers(self)
            .await?
            .iter()
            .map(|w| match mode {
                Mode::Fast => w.fast,
                Mode::Quality => w.quality,
            })
            .sum())
    }

    async fn waiting(&self, mode: Mode) -> anyhow::Result<Vec<(usize, Job)>> {
        RedisQueue::waiting(self, mode).await
    }

    async fn release(&self, ticket: &Ticket) {
        if let Err(e) = RedisQueue::release(self, ticket.job.user, ticket.job.id).await {
            tracing::error!(job = ticket.job.id, "cannot free the user's slot: {e:#}");
        }
    }

    async fn claim_delivery(&self, id: u64) -> bool {
        RedisQueue::claim_delivery(self, id)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(job = id, "cannot claim the delivery: {e:#}");
                true
            })
    }

    async fn keep_result(&self, id: u64, finished: Finished) {
        if let Err(e) = RedisQueue::keep_result(self, id, &finished).await {
            tracing::error!(job = id, "cannot keep the result: {e:#}");
        }
    }

    async fn delivered(&self, id: u64) {
        if let Err(e) = RedisQueue::delivered(self, id).await {
            tracing::error!(job = id, "cannot record the delivery: {e:#}");
        }
    }

    async fn result(&self, id: u64) -> anyhow::Result<Option<Arc<Finished>>> {
        Ok(RedisQueue::result(self, id).await?.map(Arc::new))
    }

    async fn keep_picture(&self, file_id: &str, bytes: Arc<Vec<u8>>) {
        if let Err(e) = RedisQueue::keep_picture(self, file_id, &bytes).await {
            tracing::warn!("cannot keep the picture for the workers: {e:#}");
        }
    }

    async fn forget_picture(&self, file_id: &str) {
        if let Err(e) = RedisQueue::forget_picture(self, file_id).await {
            tracing::warn!("cannot forget a kept picture (it expires anyway): {e:#}");
        }
    }

    async fn undelivered_result(&self, id: u64) -> Option<Finished> {
        match RedisQueue::was_delivered(self, id).await {
            Ok(false) => RedisQueue::result(self, id).await.ok().flatten(),
            _ => None,
        }
    }

    async fn picture(&self, file_id: &str) -> Option<Arc<Vec<u8>>> {
        RedisQueue::picture(self, file_id)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read a kept picture: {e:#}");
                None
            })
            .map(Arc::new)
    }

    async fn set_preview(&self, id: u64, message: i32) {
        if let Err(e) = RedisQueue::set_preview(self, id, message).await {
            tracing::warn!(job = id, "cannot record the preview: {e:#}");
        }
    }

    async fn order_model(&self, name: &str) -> anyhow::Result<bool> {
        RedisQueue::order_model(self, name).await.map(|()| true)
    }

    async fn order_reload(&self) -> anyhow::Result<bool> {
        RedisQueue::order_reload(self).await.map(|()| true)
    }

    async fn workers(&self) -> Option<Vec<WorkerInfo>> {
        Some(RedisQueue::workers(self).await.unwrap_or_else(|e| {
            tracing::warn!("cannot list the workers: {e:#}");
            Vec::new()
        }))
    }
}
