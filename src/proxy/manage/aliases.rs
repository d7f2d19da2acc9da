//! Session aliases: three distinct words from the curated list in
//! `words.txt` (its header states source and licence), joined by `-`, e.g.
//! `amber-otter-lagoon`. This module owns the list and the draw; uniqueness
//! among live sessions is the store's job (an insert with a taken alias fails
//! and the API draws again).

use std::sync::OnceLock;

use crate::api::is_alias_word as is_word;
#[cfg(test)]
use crate::api::looks_like_alias;

const WORDS_FILE: &str = include_str!("words.txt");

/// The words, parsed once. A malformed list is a build defect, caught by the
/// unit test below, so parsing simply skips anything that breaks the rules.
pub fn words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        WORDS_FILE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|w| is_word(w))
            .collect()
    })
}

/// Draws an alias with the thread's CSPRNG (aliases are not secrets, but a
/// predictable sequence would let one user guess another's next alias).
pub fn draw() -> String {
    let words = words();
    let mut picked: [usize; 3] = [0; 3];
    for i in 0..3 {
        loop {
            let n = rand::random_range(0..words.len());
            if !picked[..i].contains(&n) {
                picked[i] = n;
                break;
            }
        }
    }
    format!(
        "{}-{}-{}",
        words[picked[0]], words[picked[1]], words[picked[2]]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_clean() {
        let raw: Vec<&str> = WORDS_FILE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        for w in &raw {
            assert!(is_word(w), "bad word in words.txt: {w:?}");
        }
        let mut sorted = raw.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), raw.len(), "duplicate words in words.txt");
        assert!(raw.len() >= 200, "too few words for unique aliases");
    }

    #[test]
    fn draws_have_alias_shape() {
        for _ in 0..100 {
            let a = draw();
            assert!(looks_like_alias(&a), "{a}");
        }
    }
}
