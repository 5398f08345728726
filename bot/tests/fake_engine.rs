//! The conversation through the engine seam: the bot library in this process, a fake [`Engine`]
//! that records what it is asked, and the fake Bot API. No ONNX Runtime, no libtorch: these tests
//! are about the conversation, and say exactly what the bot handed the engine.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use clap::Parser;
use fake_bot_api::{Event, EventKind, FakeBotApi, FakeUser, Fault};
use stylegram_bot::Config;
use stylegram_engine::{
    Engine, EngineError, Flow, Mode, ModelStatus, Output, PaintingInfo, Picture, Placement,
    Progress, Request, Strength, StyleSource,
};

const WAIT: Duration = Duration::from_secs(30);

/// A `w`×`h` JPEG of one colour.
fn jpeg(w: u32, h: u32, shade: u8) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(w, h, image::Rgb([shade, 90, 200 - shade / 2]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut out)
        .encode_image(&image)
        .unwrap();
    out
}

/// An engine that paints flat pictures and remembers every request.
#[derive(Default)]
struct FakeEngine {
    requests: Mutex<Vec<Request>>,
    checked: Mutex<Vec<Vec<u8>>>,
    /// The next `run` fails like this, once.
    fail_next: Mutex<Option<EngineError>>,
    /// How long each of a quality job's four steps takes.
    quality_step: Mutex<Duration>,
}

impl Engine for FakeEngine {
    fn paintings(&self) -> Vec<PaintingInfo> {
        ["first", "second"]
            .iter()
            .map(|id| PaintingInfo {
                id: (*id).into(),
                title_en: format!("The {id} painting"),
                title_ru: format!("Картина {id}"),
                artist: "Nobody".into(),
                year: 1900,
            })
            .collect()
    }

    fn gallery(&self, ids: &[String]) -> Result<Picture, EngineError> {
        Ok(Picture {
            jpeg: jpeg(64 * ids.len() as u32, 64, 10),
            width: 64 * ids.len() as u32,
            height: 64,
        })
    }

    fn check_image(&self, bytes: &[u8]) -> Result<(u32, u32), EngineError> {
        self.checked.lock().unwrap().push(bytes.to_vec());
        let image = image::load_from_memory(bytes)
            .map_err(|e| EngineError::BadImage(format!("cannot decode: {e}")))?;
        Ok((image.width(), image.height()))
    }

