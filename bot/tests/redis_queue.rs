//! The Redis queue's rules against a private redis-server: admission, cancellation, orphaned jobs
//! and the single delivery.
use std::sync::Arc;
use std::time::Duration;

use fake_bot_api::redis::RedisServer;
use stylegram_bot::i18n::Lang;
use stylegram_bot::queue::{Admission, Cancelled, Job};
use stylegram_bot::redis_queue::{RedisQueue, WorkerInfo};
use stylegram_bot::session::Draft;
use stylegram_engine::{Mode, Strength};

fn job(user: u64, mode: Mode) -> Job {
    Job {
        id: 0,
        submitted_ms: 0,
        user,
        chat: user as i64,
        lang: Lang::En,
        draft: Draft {
            photo: "photo".into(),
            style: None,
            mix: None,
            mode,
            strength: Strength::NEUTRAL,
            preserve_colors: false,
        },
        status_message: None,
    }
}

async fn queue(redis: &RedisServer, me: &str, lease: u64) -> Arc<RedisQueue> {
    Arc::new(
        RedisQueue::connect(&redis.url(), me.into(), 2, Duration::from_secs(lease))
            .await
            .unwrap(),
    )
}

fn info(id: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.into(),
        fast: 1,
        quality: 1,
        provider: "CPU".into(),
    }
}

fn queued_id(admission: Admission) -> u64 {
    match admission {
        Admission::Queued { ticket, .. } => ticket.job.id,
        other => panic!("not queued: {other:?}"),
    }
}

#[tokio::test]
async fn one_active_job_per_user_an_hourly_cap_and_cancellation() {
    let redis = RedisServer::start().await;
    let bot = queue(&redis, "bot", 10).await;
    let worker = queue(&redis, "w", 10).await;
    worker.heartbeat(&info("w")).await.unwrap();

    let first = queued_id(bot.submit(job(1, Mode::Quality)).await.unwrap());
    assert!(matches!(
        bot.submit(job(1, Mode::Fast)).await.unwrap(),
        Admission::Busy
    ));
    let Admission::Queued { position, .. } = bot.submit(job(2, Mode::Quality)).await.unwrap()
    else {
        panic!("user 2 is free")
    };
    assert_eq!(position, 1, "one job ahead");

    // User 1's job runs; cancelling flags it for its worker.
    let (taken, attempt) = worker.take(Mode::Quality).await.unwrap().unwrap();
    assert_eq!((taken.id, attempt), (first, 1));
    assert_eq!(
        bot.depths().await.unwrap()[1],
        (Mode::Quality, 1, 1),
        "one waiting, one running"
    );
    assert!(!worker.is_cancelled(first).await.unwrap());
    assert!(matches!(
        bot.cancel(1).await.unwrap(),
        Cancelled::Running(_)
    ));
    assert!(worker.is_cancelled(first).await.unwrap());
    worker.release(1, first).await.unwrap();
    worker.finish(&taken).await.unwrap();

    // User 2's job is still waiting: cancelling removes it.
    assert!(matches!(
        bot.cancel(2).await.unwrap(),
        Cancelled::Waiting(_)
    ));
    assert!(bot.waiting(Mode::Quality).await.unwrap().is_empty());
    assert_eq!(bot.cancel(2).await.unwrap(), Cancelled::Nothing);

    // Two jobs an hour: user 1 used one; the second is allowed, the third is not.
    let second = queued_id(bot.submit(job(1, Mode::Fast)).await.unwrap());
    bot.release(1, second).await.unwrap();
    assert!(matches!(
        bot.submit(job(1, Mode::Fast)).await.unwrap(),
        Admission::RateLimited
    ));
}

#[tokio::test]
async fn a_dead_workers_job_is_retried_and_delivered_once() {
    let redis = RedisServer::start().await;
    let bot = queue(&redis, "bot", 10).await;
    let dying = queue(&redis, "dying", 1).await;
    let survivor = queue(&redis, "survivor", 10).await;
    dying.heartbeat(&info("dying")).await.unwrap();
    survivor.heartbeat(&info("survivor")).await.unwrap();

    let id = queued_id(bot.submit(job(7, Mode::Fast)).await.unwrap());
    let (taken, _) = dying.take(Mode::Fast).await.unwrap().unwrap();
    assert!(dying.claim_delivery(id).await.unwrap(), "the first claim");
    assert!(
        !survivor.claim_delivery(id).await.unwrap(),
        "refused while the claimant lives"
    );
    assert_eq!(
        survivor.requeue_orphans(false).await.unwrap(),
        0,
        "a live worker keeps its jobs"
    );

    // The dying worker's lease runs out without renewal.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(survivor.requeue_orphans(false).await.unwrap(), 1);
    assert_eq!(survivor.workers().await.unwrap(), vec![info("survivor")]);
    let (retried, attempt) = survivor.take(Mode::Fast).await.unwrap().unwrap();
    assert_eq!((retried.id, attempt), (taken.id, 2));
    assert!(
        survivor.claim_delivery(id).await.unwrap(),
        "the claimant died before sending"
    );
    let finished = stylegram_bot::store::Finished {
        user: 7,
        chat: 7,
        lang: Lang::En,
        draft: retried.draft.clone(),
        caption: "done".into(),
        status_message: None,
        finished_ms: 1,
        jpeg: vec![1, 2, 3],
    };
    survivor.keep_result(id, &finished).await.unwrap();
    assert!(
        !survivor.was_delivered(id).await.unwrap(),
        "kept before it is sent: a retry finds it undelivered"
    );
    survivor.delivered(id).await.unwrap();
    assert!(survivor.was_delivered(id).await.unwrap());
    assert!(
        !dying.claim_delivery(id).await.unwrap(),
        "never twice once sent"
    );
    let kept = bot.result(id).await.unwrap().expect("kept for the buttons");
    assert_eq!((kept.user, kept.jpeg), (7, vec![1, 2, 3]));
}
