//! End to end through the fake Bot API: the real bot process, long polling, real photos.
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{expect, photo, photo_to_options, start_bot, terminate};
use fake_bot_api::{EventKind, FakeBotApi};

async fn api() -> FakeBotApi {
    FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fast_mode_from_photo_to_result_file_and_a_stronger_version() {
    let api = api().await;
    let _bot = start_bot(&api, &[]).await;
    let mut user = api.user(1001, "en");
    user.text("/start");
    expect(&mut user, EventKind::Text, "Send me a photo").await;

    let options = photo_to_options(&mut user, "great-wave.jpg").await;
    assert!(options.text.contains("Starry Night"), "{}", options.text);
    user.press(&options, "Go");
    let result = expect(&mut user, EventKind::Photo, "⚡").await;
    assert!(
        result.text.contains("4/5"),
        "default strength: {}",
        result.text
    );
    let picture = image::load_from_memory(result.bytes.as_deref().unwrap()).unwrap();
    let (_, w, h) = photo("great-wave.jpg");
    assert_eq!(
        picture.width().max(picture.height()),
        128,
        "STYLEGRAM_MAX_SIDE"
    );
    assert_eq!(
        (picture.width() > picture.height()),
        (w > h),
        "orientation kept"
    );

    user.press(&result, "Send as file");
    let file = expect(&mut user, EventKind::Document, "").await;
    assert_eq!(file.bytes, result.bytes, "the file is the full result");
    assert!(file.file_name.as_deref().unwrap().ends_with(".jpg"));

    user.press(&result, "Stronger");
    let stronger = expect(&mut user, EventKind::Photo, "5/5").await;
    assert_ne!(stronger.bytes, result.bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn own_style_in_quality_mode_shows_progress_and_previews() {
    let api = api().await;
    let _bot = start_bot(&api, &[]).await;
    let mut user = api.user(1002, "en");
    let (bytes, w, h) = photo("church-at-auvers.jpg");
    user.photo(bytes, w, h);
    let gallery = expect(&mut user, EventKind::Photo, "Choose a style").await;
    user.press(&gallery, "My own style");
    expect(&mut user, EventKind::Text, "Send the picture").await;
    let style = std::fs::read(common::picture("starry-night-rhone.jpg")).unwrap();
    user.document(style, "starry-night-rhone.jpg", "image/jpeg");
    let options = expect(&mut user, EventKind::Text, "your picture").await;
    user.press(&options, "Quality");
    let options = expect(&mut user, EventKind::Edit, "🎨 Quality").await;
    user.press(&options, "Go");
    expect(&mut user, EventKind::Edit, "%").await;
    let result = expect(&mut user, EventKind::Photo, "🎨 Quality").await;
    let preview = user
        .history()
        .into_iter()
        .find(|e| e.kind == EventKind::Photo && e.text.contains("Preview"))
        .expect("a preview came before the result");
    assert!(preview.seq < result.seq);
    assert!(result.text.contains("your picture"));
    assert!(image::load_from_memory(result.bytes.as_deref().unwrap()).is_ok());
    assert!(
        result.button("Quality version").is_none(),
        "already quality"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quality_jobs_wait_in_line_and_cancel_while_waiting_or_running() {
    let api = api().await;
    // Long quality jobs, one worker: the second user waits behind the first.
    let _bot = start_bot(&api, &[("STYLEGRAM_QUALITY_ITERATIONS", "100000".into())]).await;
    let mut first = api.user(2001, "en");
    let mut second = api.user(2002, "en");
    for user in [&mut first, &mut second] {
        let options = photo_to_options(user, "water-lilies.jpg").await;
        user.press(&options, "Quality");
        let options = expect(user, EventKind::Edit, "🎨 Quality").await;
        user.press(&options, "Go");
    }
    expect(&mut first, EventKind::Edit, "Painting").await;
    expect(&mut second, EventKind::Text, "1 ahead of you").await;

    // The answer to /cancel and the status message's edit come in either order (the answer is
    // paced, one message a second per chat; edits are not).
    let answered = |user: &fake_bot_api::FakeUser| {
        let history = user.history();
        let has = |kind| {
            history
                .iter()
                .any(|e| e.kind == kind && e.text.contains("Cancelled"))
        };
        has(EventKind::Text) && has(EventKind::Edit)
    };
    first.text("/cancel");
    assert!(fake_bot_api::eventually(common::WAIT, || answered(&first)).await);
    // The line moves: the second job starts.
    expect(&mut second, EventKind::Edit, "Painting").await;
    second.text("/cancel");
    // The worker stops the optimiser and marks the status message.
    assert!(fake_bot_api::eventually(common::WAIT, || answered(&second)).await);
    expect(&mut second, EventKind::Edit, "Cancelled").await;
    second.text("/cancel");
    expect(&mut second, EventKind::Text, "Nothing to cancel").await;
    let results = first
        .history()
        .into_iter()
        .chain(second.history())
        .filter(|e| e.kind == EventKind::Photo && e.text.contains("🎨"))
        .count();
    assert_eq!(results, 0, "cancelled jobs send no result");
}

#[tokio::test(flavor = "multi_thread")]
async fn language_follows_the_client_then_lang_and_settings_are_remembered() {
    let api = api().await;
    let _bot = start_bot(&api, &[]).await;
    let mut user = api.user(3001, "ru");
    user.text("/start");
    expect(&mut user, EventKind::Text, "Пришлите фото").await;
    user.text("/lang");
    expect(&mut user, EventKind::Text, "Language: English").await;
    user.text("/help");
    expect(&mut user, EventKind::Text, "/cancel").await;

    user.text("/settings");
    let panel = expect(&mut user, EventKind::Text, "Your defaults").await;
    user.press(&panel, "Quality");
    let panel = expect(&mut user, EventKind::Edit, "Mode: 🎨 Quality").await;
    user.press(&panel, "2");
    expect(&mut user, EventKind::Edit, "Strength: 2/5").await;
    let options = photo_to_options(&mut user, "great-wave.jpg").await;
    assert!(
        options.text.contains("Mode: 🎨 Quality") && options.text.contains("Strength: 2/5"),
        "new pictures start from the saved defaults: {}",
        options.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_commands_answer_admins_only_and_health_and_metrics_are_served() {
    let api = api().await;
    let bot = start_bot(&api, &[]).await;
    let mut stranger = api.user(4001, "en");
    for command in ["/models", "/stats", "/use adain-v1", "/reload"] {
        stranger.text(command);
        expect(&mut stranger, EventKind::Text, "operators only").await;
    }
    let mut admin = api.user(1, "en");
    admin.text("/models");
    expect(&mut admin, EventKind::Text, "✅ adain-v1").await;
    admin.text("/use no-such-model");
    expect(&mut admin, EventKind::Text, "Kept adain-v1").await;
    admin.text("/use adain-v1");
    expect(&mut admin, EventKind::Text, "Now serving adain-v1").await;
    admin.text("/reload");
    expect(&mut admin, EventKind::Text, "adain-v1").await;

    let options = photo_to_options(&mut admin, "great-wave.jpg").await;
    admin.press(&options, "Go");
    expect(&mut admin, EventKind::Photo, "⚡").await;
    admin.text("/stats");
    let stats = expect(&mut admin, EventKind::Text, "jobs today").await;
    assert!(stats.text.contains("fast: 0 waiting"), "{}", stats.text);
    assert!(stats.text.contains("provider: fast: CPU"), "{}", stats.text);

    let health = reqwest::get(format!("{}/healthz", bot.http)).await.unwrap();
    assert_eq!(health.status(), 200);
    // The job is counted just after its photo is sent: poll briefly.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = reqwest::get(format!("{}/metrics", bot.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("stylegram_jobs_total{mode=\"fast\",outcome=\"done\"} 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains("stylegram_jobs_total{mode=\"fast\",outcome=\"done\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("stylegram_queue_jobs{mode=\"quality\",state=\"waiting\"} 0"));
    // Where it paints: the CPU provider (no GPU here), the bundle serving, quality on the CPU.
    let info = metrics
        .lines()
        .find(|l| l.starts_with("stylegram_engine_info{"))
        .unwrap_or_else(|| panic!("no engine info in {metrics}"));
    assert!(
        info.starts_with("stylegram_engine_info{fast_provider=\"CPU\",model=\"adain-v1")
            && info.ends_with(",quality_device=\"CPU\"} 1"),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_files_get_a_friendly_message_and_lose_nothing() {
    let api = api().await;
    let _bot = start_bot(&api, &[("STYLEGRAM_MAX_FILE_MB", "1".into())]).await;
    let mut user = api.user(5001, "en");
    user.document(b"hello".to_vec(), "notes.txt", "text/plain");
    expect(&mut user, EventKind::Text, "can't read this file").await;
    user.photo(b"\x89PNG but not really".to_vec(), 100, 100);
    expect(&mut user, EventKind::Text, "can't read this file").await;
    user.document(vec![0xFF; 2 << 20], "huge.jpg", "image/jpeg");
    expect(&mut user, EventKind::Text, "too large").await;
    user.text("hello");
    expect(&mut user, EventKind::Text, "Send me a photo first").await;
    // After all that, a good photo still works.
    let options = photo_to_options(&mut user, "church-at-auvers.jpg").await;
    user.press(&options, "Go");
    expect(&mut user, EventKind::Photo, "⚡").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_mode_receives_updates_with_the_secret_token() {
    let api = api().await;
    let port = common::free_port();
    let _bot = start_bot(
        &api,
        &[
            (
                "STYLEGRAM_WEBHOOK_URL",
                format!("http://127.0.0.1:{port}/hook"),
            ),
            ("STYLEGRAM_WEBHOOK_ADDR", format!("127.0.0.1:{port}")),
            ("STYLEGRAM_WEBHOOK_SECRET", "s3cret-token".into()),
        ],
    )
    .await;
    let hook = api.state.webhook().expect("the bot registered a webhook");
    assert_eq!(hook.url, format!("http://127.0.0.1:{port}/hook"));
    assert_eq!(hook.secret.as_deref(), Some("s3cret-token"));
    let mut user = api.user(6001, "en");
    user.text("/start");
    expect(&mut user, EventKind::Text, "Send me a photo").await;
    assert_eq!(
        api.state.calls("getupdates"),
        0,
        "no polling in webhook mode"
    );
    // A request without the secret is refused by the bot's webhook server.
    let forged = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/hook"))
        .json(&serde_json::json!({"update_id": 999, "message": {}}))
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_client_error(), "{}", forged.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_taking_work_tells_the_stopped_user_and_exits_0() {
    let api = api().await;
    let mut bot = start_bot(
        &api,
        &[
            ("STYLEGRAM_QUALITY_ITERATIONS", "600".to_owned()),
            ("STYLEGRAM_SHUTDOWN_GRACE_SECONDS", "1".to_owned()),
        ],
    )
    .await;
    let mut user = api.user(6001, "en");
    let options = photo_to_options(&mut user, "water-lilies.jpg").await;
    user.press(&options, "Quality");
    let options = expect(&mut user, EventKind::Edit, "🎨 Quality").await;
    user.press(&options, "Go");
    expect(&mut user, EventKind::Edit, "Painting").await;

    let (status, took) = terminate(&mut bot.child);
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    expect(&mut user, EventKind::Edit, "restarting").await;
    let polls = api.state.calls("getupdates");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        api.state.calls("getupdates"),
        polls,
        "no more updates taken"
    );
}