    fn run(
        &self,
        request: &Request,
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<Output, EngineError> {
        self.requests.lock().unwrap().push(request.clone());
        if let Some(e) = self.fail_next.lock().unwrap().take() {
            return Err(e);
        }
        if request.mode == Mode::Quality {
            let pause = *self.quality_step.lock().unwrap();
            for step in 1..=4 {
                std::thread::sleep(pause);
                let flow = progress(Progress {
                    fraction: step as f32 / 4.0,
                    eta: Duration::from_millis(10 * (4 - step)),
                    preview: None,
                });
                if flow == Flow::Stop {
                    return Err(EngineError::Cancelled);
                }
            }
        }
        Ok(Output {
            picture: Picture {
                jpeg: jpeg(40, 30, 20 * request.strength.level()),
                width: 40,
                height: 30,
            },
            seconds: 0.01,
            stages: vec![("network".into(), 0.01)],
        })
    }

    fn models(&self) -> Vec<ModelStatus> {
        vec![ModelStatus {
            name: "fake".into(),
            version: Some("1".into()),
            problem: None,
            active: true,
        }]
    }

    fn use_model(&self, name: &str) -> Result<(), EngineError> {
        Err(EngineError::BadRequest(format!("no model '{name}'")))
    }

    fn reload(&self) -> Result<Vec<String>, EngineError> {
        Ok(Vec::new())
    }

    fn placement(&self) -> Placement {
        Placement {
            fast: "fake".into(),
            model: "fake-model".into(),
            quality: "fake".into(),
            cpu: "none".into(),
        }
    }
}

/// A fresh, empty spool folder for one bot (or for a bot and its successor).
fn new_spool() -> PathBuf {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let n = MADE.fetch_add(1, Ordering::SeqCst);
    let spool =
        std::env::temp_dir().join(format!("stylegram-fake-engine-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    spool
}

/// The bot's configuration against `api`, spooling in `spool`, with `extra` flags; and the
/// address of its /metrics.
fn config(api: &FakeBotApi, spool: &Path, extra: &[&str]) -> (Config, String) {
    /// The bot's command line, as `stylegram-bot` parses it.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let spool = spool.to_string_lossy();
    let mut args = vec![
        "stylegram-bot",
        "--token",
        "123:TEST",
        "--api-url",
        &api.url,
        "--http-addr",
        &http,
        "--spool",
        &spool,
    ];
    args.extend_from_slice(extra);
    let config = Cli::try_parse_from(args).unwrap().config;
    (config, format!("http://{http}/metrics"))
}

/// A bot process stand-in: the bot library on a runtime of its own, in a thread. Stopping it
/// drains like SIGTERM does; joining it drops its runtime, ending its tasks as a process exit
/// would.
struct RunningBot {
    stop: CancellationToken,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl RunningBot {
    /// Starts the bot with `config` and `engine`; returns once it polls `api`.
    async fn start(api: &FakeBotApi, config: Config, engine: Arc<FakeEngine>) -> RunningBot {
        let polls = api.state.calls("getupdates");
        let stop = CancellationToken::new();
        let token = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new()?;
            let engine: Arc<dyn Engine> = engine;
            runtime.block_on(stylegram_bot::run_until(config, move |_| Ok(engine), token))
        });
        let state = api.state.clone();
        assert!(fake_bot_api::eventually(WAIT, move || state.calls("getupdates") > polls).await);
        RunningBot { stop, thread }
    }

    /// Stops it gracefully and waits until it is gone; what it returned.
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        tokio::task::spawn_blocking(move || self.thread.join().expect("the bot thread"))
            .await
            .unwrap()
    }
}

/// The fake Bot API and the bot library serving it with `engine`, for the whole test.
async fn start(engine: Arc<FakeEngine>) -> FakeBotApi {
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let (config, _) = config(&api, &new_spool(), &[]);
    let bot = RunningBot::start(&api, config, engine).await;
    std::mem::forget(bot);
    api
}

async fn expect(user: &mut FakeUser, kind: EventKind, needle: &str) -> Event {
    user.wait(WAIT, |e| e.kind == kind && e.text.contains(needle))
        .await
        .unwrap_or_else(|| panic!("no {kind:?} with '{needle}': {:#?}", user.history()))
}

/// Sends `photo`, picks the first painting, and returns the options panel (whose first line,
/// in the user's language, is `panel`).
async fn to_options(user: &mut FakeUser, photo: Vec<u8>, panel: &str) -> Event {
    user.photo(photo, 48, 32);
    let gallery = expect(user, EventKind::Photo, "").await;
    user.press(&gallery, "1. ");
    expect(user, EventKind::Text, panel).await
}

const PANEL_EN: &str = "Settings for this picture";

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_gets_the_photo_the_user_sent_and_the_chosen_options() {
    let engine = Arc::new(FakeEngine::default());
    let api = start(engine.clone()).await;
    let mut user = api.user(7001, "en");
    let photo = jpeg(48, 32, 200);
    let options = to_options(&mut user, photo.clone(), PANEL_EN).await;
    user.press(&options, "Go");
    let result = expect(&mut user, EventKind::Photo, "⚡").await;
    assert!(result.text.contains("4/5"), "{}", result.text);
    {
        let requests = engine.requests.lock().unwrap();
        let [request] = requests.as_slice() else {
            panic!("one job: {requests:?}");
        };
        assert_eq!(
            request.content.as_slice(),
            photo.as_slice(),
            "the bytes the user sent"
        );
        assert_eq!(request.mode, Mode::Fast);
        assert_eq!(request.strength, Strength::DEFAULT);
        assert!(!request.preserve_colors);
        assert_eq!(request.styles.len(), 1);
        assert_eq!(
            request.styles[0].source,
            StyleSource::Painting("first".into())
        );
    }
    assert_eq!(*engine.checked.lock().unwrap(), vec![photo.clone()]);

    // "Stronger" asks for the next level, in the same mode, with the same photo.
    user.press(&result, "Stronger");
    expect(&mut user, EventKind::Photo, "5/5").await;
    let requests = engine.requests.lock().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].strength, Strength::MAX);
    assert_eq!(requests[1].content, requests[0].content);
}

