//! The `stylegram-bot` binary's start-up contract: a one-line explanation and status 2 without a
//! token, and TELOXIDE_API_URL honoured.
use std::process::Command;

fn bot() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stylegram-bot"));
    cmd.env_remove("TELOXIDE_TOKEN")
        .env_remove("TELOXIDE_API_URL")
        .env("RUST_LOG", "off");
    cmd
}

#[test]
fn without_token_it_explains_in_one_line_and_exits_2() {
    let out = bot().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TELOXIDE_TOKEN is not set"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn api_url_from_the_environment_is_used() {
    // A port nobody listens on: the bot must try exactly this address and fail cleanly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = bot()
        .env("TELOXIDE_TOKEN", "123:TEST")
        .env("TELOXIDE_API_URL", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot reach the Bot API at {url}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn redis_settings_are_checked_before_anything_starts() {
    let cases = [
        (vec!["worker"], vec![], "set STYLEGRAM_REDIS_URL"),
        (
            vec![],
            vec![("STYLEGRAM_REDIS_URL", "http://127.0.0.1:6379")],
            "must start with redis://",
        ),
        (
            vec![],
            vec![("STYLEGRAM_REDIS_URL", "redis://127.0.0.1:6379/1")],
            "must differ from the queue's database",
        ),
    ];
    for (args, env, message) in cases {
        let mut cmd = bot();
        cmd.args(&args).env("TELOXIDE_TOKEN", "123:TEST");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn an_unreachable_redis_is_named_in_the_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let out = bot()
        .arg("worker")
        .env("TELOXIDE_TOKEN", "123:TEST")
        .env("TELOXIDE_API_URL", format!("http://127.0.0.1:{port}/"))
        .env("STYLEGRAM_REDIS_URL", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot use Redis at {url}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

/// A server that answers every request with 200 and the request's first line as a non-JSON body:
/// a misbehaving proxy that echoes the URL, token and all.
fn echoing_server() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let body = format!("<html>no such page: {}</html>", first.trim());
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn the_token_never_shows_in_logs_or_errors() {
    const TOKEN: &str = "987654:SECRET-token_value";
    let closed = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}/")
    };
    for url in [closed, echoing_server()] {
        let out = bot()
            .env("TELOXIDE_TOKEN", TOKEN)
            .env("TELOXIDE_API_URL", &url)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{url}");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(printed.contains("cannot reach the Bot API"), "{printed}");
        assert!(!printed.contains("SECRET"), "the token leaked:\n{printed}");
    }
}
