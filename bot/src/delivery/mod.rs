//! The way out to Telegram: [`Telegram`], the one outbound path every Bot API call takes (pacing,
//! retries, gone chats), the retry rules it applies ([`retry`]), and the [`Spool`] where finished
//! results wait on disk until Telegram has taken them. Nothing here knows the application object,
//! the queue or the operator commands.
pub mod retry;
pub mod spool;
pub mod telegram;

pub use spool::Spool;
pub use telegram::{Api, CallError, Importance, Telegram};
