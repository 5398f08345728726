//! Redis mode end to end: a bot process and `stylegram-bot worker` processes against a private
//! redis-server and the fake Bot API, with real photos.
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{BotProcess, RedisServer, WAIT, expect, photo, spawn_bot, start_bot, terminate};
use fake_bot_api::{EventKind, FakeBotApi, FakeUser};

async fn api() -> FakeBotApi {
    FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn redis_env(redis: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("STYLEGRAM_REDIS_URL", redis.url()),
        ("STYLEGRAM_WORKER_LEASE_SECONDS", "3".into()),
    ]
}

/// Starts `stylegram-bot worker` named `id` and waits until it holds its lease.
async fn start_worker(
    api: &FakeBotApi,
    redis: &RedisServer,
    id: &str,
    env: &[(&str, String)],
) -> BotProcess {
    let mut all = redis_env(redis);
    all.push(("STYLEGRAM_WORKER_ID", id.to_owned()));
    all.extend(env.iter().cloned());
    let worker = spawn_bot(api, &["worker"], &all);
    let alive = format!("stylegram:alive:{id}");
    let ready = fake_bot_api::eventually(WAIT, || redis.cli(&["EXISTS", &alive]) == "1").await;
    assert!(ready, "worker {id} never took its lease");
    worker
}

/// Sends a photo and waits for the gallery.
async fn send_photo(user: &mut FakeUser, name: &str) -> fake_bot_api::Event {
    let (bytes, w, h) = photo(name);
    user.photo(bytes, w, h);
    expect(user, EventKind::Photo, "").await
}

/// Sends a photo, picks the first painting, chooses quality mode and presses Go; returns once a
/// worker paints it.
async fn start_quality_job(user: &mut FakeUser) {
    let gallery = send_photo(user, "water-lilies.jpg").await;
    user.press(&gallery, "1. ");
    let options = expect(user, EventKind::Text, "").await;
    user.press(&options, "Quality");
    let options = expect(user, EventKind::Edit, "🎨 Quality").await;
    user.press(&options, "Go");
    expect(user, EventKind::Edit, "Painting").await;
}

