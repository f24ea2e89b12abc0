//! Client-side commands of the binary: `plangate ask` (a terminal client for any running gateway)
//! and the renderer `demo` shares with it.

pub mod ask;
