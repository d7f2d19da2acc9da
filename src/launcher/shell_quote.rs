//! Quoting for bash. Every value interpolated into a batch script goes through
//! `shell_quote` (the `q` filter in templates), so no profile, flag or
//! variable can inject shell code.

use std::borrow::Cow;

/// One bash word that expands to exactly `text`. Words made only of
/// characters bash never treats specially stay bare, for readable scripts;
/// everything else is single-quoted, with `'` written as `'\''`.
pub fn shell_quote(text: &str) -> Cow<'_, str> {
    let safe = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-+=:,./@%".contains(&b))
        // A leading `=` or `%` is harmless, but `~` is not in the set and
        // nothing may look like an option to `cd --`'s neighbours either way.
        && !text.starts_with('-');
    if safe {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("'{}'", text.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(shell_quote("compute"), "compute");
        assert_eq!(shell_quote("/share/apps/x.simg"), "/share/apps/x.simg");
    }

    #[test]
    fn hostile_words_are_quoted() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
        assert_eq!(shell_quote("-n"), "'-n'");
    }
}
