//! A private `redis-server` for tests of the Redis scale-out mode.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Patience for the server to answer.
const WAIT: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A private `redis-server` on a free port, without persistence; stopped when dropped.
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts `redis-server` (installed by `scripts/bootstrap.sh --test-services`) and waits until it
    /// answers.
    pub async fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (make test installs it)");
        let server = RedisServer { child, port };
        // Ready when it answers PING, not merely when its port accepts connections.
        let ready = crate::eventually(WAIT, move || {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
        })
        .await;
        assert!(ready, "redis-server never answered");
        server
    }

    /// The queue's URL (database 0).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs a `redis-cli` command against the queue's database and returns its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
