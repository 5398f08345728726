//! The trainer's MLflow client against a real `mlflow server` (PyPI mlflow, installed by
//! `make bootstrap-test`), started here on 127.0.0.1 with a SQLite store and proxied artifacts.
mod common;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills the server when the test ends, however it ends. `mlflow server` starts uvicorn and its
/// job runners as children, which outlive a killed parent, so the server runs in a process group
/// of its own and the whole group is killed.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let group = self.0.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals that process group; it touches no memory.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The processes of process group `group` that are still running (zombies left out: they wait
/// only for whoever adopted them to reap them).
fn running_in_group(group: u32) -> Vec<u32> {
    let stat_fields = |pid: &str| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let after_comm = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .collect::<Vec<_>>();
        Some((
            after_comm.first()?.to_string(),
            after_comm.get(2)?.parse::<u32>().ok()?,
        ))
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(
            |pid| matches!(stat_fields(pid), Some((state, pgrp)) if pgrp == group && state != "Z"),
        )
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

fn mlflow_binary() -> String {
    std::env::var("STYLEGRAM_MLFLOW").unwrap_or_else(|_| {
        let home = std::env::var("STYLEGRAM_HOME").unwrap_or_else(|_| {
            format!(
                "{}/.cache/stylegram",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        format!("{home}/mlflow-venv/bin/mlflow")
    })
}

fn start_server(dir: &Path) -> (Server, String) {
    let binary = mlflow_binary();
    assert!(
        Path::new(&binary).is_file(),
        "{binary} not found: run `make bootstrap-test` (or scripts/bootstrap.sh --test-services)"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&binary)
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("artifacts"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let server = Server(child);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let start = Instant::now();
    while client
        .get(format!("{url}/health"))
        .send()
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "mlflow server did not come up"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    (server, url)
}

fn get(url: &str) -> Value {
    reqwest::blocking::get(url).unwrap().json().unwrap()
}

#[test]
fn training_reports_params_metrics_and_pictures_to_mlflow() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start_server(dir.path());
    let (content, style) = (dir.path().join("content"), dir.path().join("style"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::create_dir_all(&style).unwrap();
    std::fs::copy(
        common::picture("great-wave.jpg"),
        content.join("great-wave.jpg"),
    )
    .unwrap();
    std::fs::copy(
        common::picture("starry-night-rhone.jpg"),
        style.join("starry-night-rhone.jpg"),
    )
    .unwrap();

    let run_dir = dir.path().join("tracked-run");
    let o = Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args([
            "train", "--device", "cpu", "--batch", "1", "--resize", "64", "--crop", "64",
        ])
        .args([
            "--iterations",
            "3",
            "--log-every",
            "1",
            "--checkpoint-every",
            "2",
        ])
        .args(["--mlflow-experiment", "stylegram-test"])
        .arg("--content")
        .arg(&content)
        .arg("--style")
        .arg(&style)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--vgg")
        .arg(common::vgg_path())
        .env("MLFLOW_TRACKING_URI", &url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");

    let experiment = get(&format!(
        "{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=stylegram-test"
    ));
    let experiment_id = experiment["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let runs: Value = reqwest::blocking::Client::new()
        .post(format!("{url}/api/2.0/mlflow/runs/search"))
        .json(&serde_json::json!({"experiment_ids": [experiment_id]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let run = &runs["runs"][0];
    assert_eq!(run["info"]["run_name"], "tracked-run");
    assert_eq!(run["info"]["status"], "FINISHED");
    let run_id = run["info"]["run_id"].as_str().unwrap();
    let params = run["data"]["params"].as_array().unwrap();
    let param = |k: &str| {
        params
            .iter()
            .find(|p| p["key"] == k)
            .map(|p| p["value"].as_str().unwrap().to_owned())
    };
    assert_eq!(param("batch").as_deref(), Some("1"));
    assert_eq!(param("style_weight").as_deref(), Some("10"));

    let history = get(&format!(
        "{url}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss"
    ));
    let mut steps: Vec<i64> = history["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    steps.sort();
    assert_eq!(steps, [1, 2, 3]);
    // The logged values are the ones in metrics.jsonl.
    let local: Vec<f64> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["total"]
                .as_f64()
                .unwrap()
        })
        .collect();
    for m in history["metrics"].as_array().unwrap() {
        let step = m["step"].as_i64().unwrap() as usize;
        assert!((m["value"].as_f64().unwrap() - local[step - 1]).abs() <= 1e-6 * local[step - 1]);
    }

    let artifacts = get(&format!(
        "{url}/api/2.0/mlflow/artifacts/list?run_id={run_id}"
    ));
    let names: Vec<&str> = artifacts["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"loss.png") && names.contains(&"samples.jpg"),
        "{names:?}"
    );

    // Stopping the server stops all of it: no uvicorn or job runner outlives the test.
    let group = server.0.id();
    assert!(!running_in_group(group).is_empty());
    drop(server);
    let stopped = Instant::now();
    while !running_in_group(group).is_empty() {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "still running after the server was stopped: {:?}",
            running_in_group(group)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_stylegram-train"))
        .args([
            "train",
            "--device",
            "cpu",
            "--iterations",
            "1",
            "--batch",
            "1",
        ])
        .args(["--resize", "64", "--crop", "64"])
        .arg("--content")
        .arg(common::pictures())
        .arg("--style")
        .arg(common::pictures())
        .arg("--run-dir")
        .arg(dir.path().join("r"))
        .arg("--vgg")
        .arg(common::vgg_path())
        .env("MLFLOW_TRACKING_URI", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--mlflow-uri") && stderr.contains("MLflow"),
        "{stderr}"
    );
}
