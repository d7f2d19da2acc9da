//! Launcher tests: the real `jrps` binary in a hermetic environment (see `test.rs`).

mod manners;
mod precedence;
mod preflight;
mod profiles;
mod render;
mod script;
mod test;
mod validation;
