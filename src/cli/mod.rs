//! Client-side commands of the binary: `plangate ask` (a terminal client for any running gateway),
//! `plangate chat` (a conversation, one plan per line) and the renderer `demo` shares with them.

pub mod ask;
pub mod chat;
