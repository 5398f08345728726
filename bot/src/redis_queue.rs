//! The Redis job queue for scale-out: the bot process puts jobs in Redis, `stylegram-bot worker`
//! processes take and paint them. A job is never lost and is delivered once:
//!
//! - Lanes are lists (`lane:fast`, `lane:quality`); a worker moves a job id atomically into its own
//!   `processing:<worker>:<mode>` list (BLMOVE), so a job is always in exactly one list.
//! - Each worker keeps an `alive:<worker>` key with a short lease. Any worker that finds a registered
//!   worker without one moves that worker's jobs back to the head of their lanes: another worker
//!   retries them.
//! - Before sending a result, a worker claims `delivered:<job>`. A retry of a job that was already
//!   sent, or is being sent by a live worker, sends nothing.
//!
//! Every key starts with `stylegram:`; dialogues live in another database (see
//! [`crate::config::Config::dialogue_redis_url`]).
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Connection, Pool, Runtime};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use stylegram_engine::Mode;

use crate::outcome::{JobEvent, mode_name};
use crate::queue::{Admission, Cancelled, Job, Ticket, unix_ms};
use crate::session::Settings;
use crate::store::Finished;

/// How long job records, results and delivery marks are kept.
const KEEP: Duration = Duration::from_secs(24 * 3600);
/// How long a finished result stays available for its buttons.
const RESULT_KEEP: Duration = Duration::from_secs(6 * 3600);
/// How long a user's picture waits in Redis for the worker that paints it (then it expires).
const PICTURE_KEEP: Duration = Duration::from_secs(3600);
/// Statistics events kept for the bot process to read.
const EVENTS_KEPT: isize = 10_000;
/// How many times a job is started before it is given up (a job that kills its workers).
pub const MAX_ATTEMPTS: u64 = 3;

fn key(rest: impl std::fmt::Display) -> String {
    format!("stylegram:{rest}")
}

fn lane(mode: Mode) -> String {
    key(format!("lane:{}", mode_name(mode)))
}

fn processing(worker: &str, mode: Mode) -> String {
    key(format!("processing:{worker}:{}", mode_name(mode)))
}

fn alive(worker: &str) -> String {
    key(format!("alive:{worker}"))
}

const WORKERS: &str = "stylegram:workers";

/// A live worker as its lease describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its id.
    pub id: String,
    /// Fast-mode jobs it paints at once.
    pub fast: usize,
    /// Quality-mode jobs it paints at once.
    pub quality: usize,
    /// Where its engines run (CPU, CUDA).
    pub provider: String,
}

/// What operators asked every worker to serve, through `/use` and `/reload`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelOrders {
    /// The model to serve, if `/use` picked one.
    pub model: Option<String>,
    /// How many times `/reload` was asked for.
    pub reloads: u64,
}

/// The queue in Redis, as seen by one process (`me`: the bot or a worker).
pub struct RedisQueue {
    pool: Pool,
    me: String,
    per_hour: usize,
    lease: Duration,
}

/// Releases the user's active-job mark only if it still names this job.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// Claims the right to send a job's result: granted when nobody claimed it, when this worker did,
/// or when the claimant's lease is gone (it died before sending); refused once it was sent.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == 'sent' then return 0 end
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. owner) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1";

