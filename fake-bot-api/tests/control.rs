//! Faults switched on over HTTP, as the demo page and scripts do: each kind answers as Telegram
//! would, and the server counts what it served.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fake_bot_api::FakeBotApi;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn faults_and_blocked_chats_set_over_http_answer_like_telegram() {
    let api = FakeBotApi::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{}control/{path}", api.url);
    let method = |name: &str| format!("{}bot123:TEST/{name}", api.url);
    let add = |rule: Value| http.post(control("faults")).json(&rule).send();

    // 429 once, with Telegram's retry_after; then the call is served.
    add(json!({"method": "sendMessage", "fault": {"kind": "too_many_requests", "retry_after": 2}, "times": 1}))
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let send = || {
        http.post(method("sendMessage"))
            .json(&json!({"chat_id": 5, "text": "hello"}))
            .send()
    };
    let refused = send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["parameters"]["retry_after"], 2);
    assert_eq!(send().await.unwrap().status(), 200);

    // A blocked chat answers 403 until unblocked.
    http.post(control("block"))
        .json(&json!({"chat_id": 5}))
        .send()
        .await
        .unwrap();
    let blocked = send().await.unwrap();
    assert_eq!(blocked.status(), 403);
    let body: Value = blocked.json().await.unwrap();
    assert_eq!(
        body["description"],
        "Forbidden: bot was blocked by the user"
    );
    http.post(control("block"))
        .json(&json!({"chat_id": 5, "blocked": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(send().await.unwrap().status(), 200);

    // A late answer, then a dropped connection.
    add(json!({"method": "sendMessage", "fault": {"kind": "delay", "ms": 400}, "times": 1}))
        .await
        .unwrap();
    let asked = Instant::now();
    assert_eq!(send().await.unwrap().status(), 200);
    assert!(asked.elapsed() >= Duration::from_millis(400));
    add(json!({"method": "sendMessage", "fault": {"kind": "drop"}, "times": 1}))
        .await
        .unwrap();
    assert!(send().await.is_err(), "no answer at all");
    assert_eq!(send().await.unwrap().status(), 200, "the server lives on");

    let served: Value = http
        .get(control("faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served,
        json!({"429": 1, "403": 1, "delay": 1, "drop": 1}),
        "what was served"
    );
    // Every fault off.
    add(json!({"method": "*", "fault": {"kind": "server_error", "status": 502}, "rate": 1.0}))
        .await
        .unwrap();
    assert_eq!(send().await.unwrap().status(), 502);
    http.delete(control("faults")).send().await.unwrap();
    assert_eq!(send().await.unwrap().status(), 200);
}
