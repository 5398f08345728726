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
    println!(
        "fake Bot API on {0}; run the bot with TELOXIDE_API_URL={0} and open {0} to chat",
        server.url
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