/// Results (not previews) in the user's chat whose caption contains `mark`.
fn results(user: &FakeUser, mark: &str) -> usize {
    user.history()
        .iter()
        .filter(|e| e.kind == EventKind::Photo && e.text.contains(mark))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_job_loses_nothing_and_the_user_gets_one_result() {
    let redis = RedisServer::start().await;
    let api = api().await;
    let _bot = start_bot(&api, &redis_env(&redis)).await;
    // Quality jobs long enough to be killed in the middle.
    let slow = [("STYLEGRAM_QUALITY_ITERATIONS", "600".to_owned())];
    let mut workers = [
        Some(start_worker(&api, &redis, "w1", &slow).await),
        Some(start_worker(&api, &redis, "w2", &slow).await),
    ];

    let mut user = api.user(5001, "en");
    start_quality_job(&mut user).await;

    let holder = ["w1", "w2"]
        .iter()
        .position(|w| redis.cli(&["LLEN", &format!("stylegram:processing:{w}:quality")]) == "1")
        .expect("one worker holds the running job");
    let kept = redis.cli(&["KEYS", "stylegram:picture:*"]);
    assert_eq!(kept.lines().count(), 1, "{kept}");
    let ttl: i64 = redis.cli(&["TTL", kept.trim()]).parse().unwrap();
    assert!((1..=3600).contains(&ttl), "the kept photo expires: {ttl}");
    assert_eq!(
        results(&user, "🎨"),
        0,
        "killed before it could finish the job"
    );
    let mut killed = workers[holder].take().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();

    let result = expect(&mut user, EventKind::Photo, "🎨 Quality").await;
    assert!(image::load_from_memory(result.bytes.as_deref().unwrap()).is_ok());
    assert_eq!(
        api.state.calls("getfile"),
        1,
        "the photo was downloaded once, by the bot; both workers read it from Redis"
    );
    assert_eq!(
        redis.cli(&["KEYS", "stylegram:picture:*"]),
        "",
        "the photo is forgotten once the result is delivered"
    );
    assert_eq!(
        redis.cli(&["GET", "stylegram:attempts:1"]),
        "2",
        "the other worker ran the job again"
    );
    // Nothing else arrives: one result, the queue empty, the user free for the next job.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(results(&user, "🎨 Quality"), 1, "exactly one result");
    for w in ["w1", "w2"] {
        assert_eq!(
            redis.cli(&["LLEN", &format!("stylegram:processing:{w}:quality")]),
            "0"
        );
    }
    assert_eq!(redis.cli(&["LLEN", "stylegram:lane:quality"]), "0");
    assert_eq!(redis.cli(&["EXISTS", "stylegram:active:5001"]), "0");
    assert_eq!(
        redis.cli(&["SISMEMBER", "stylegram:workers", ["w1", "w2"][holder]]),
        "0",
        "the dead worker is forgotten"
    );

    // Fast jobs go through the survivor too.
    let gallery = send_photo(&mut user, "great-wave.jpg").await;
    user.press(&gallery, "1. ");
    let options = expect(&mut user, EventKind::Text, "").await;
    user.press(&options, "Go");
    expect(&mut user, EventKind::Photo, "⚡").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dialogues_settings_and_results_outlive_a_bot_restart() {
    let redis = RedisServer::start().await;
    let api = api().await;
    let bot = start_bot(&api, &redis_env(&redis)).await;
    let _worker = start_worker(&api, &redis, "w1", &[]).await;

    let mut user = api.user(5002, "en");
    user.text("/lang");
    expect(&mut user, EventKind::Text, "Язык: русский").await;
    let gallery = send_photo(&mut user, "great-wave.jpg").await;
    assert_eq!(
        redis.cli(&["-n", "1", "EXISTS", "5002"]),
        "1",
        "the dialogue is in its own database"
    );

    // A new bot process picks up the conversation where the old one left it.
    drop(bot);
    let bot = start_bot(&api, &redis_env(&redis)).await;
    user.press(&gallery, "1. ");
    let options = expect(&mut user, EventKind::Text, "Режим").await;
    user.press(&options, "Поехали");
    let result = expect(&mut user, EventKind::Photo, "⚡").await;

    // The result's buttons work from the other process as well.
    drop(bot);
    let _bot = start_bot(&api, &redis_env(&redis)).await;
    user.press(&result, "Прислать файлом");
    let file = expect(&mut user, EventKind::Document, "").await;
    assert_eq!(file.bytes, result.bytes, "the file is the full result");

    user.text("/stats");
    let refused = expect(&mut user, EventKind::Text, "").await;
    assert!(!refused.text.contains("workers"), "operators only");
    let mut admin = api.user(1, "en");
    admin.text("/stats");
    let stats = expect(&mut admin, EventKind::Text, "workers: 1").await;
    assert!(stats.text.contains("w1: fast: CPU"), "{}", stats.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stopped_by_sigterm_hands_its_job_back_and_exits_0() {
    let redis = RedisServer::start().await;
    let api = api().await;
    let _bot = start_bot(&api, &redis_env(&redis)).await;
    let slow = [
        ("STYLEGRAM_QUALITY_ITERATIONS", "600".to_owned()),
        ("STYLEGRAM_SHUTDOWN_GRACE_SECONDS", "1".to_owned()),
    ];
    let mut leaving = start_worker(&api, &redis, "leaving", &slow).await;

    let mut user = api.user(5003, "en");
    start_quality_job(&mut user).await;

    // SIGTERM mid-job: the grace period passes, the job goes back to the queue, exit 0.
    let (status, took) = terminate(&mut leaving.child);
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(
        redis.cli(&["LLEN", "stylegram:lane:quality"]),
        "1",
        "back in line"
    );
    assert_eq!(
        redis.cli(&["EXISTS", "stylegram:active:5003"]),
        "1",
        "still the user's job"
    );
    assert_eq!(results(&user, "🎨"), 0);
    assert!(
        !user.history().iter().any(|e| e.text.contains("restarting")),
        "in Redis mode the user is not bothered: another worker takes over"
    );

    // The next worker paints it and the user gets one result.
    let _next = start_worker(&api, &redis, "next", &[]).await;
    expect(&mut user, EventKind::Photo, "🎨 Quality").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(results(&user, "🎨 Quality"), 1, "exactly one result");
    assert_eq!(redis.cli(&["EXISTS", "stylegram:active:5003"]), "0");
}
