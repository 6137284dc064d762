//! The control room: the text protocol on the control port. The grammar
//! ([`command`], [`parse`], [`help`]) and the reply type ([`reply`]) are
//! pure; [`session`] reads lines and answers them through [`dispatch`],
//! which sends fault commands to [`execute`] (through the partition's
//! door), reports to [`report`] and chaos to its runner ([`chaos`]). Its
//! state is [`room::Control`].

pub mod chaos;
pub mod chaos_slot;
pub mod command;
pub mod dispatch;
pub mod execute;
pub mod help;
pub mod parse;
pub mod reply;
pub mod report;
pub mod room;
pub mod session;

pub use room::{Control, ControlSettings};
