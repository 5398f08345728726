//! The handler tree: which update goes to which function.
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::utils::command::BotCommands;

/// Commands every user can send.
#[derive(BotCommands, Clone)]
#[command(
    rename_rule = "lowercase",
    description = "Stylegram repaints your photo in the style of a painting."
)]
enum Command {
    /// Introduction.
    #[command(description = "what this bot does")]
    Start,
    /// The command list.
    #[command(description = "list of commands")]
    Help,
}

/// The dispatcher's handler tree.
pub fn tree() -> UpdateHandler<anyhow::Error> {
    Update::filter_message().branch(teloxide::filter_command::<Command, _>().endpoint(command))
}

async fn command(bot: Bot, msg: Message, cmd: Command) -> anyhow::Result<()> {
    let text = match cmd {
        Command::Start => "Stylegram repaints your photo in the style of a painting.\n\
                           Photo style transfer is being set up on this server; /help lists the commands."
            .to_owned(),
        Command::Help => Command::descriptions().to_string(),
    };
    bot.send_message(msg.chat.id, text).await?;
    Ok(())
}
