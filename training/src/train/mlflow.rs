//! MLflow tracking through its REST API (`/api/2.0/mlflow/...`), with no Python in the process:
//! a run with the recipe as params, losses and throughput as metrics, and the loss plot and sample
//! grid as artifacts where the server proxies artifact storage (`mlflow server` does by default).
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::TrainingError;

/// MLflow accepts at most this many metrics in one `log-batch`.
const BATCH_LIMIT: usize = 1000;
/// And at most this many params.
const PARAM_LIMIT: usize = 100;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn error(what: &str, e: impl std::fmt::Display) -> TrainingError {
    TrainingError::Tracking(format!("{what}: {e}"))
}

/// One MLflow run being written.
pub struct MlflowRun {
    client: Client,
    base: String,
    run_id: String,
    artifact_uri: String,
    pending: Vec<Value>,
}

impl MlflowRun {
    /// Creates (or reuses) `experiment` on the server at `tracking_uri` and starts a run named
    /// `run_name` with `params`.
    pub fn start(
        tracking_uri: &str,
        experiment: &str,
        run_name: &str,
        params: &[(String, String)],
    ) -> Result<Self, TrainingError> {
        let base = tracking_uri.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(TrainingError::Tracking(format!(
                "MLFLOW_TRACKING_URI '{tracking_uri}' is not an http(s) URL; only the REST API is supported"
            )));
        }
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| error("HTTP client", e))?;
        let mut run = MlflowRun {
            client,
            base,
            run_id: String::new(),
            artifact_uri: String::new(),
            pending: Vec::new(),
        };
        let experiment_id = run.experiment_id(experiment)?;
        let created = run.post(
            "runs/create",
            &json!({"experiment_id": experiment_id, "run_name": run_name, "start_time": now_ms()}),
        )?;
        run.run_id = created["run"]["info"]["run_id"]
            .as_str()
            .ok_or_else(|| error("runs/create", "no run_id in the answer"))?
            .to_owned();
        run.artifact_uri = created["run"]["info"]["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        run.log_params(params)?;
        tracing::info!(run_id = %run.run_id, "MLflow run started at {}", run.base);
        Ok(run)
    }

    /// Records `params` (key, value) on the run.
    pub fn log_params(&self, params: &[(String, String)]) -> Result<(), TrainingError> {
        for chunk in params.chunks(PARAM_LIMIT) {
            let params: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v.chars().take(6000).collect::<String>()}))
                .collect();
            self.post(
                "runs/log-batch",
                &json!({"run_id": self.run_id, "params": params}),
            )?;
        }
        Ok(())
    }

    /// The server's id of this run.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Value, TrainingError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let response = self
            .client
            .post(&url)
            .json(body)
            .send()
            .map_err(|e| error(endpoint, e))?;
        let status = response.status();
        let text = response.text().map_err(|e| error(endpoint, e))?;
        if !status.is_success() {
            return Err(error(endpoint, format!("HTTP {status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| error(endpoint, e))
    }

    fn experiment_id(&self, name: &str) -> Result<String, TrainingError> {
        let url = format!("{}/api/2.0/mlflow/experiments/get-by-name", self.base);
        let response = self
            .client
            .get(&url)
            .query(&[("experiment_name", name)])
            .send()
            .map_err(|e| error("experiments/get-by-name", e))?;
        if response.status().is_success() {
            let found: Value = response
                .json()
                .map_err(|e| error("experiments/get-by-name", e))?;
            if let Some(id) = found["experiment"]["experiment_id"].as_str() {
                return Ok(id.to_owned());
            }
        }
        let created = self.post("experiments/create", &json!({"name": name}))?;
        created["experiment_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| error("experiments/create", "no experiment_id in the answer"))
    }

    /// Queues metric values at `step` (sent by [`MlflowRun::flush`], or when the queue is full).
    pub fn log_metrics(&mut self, step: u64, metrics: &[(&str, f64)]) -> Result<(), TrainingError> {
        let timestamp = now_ms();
        self.pending.extend(
            metrics
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(k, v)| json!({"key": k, "value": v, "timestamp": timestamp, "step": step})),
        );
        if self.pending.len() >= BATCH_LIMIT - 10 {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the queued metrics.
    pub fn flush(&mut self) -> Result<(), TrainingError> {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(BATCH_LIMIT);
            let batch: Vec<Value> = self.pending.drain(..n).collect();
            self.post(
                "runs/log-batch",
                &json!({"run_id": self.run_id, "metrics": batch}),
            )?;
        }
        Ok(())
    }

    /// Uploads `path` as artifact `name` through the server's artifact proxy. Returns `false` (and
    /// uploads nothing) when the run's artifacts are not proxied by the server.
    pub fn log_artifact(&self, path: &Path, name: &str) -> Result<bool, TrainingError> {
        let Some(location) = self.artifact_uri.strip_prefix("mlflow-artifacts:") else {
            return Ok(false);
        };
        // "mlflow-artifacts:/1/<run>/artifacts" or "mlflow-artifacts://host/1/<run>/artifacts".
        let location = location.trim_start_matches('/');
        let location = if self.artifact_uri.starts_with("mlflow-artifacts://") {
            location.split_once('/').map_or("", |(_, rest)| rest)
        } else {
            location
        };
        let bytes = std::fs::read(path).map_err(|source| TrainingError::Io {
            path: path.to_owned(),
            source,
        })?;
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{location}/{name}",
            self.base
        );
        let response = self
            .client
            .put(&url)
            .body(bytes)
            .send()
            .map_err(|e| error("artifact upload", e))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(error(
                "artifact upload",
                format!("HTTP {status}: {}", response.text().unwrap_or_default()),
            ));
        }
        Ok(true)
    }

    /// Sends what is queued and marks the run `FINISHED` (or `FAILED`).
    pub fn finish(&mut self, succeeded: bool) -> Result<(), TrainingError> {
        self.flush()?;
        let status = if succeeded { "FINISHED" } else { "FAILED" };
        self.post(
            "runs/update",
            &json!({"run_id": self.run_id, "status": status, "end_time": now_ms()}),
        )?;
        Ok(())
    }
}
