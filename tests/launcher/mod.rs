//! Launcher tests: rendering, profiles, validation, precedence.
