//! An error and its causes as one line of text, for logs and for errors
//! that carry a cause as text. Apart from `crate::error` (which every
//! command's error reaches), so that any module may use it.

/// An error and its causes on one line, `outer: inner: innermost`, for logs
/// and for errors that carry a cause as text.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