impl RedisQueue {
    /// Connects to `url` as `me`; fails when Redis does not answer.
    pub async fn connect(
        url: &str,
        me: String,
        per_hour: usize,
        lease: Duration,
    ) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| anyhow::anyhow!("bad STYLEGRAM_REDIS_URL {url}: {e}"))?;
        let queue = RedisQueue {
            pool,
            me,
            per_hour,
            lease,
        };
        let mut c = queue.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut c).await?;
        Ok(queue)
    }

    /// This process's id in the queue.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// How long a worker's lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    async fn conn(&self) -> anyhow::Result<Connection> {
        self.pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach Redis: {e}"))
    }

    /// Adds a job to its lane, unless the user has one waiting or running or reached the hourly
    /// limit. The id and submission time are assigned here.
    pub async fn submit(&self, mut job: Job) -> anyhow::Result<Admission> {
        let mut c = self.conn().await?;
        let now = unix_ms();
        let active = key(format!("active:{}", job.user));
        let hour = key(format!("hour:{}", job.user));
        let id: u64 = c.incr(key("next_id"), 1).await?;
        let claimed: Option<String> = redis::cmd("SET")
            .arg(&active)
            .arg(id)
            .arg("NX")
            .arg("EX")
            .arg(KEEP.as_secs())
            .query_async(&mut c)
            .await?;
        if claimed.is_none() {
            return Ok(Admission::Busy);
        }
        let _: () = c
            .zrembyscore(&hour, 0, now.saturating_sub(3_600_000))
            .await?;
        let started: usize = c.zcard(&hour).await?;
        if started >= self.per_hour {
            self.release(job.user, id).await?;
            return Ok(Admission::RateLimited);
        }
        job.id = id;
        job.submitted_ms = now;
        let (_, _, _, length): ((), (), (), usize) = redis::pipe()
            .set_ex(
                key(format!("job:{id}")),
                serde_json::to_string(&job)?,
                KEEP.as_secs(),
            )
            .zadd(&hour, id, now)
            .expire(&hour, 3600)
            .rpush(lane(job.draft.mode), id)
            .query_async(&mut c)
            .await?;
        Ok(Admission::Queued {
            ticket: Arc::new(Ticket::new(job)),
            position: length - 1,
        })
    }

    /// Frees `user` to submit again, if their active job is still `id`.
    pub async fn release(&self, user: u64, id: u64) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: i64 = Script::new(RELEASE)
            .key(key(format!("active:{user}")))
            .arg(id)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    async fn job(&self, c: &mut Connection, id: &str) -> anyhow::Result<Option<Job>> {
        let json: Option<String> = c.get(key(format!("job:{id}"))).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Cancels the user's job: removed if waiting, flagged for its worker if running.
    pub async fn cancel(&self, user: u64) -> anyhow::Result<Cancelled> {
        let mut c = self.conn().await?;
        let Some(id): Option<String> = c.get(key(format!("active:{user}"))).await? else {
            return Ok(Cancelled::Nothing);
        };
        let Some(job) = self.job(&mut c, &id).await? else {
            let _: () = c.del(key(format!("active:{user}"))).await?;
            return Ok(Cancelled::Nothing);
        };
        let removed: usize = c.lrem(lane(job.draft.mode), 1, &id).await?;
        if removed > 0 {
            self.release(user, job.id).await?;
            return Ok(Cancelled::Waiting(job));
        }
        let _: () = c
            .set_ex(key(format!("cancel:{id}")), 1, KEEP.as_secs())
            .await?;
        Ok(Cancelled::Running(job))
    }

    /// Whether the user cancelled job `id` while it ran.
    pub async fn is_cancelled(&self, id: u64) -> anyhow::Result<bool> {
        let mut c = self.conn().await?;
        Ok(c.exists(key(format!("cancel:{id}"))).await?)
    }

    /// Waits up to a second for the next job of `mode` and moves it to this worker's list. Returns
    /// the job and how many times it was started (1 the first time).
    pub async fn take(&self, mode: Mode) -> anyhow::Result<Option<(Job, u64)>> {
        let mut c = self.conn().await?;
        let mine = processing(&self.me, mode);
        let id: Option<String> = redis::cmd("BLMOVE")
            .arg(lane(mode))
            .arg(&mine)
            .arg("LEFT")
            .arg("RIGHT")
            .arg(1.0)
            .query_async(&mut c)
            .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        let Some(job) = self.job(&mut c, &id).await? else {
            tracing::warn!(job = %id, "a queued job has no record; dropped");
            let _: () = c.lrem(&mine, 1, &id).await?;
            return Ok(None);
        };
        let attempts = key(format!("attempts:{id}"));
        let (attempt, ()): (u64, ()) = redis::pipe()
            .incr(&attempts, 1)
            .expire(&attempts, KEEP.as_secs() as i64)
            .query_async(&mut c)
            .await?;
        Ok(Some((job, attempt)))
    }

    /// Removes a job this worker finished (whatever the outcome) from its list.
    pub async fn finish(&self, job: &Job) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c
            .lrem(processing(&self.me, job.draft.mode), 1, job.id)
            .await?;
        Ok(())
    }

    /// Claims the right to send job `id`'s result (see the module documentation).
    pub async fn claim_delivery(&self, id: u64) -> anyhow::Result<bool> {
        let mut c = self.conn().await?;
        let granted: i64 = Script::new(CLAIM)
            .key(key(format!("delivered:{id}")))
            .arg(&self.me)
            .arg(key("alive:"))
            .arg(KEEP.as_secs())
            .invoke_async(&mut c)
            .await?;
        Ok(granted == 1)
    }

    /// Keeps job `id`'s result (with a TTL) for its buttons; done before it is sent, so a button
    /// pressed the moment the picture arrives finds it.
    pub async fn keep_result(&self, id: u64, finished: &Finished) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: ((), ()) = redis::pipe()
            .set_ex(
                key(format!("result:{id}")),
                serde_json::to_string(finished)?,
                RESULT_KEEP.as_secs(),
            )
            .set_ex(
                key(format!("result:{id}:jpeg")),
                finished.jpeg.as_slice(),
                RESULT_KEEP.as_secs(),
            )
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Keeps a user's picture for the workers, for [`PICTURE_KEEP`].
    pub async fn keep_picture(&self, file_id: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c
            .set_ex(
                key(format!("picture:{file_id}")),
                bytes,
                PICTURE_KEEP.as_secs(),
            )
            .await?;
        Ok(())
    }

    /// Forgets a picture kept by [`RedisQueue::keep_picture`] (its job is over).
    pub async fn forget_picture(&self, file_id: &str) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c.del(key(format!("picture:{file_id}"))).await?;
        Ok(())
    }

    /// Whether job `id`'s result was sent.
    pub async fn was_delivered(&self, id: u64) -> anyhow::Result<bool> {
        let mut c = self.conn().await?;
        let mark: Option<String> = c.get(key(format!("delivered:{id}"))).await?;
        Ok(mark.as_deref() == Some("sent"))
    }

    /// A picture kept by [`RedisQueue::keep_picture`], while it is kept.
    pub async fn picture(&self, file_id: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut c = self.conn().await?;
        Ok(c.get(key(format!("picture:{file_id}"))).await?)
    }

    /// Records that job `id`'s result was sent: no other worker sends it again.
    pub async fn delivered(&self, id: u64) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c
            .set_ex(key(format!("delivered:{id}")), "sent", KEEP.as_secs())
            .await?;
        Ok(())
    }

    /// A finished result (delivered or not), while it is kept.
    pub async fn result(&self, id: u64) -> anyhow::Result<Option<Finished>> {
        let mut c = self.conn().await?;
        let (meta, jpeg): (Option<String>, Option<Vec<u8>>) = redis::pipe()
            .get(key(format!("result:{id}")))
            .get(key(format!("result:{id}:jpeg")))
            .query_async(&mut c)
            .await?;
        let (Some(meta), Some(jpeg)) = (meta, jpeg) else {
            return Ok(None);
        };
        let mut finished: Finished = serde_json::from_str(&meta)?;
        finished.jpeg = jpeg;
        Ok(Some(finished))
    }

    /// Remembers the preview message a worker sent for job `id`, so a retry can remove it.
    pub async fn set_preview(&self, id: u64, message: i32) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c
            .set_ex(key(format!("preview:{id}")), message, KEEP.as_secs())
            .await?;
        Ok(())
    }

    /// The preview message an earlier attempt at job `id` left, if any.
    pub async fn take_preview(&self, id: u64) -> anyhow::Result<Option<i32>> {
        let mut c = self.conn().await?;
        Ok(redis::cmd("GETDEL")
            .arg(key(format!("preview:{id}")))
            .query_async(&mut c)
            .await?)
    }

    /// Renews this worker's lease, announcing what it can run.
    pub async fn heartbeat(&self, info: &WorkerInfo) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: ((), ()) = redis::pipe()
            .set_ex(
                alive(&self.me),
                serde_json::to_string(info)?,
                self.lease.as_secs().max(1),
            )
            .sadd(WORKERS, &self.me)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Moves the jobs of workers whose lease ran out (and this process's own leftovers from an
    /// earlier life under the same id) back to the head of their lanes. Returns how many.
    pub async fn requeue_orphans(&self, include_mine: bool) -> anyhow::Result<usize> {
        let mut c = self.conn().await?;
        let workers: Vec<String> = c.smembers(WORKERS).await?;
        let mut moved = 0;
        for worker in workers {
            let live: bool = c.exists(alive(&worker)).await?;
            if live && !(include_mine && worker == self.me) {
                continue;
            }
            for mode in [Mode::Fast, Mode::Quality] {
                loop {
                    let id: Option<String> = redis::cmd("LMOVE")
                        .arg(processing(&worker, mode))
                        .arg(lane(mode))
                        .arg("RIGHT")
                        .arg("LEFT")
                        .query_async(&mut c)
                        .await?;
                    let Some(id) = id else { break };
                    tracing::warn!(job = %id, %worker, "requeued the job of a worker that stopped");
                    moved += 1;
                }
            }
            if !live {
                let _: () = c.srem(WORKERS, &worker).await?;
            }
        }
        Ok(moved)
    }

    /// The live workers.
    pub async fn workers(&self) -> anyhow::Result<Vec<WorkerInfo>> {
        let mut c = self.conn().await?;
        let ids: Vec<String> = c.smembers(WORKERS).await?;
        let mut infos = Vec::new();
        for id in ids {
            let info: Option<String> = c.get(alive(&id)).await?;
            if let Some(info) = info.and_then(|i| serde_json::from_str(&i).ok()) {
                infos.push(info);
            }
        }
        infos.sort_by(|a: &WorkerInfo, b| a.id.cmp(&b.id));
        Ok(infos)
    }

    /// Jobs waiting and running, per mode.
    pub async fn depths(&self) -> anyhow::Result<[(Mode, usize, usize); 2]> {
        let workers = self.workers().await?;
        let mut c = self.conn().await?;
        let mut depths = [(Mode::Fast, 0, 0), (Mode::Quality, 0, 0)];
        for (mode, waiting, running) in &mut depths {
            *waiting = c.llen(lane(*mode)).await?;
            for w in &workers {
                let n: usize = c.llen(processing(&w.id, *mode)).await?;
                *running += n;
            }
        }
        Ok(depths)
    }

    /// Waiting jobs of `mode` with their positions (0 = next); the first hundred.
    pub async fn waiting(&self, mode: Mode) -> anyhow::Result<Vec<(usize, Job)>> {
        let mut c = self.conn().await?;
        let ids: Vec<String> = c.lrange(lane(mode), 0, 99).await?;
        let mut jobs = Vec::new();
        for (position, id) in ids.iter().enumerate() {
            if let Some(job) = self.job(&mut c, id).await? {
                jobs.push((position, job));
            }
        }
        Ok(jobs)
    }

    /// Reports a finished job to the bot process's statistics.
    pub async fn report(&self, event: &JobEvent) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: ((), ()) = redis::pipe()
            .lpush(key("events"), serde_json::to_string(event)?)
            .ltrim(key("events"), 0, EVENTS_KEPT - 1)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Waits up to a second for the oldest unread statistics event.
    pub async fn next_event(&self) -> anyhow::Result<Option<JobEvent>> {
        let mut c = self.conn().await?;
        let popped: Option<(String, String)> = redis::cmd("BRPOP")
            .arg(key("events"))
            .arg(1.0)
            .query_async(&mut c)
            .await?;
        Ok(popped.and_then(|(_, e)| serde_json::from_str(&e).ok()))
    }

    /// Asks every worker to serve `model` (`/use`).
    pub async fn order_model(&self, model: &str) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c.set(key("model"), model).await?;
        Ok(())
    }

    /// Asks every worker to revalidate its model folder (`/reload`).
    pub async fn order_reload(&self) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c.incr(key("reloads"), 1).await?;
        Ok(())
    }

    /// What operators asked the workers to serve.
    pub async fn model_orders(&self) -> anyhow::Result<ModelOrders> {
        let mut c = self.conn().await?;
        let (model, reloads): (Option<String>, Option<u64>) = redis::pipe()
            .get(key("model"))
            .get(key("reloads"))
            .query_async(&mut c)
            .await?;
        Ok(ModelOrders {
            model,
            reloads: reloads.unwrap_or(0),
        })
    }

    /// A user's saved settings.
    pub async fn settings(&self, user: u64) -> anyhow::Result<Option<Settings>> {
        let mut c = self.conn().await?;
        let json: Option<String> = c.hget(key("settings"), user).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Saves a user's settings.
    pub async fn save_settings(&self, user: u64, settings: &Settings) -> anyhow::Result<()> {
        let mut c = self.conn().await?;
        let _: () = c
            .hset(key("settings"), user, serde_json::to_string(settings)?)
            .await?;
        Ok(())
    }
}