#[tokio::test(flavor = "multi_thread")]
async fn quality_mode_and_engine_answers_reach_the_user_in_their_words() {
    let engine = Arc::new(FakeEngine::default());
    let api = start(engine.clone()).await;
    let mut user = api.user(7002, "en");

    // A file that is not a picture: refused, and the engine is never asked to paint it.
    user.photo(b"not a picture at all".to_vec(), 10, 10);
    expect(
        &mut user,
        EventKind::Text,
        "can't read this file as a picture",
    )
    .await;
    assert!(engine.requests.lock().unwrap().is_empty());

    // Quality mode with the weakest strength: the engine is asked for exactly that.
    let options = to_options(&mut user, jpeg(48, 32, 100), PANEL_EN).await;
    user.press(&options, "Quality");
    let options = expect(&mut user, EventKind::Edit, "🎨 Quality").await;
    user.press(&options, "1");
    let options = expect(&mut user, EventKind::Edit, "1/5").await;
    user.press(&options, "Go");
    expect(&mut user, EventKind::Photo, "🎨").await;
    {
        let requests = engine.requests.lock().unwrap();
        let last = requests.last().unwrap();
        assert_eq!((last.mode, last.strength), (Mode::Quality, Strength::MIN));
    }

    // The engine fails: the user is told once, in their language.
    *engine.fail_next.lock().unwrap() = Some(EngineError::Failed("out of memory".into()));
    let mut russian = api.user(7003, "ru");
    let options = to_options(&mut russian, jpeg(48, 32, 30), "Параметры").await;
    russian.press(&options, "Поехали");
    expect(&mut russian, EventKind::Text, "что-то пошло не так").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_502_on_get_file_and_a_429_on_the_result_lose_nothing() {
    let engine = Arc::new(FakeEngine::default());
    let api = start(engine.clone()).await;
    let mut user = api.user(7004, "en");

    // The photo's getFile fails once with a 502: retried, and the photo is accepted.
    api.state
        .inject("getFile", Fault::ServerError { status: 502 }, 1);
    let options = to_options(&mut user, jpeg(48, 32, 60), PANEL_EN).await;
    assert_eq!(api.state.calls("getfile"), 2);

    // The result's sendPhoto answers 429 once: the bot waits what it was told, then delivers.
    api.state
        .inject("sendPhoto", Fault::TooManyRequests { retry_after: 1 }, 1);
    let sends = api.state.calls("sendphoto");
    let asked = std::time::Instant::now();
    user.press(&options, "Go");
    expect(&mut user, EventKind::Photo, "⚡").await;
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        api.state.calls("sendphoto"),
        sends + 2,
        "one refused, one delivered"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let results = user
        .history()
        .iter()
        .filter(|e| e.kind == EventKind::Photo && e.text.contains('⚡'))
        .count();
    assert_eq!(results, 1, "exactly one result");
    assert_eq!(engine.requests.lock().unwrap().len(), 1, "painted once");
}

/// The results (⚡ photos) in `user`'s chat so far.
fn results(user: &FakeUser) -> usize {
    user.history()
        .iter()
        .filter(|e| e.kind == EventKind::Photo && e.text.contains('⚡'))
        .count()
}

/// The value of the metric line starting with `name` at `metrics`.
async fn metric(metrics: &str, name: &str) -> f64 {
    let text = reqwest::get(metrics).await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gallery_answered_429_then_500_still_arrives() {
    let api = start(Arc::new(FakeEngine::default())).await;
    let mut user = api.user(7005, "en");
    api.state
        .inject("sendPhoto", Fault::TooManyRequests { retry_after: 1 }, 1);
    api.state
        .inject("sendPhoto", Fault::ServerError { status: 500 }, 1);
    user.photo(jpeg(48, 32, 70), 48, 32);
    let gallery = expect(&mut user, EventKind::Photo, "Choose a style").await;
    assert_eq!(
        api.state.calls("sendphoto"),
        3,
        "two refusals, then the gallery"
    );
    user.press(&gallery, "1. ");
    expect(&mut user, EventKind::Text, PANEL_EN).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_that_blocked_the_bot_loses_its_job_and_frees_its_slot() {
    let engine = Arc::new(FakeEngine::default());
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let (config, metrics) = config(&api, &new_spool(), &[]);
    let _bot = RunningBot::start(&api, config, engine.clone()).await;
    let mut user = api.user(7006, "en");
    let options = to_options(&mut user, jpeg(48, 32, 80), PANEL_EN).await;

    // The user blocks the bot as they press Go: the first call for their chat answers 403, the
    // chat counts as gone, and their job is dropped unpainted, without retries.
    api.state.block(user.id, true);
    let calls_before = api.state.faults_served();
    user.press(&options, "Go");
    let deadline = tokio::time::Instant::now() + WAIT;
    let gone = "stylegram_jobs_total{mode=\"fast\",outcome=\"chat_gone\"}";
    while !reqwest::get(&metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains(gone)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&metrics, gone).await, 1.0);
    assert_eq!(metric(&metrics, "stylegram_chats_gone_total").await, 1.0);
    assert!(engine.requests.lock().unwrap().is_empty(), "not painted");
    let refusals = api.state.faults_served().get("403").copied().unwrap_or(0);
    assert_eq!(
        refusals,
        calls_before.get("403").copied().unwrap_or(0) + 1,
        "one 403, no retry"
    );

    // They unblock it and write again: reachable, and their slot is free (no "already in
    // progress").
    api.state.block(user.id, false);
    let options = to_options(&mut user, jpeg(48, 32, 90), PANEL_EN).await;
    user.press(&options, "Go");
    expect(&mut user, EventKind::Photo, "⚡").await;
    assert_eq!(engine.requests.lock().unwrap().len(), 1);
    // Where the delivered job's time went: the bot's download and upload around the engine's own
    // stages.
    let deadline = tokio::time::Instant::now() + WAIT;
    let text = loop {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        if text.contains("stage=\"upload\"") || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for stage in ["download", "network", "upload"] {
        let line =
            format!("stylegram_stage_seconds{{mode=\"fast\",stage=\"{stage}\",quantile=\"0.5\"}}");
        assert!(text.contains(&line), "no {line} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_a_stopped_bot_could_not_send_is_delivered_once_by_the_next() {
    let engine = Arc::new(FakeEngine::default());
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let spool = new_spool();
    let quick_stop = ["--shutdown-grace-seconds", "1"];
    let (config_a, _) = config(&api, &spool, &quick_stop);
    let first = RunningBot::start(&api, config_a, engine.clone()).await;
    let mut user = api.user(7007, "en");
    let options = to_options(&mut user, jpeg(48, 32, 110), PANEL_EN).await;

    // Telegram fails every sendPhoto: the painted result waits in the spool.
    api.state
        .inject_rate("sendPhoto", Fault::ServerError { status: 503 }, 1.0);
    let sends = api.state.calls("sendphoto");
    user.press(&options, "Go");
    let state = api.state.clone();
    assert!(fake_bot_api::eventually(WAIT, move || state.calls("sendphoto") > sends + 1).await);
    let spooled = || {
        std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    };
    assert_eq!(spooled(), 1, "the result is on disk while it is retried");

    // The bot stops (its deliveries end with it); Telegram recovers; the next bot delivers.
    first.stop().await.unwrap();
    assert_eq!(spooled(), 1, "still kept after the stop");
    api.state.clear_faults();
    let (config_b, _) = config(&api, &spool, &quick_stop);
    let _second = RunningBot::start(&api, config_b, engine.clone()).await;
    let result = expect(&mut user, EventKind::Photo, "⚡").await;
    assert!(result.button("Stronger").is_some(), "with its buttons");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(results(&user), 1, "exactly one result");
    assert_eq!(spooled(), 0, "nothing kept once delivered");
    assert_eq!(engine.requests.lock().unwrap().len(), 1, "painted once");
    let jpegs = std::fs::read_dir(&spool).unwrap().count();
    assert_eq!(jpegs, 0, "no picture left in the spool");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_tells_the_users_whose_quality_jobs_were_stopped() {
    let engine = Arc::new(FakeEngine::default());
    *engine.quality_step.lock().unwrap() = Duration::from_secs(2);
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let flags = ["--shutdown-grace-seconds", "1", "--quality-workers", "1"];
    let (config, _) = config(&api, &new_spool(), &flags);
    let bot = RunningBot::start(&api, config, engine.clone()).await;

    // One quality job running (8 s), one waiting behind it.
    let mut users = Vec::new();
    for (id, lang, panel, quality, go) in [
        (7008, "en", PANEL_EN, "Quality", "Go"),
        (7009, "ru", "Параметры", "Качество", "Поехали"),
    ] {
        let mut user = api.user(id, lang);
        let options = to_options(&mut user, jpeg(48, 32, 120), panel).await;
        user.press(&options, quality);
        let options = expect(&mut user, EventKind::Edit, "🎨").await;
        user.press(&options, go);
        expect(&mut user, EventKind::Text, "⏳").await;
        users.push(user);
    }
    let running = engine.clone();
    assert!(
        fake_bot_api::eventually(WAIT, move || running.requests.lock().unwrap().len() == 1).await
    );

    let asked = std::time::Instant::now();
    bot.stop().await.expect("a clean stop");
    assert!(
        asked.elapsed() < Duration::from_secs(6),
        "{:?}",
        asked.elapsed()
    );
    expect(&mut users[0], EventKind::Edit, "restarting").await;
    expect(&mut users[1], EventKind::Edit, "перезапускается").await;
    assert_eq!(
        engine.requests.lock().unwrap().len(),
        1,
        "the waiting job never started"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_deadline_the_user_is_told_once_and_nothing_is_kept() {
    let engine = Arc::new(FakeEngine::default());
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let spool = new_spool();
    let (config, metrics) = config(&api, &spool, &["--delivery-deadline-seconds", "3"]);
    let _bot = RunningBot::start(&api, config, engine).await;
    let mut user = api.user(7010, "ru");
    let options = to_options(&mut user, jpeg(48, 32, 130), "Параметры").await;

    // Every sendPhoto is answered 429 from now on: the result is retried for 3 s, then given up.
    // (A 5xx would do the same, but teloxide holds each 5xx answer 10 s before reporting it.)
    api.state
        .inject_rate("sendPhoto", Fault::TooManyRequests { retry_after: 1 }, 1.0);
    user.press(&options, "Поехали");
    expect(&mut user, EventKind::Text, "не принял").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let told = user
        .history()
        .iter()
        .filter(|e| e.text.contains("не принял"))
        .count();
    assert_eq!(told, 1, "told once");
    assert_eq!(results(&user), 0);
    assert!(metric(&metrics, "stylegram_api_gave_up_total").await >= 1.0);
    let retried = metric(&metrics, "stylegram_api_retries_total{fault=\"429\"}").await;
    assert!(retried >= 1.0, "{retried}");
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "the picture is not kept once given up"
    );
}
