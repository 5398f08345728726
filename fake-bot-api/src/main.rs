//! `fake-bot-api`: serves the fake Telegram Bot API for local demos (see the README, "Try it
//! without Telegram").
use std::net::SocketAddr;

use clap::Parser;

/// A fake Telegram Bot API server with a chat page. Point the bot at it with
/// TELOXIDE_API_URL=http://<addr>/ and open http://<addr>/ in a browser to chat.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "FAKE_BOT_API_ADDR", default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// A fault to switch on, METHOD=KIND[:ARG](@RATE|xTIMES): `*=429:2@0.05` answers 5% of calls
    /// (every method but getUpdates and the start-up calls) with 429 and retry_after 2; `sendPhoto=502x3` the next three
    /// sendPhoto calls with 502; `*=delay:20000@0.01` 1% twenty seconds late; `getFile=drop@0.02`
    /// closes 2% of getFile connections unanswered. Repeatable; also `POST /control/faults`.
    #[arg(long = "fault", value_name = "RULE")]
    faults: Vec<fake_bot_api::FaultRule>,
    /// A chat whose user blocked the bot: every call for it answers 403. Repeatable; also
    /// `POST /control/block`.
    #[arg(long = "blocked", value_name = "CHAT_ID")]
    blocked: Vec<i64>,
    /// Seed of the fraction faults' draws (the same seed repeats a run's faults).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let server = fake_bot_api::FakeBotApi::start(cli.addr).await?;
    server.state.seed_faults(cli.seed);
    for rule in &cli.faults {
        server.state.add_fault(rule);
    }
    for chat in cli.blocked {
        server.state.block(chat, true);
    }
    println!(
        "fake Bot API on {0}; run the bot with TELOXIDE_API_URL={0} and open {0} to chat",
        server.url
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
