//! Strings in an export come from the traced program (map keys, function
//! and file names) or from a file anyone may have written. Written to a
//! terminal as they are, a control character in a key can move the cursor,
//! clear the screen or retitle the window, and a bidirectional override
//! can make text read differently from what it is. Every string from an
//! export passes through [`printable`] on its way to the screen.

use std::{borrow::Cow, fmt::Write as _};

/// `text` with control characters and bidirectional formatting characters
/// replaced by visible escapes (`\u{1b}`), borrowed when there are none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if needs_escape(character) {
            let _ = write!(escaped, "\\u{{{:x}}}", u32::from(character));
        } else {
            escaped.push(character);
        }
    }
    Cow::Owned(escaped)
}

fn needs_escape(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_as_it_is() {
        assert!(matches!(
            printable("sku-1337 · ключ"),
            Cow::Borrowed("sku-1337 · ключ")
        ));
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("a\u{1b}[2Jb\n\t"), "a\\u{1b}[2Jb\\u{a}\\u{9}");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m", "the C1 escape too");
    }

    #[test]
    fn bidirectional_overrides_are_escaped() {
        assert_eq!(printable("txt\u{202e}exe.go"), "txt\\u{202e}exe.go");
    }
}
