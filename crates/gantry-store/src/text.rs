//! Text on its way into Postgres `text` columns. Postgres refuses the NUL
//! character (U+0000) in `text` (and in `jsonb`), and one refused row used
//! to fail its whole batch; every agent-supplied string the store writes
//! (errors, log tails) passes through [`storable_text`] first.

use std::borrow::Cow;

/// What a NUL in stored text becomes: U+FFFD, the character invalid UTF-8
/// in a log tail already becomes, so a reader sees one kind of "this byte
/// could not be kept".
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `s` with every NUL replaced by [`NUL_REPLACEMENT`]; borrowed when there
/// is none (the common case costs one scan, no copy).
pub fn storable_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_becomes_the_replacement_character() {
        assert_eq!(storable_text("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        assert!(matches!(storable_text("plain"), Cow::Borrowed("plain")));
    }

    proptest! {
        #[test]
        fn stored_text_never_holds_nul_and_keeps_everything_else(s in any::<String>()) {
            let out = storable_text(&s);
            prop_assert!(!out.contains('\0'));
            // Only NULs change: the same characters otherwise, in order.
            let want: String = s.chars().map(|c| if c == '\0' { NUL_REPLACEMENT } else { c }).collect();
            prop_assert_eq!(out.as_ref(), want.as_str());
        }

        #[test]
        fn lossy_bytes_become_storable_text(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            // What a log tail is made of: arbitrary bytes, decoded lossily.
            let lossy = String::from_utf8_lossy(&bytes);
            let out = storable_text(&lossy);
            prop_assert!(!out.contains('\0'));
            prop_assert_eq!(out.chars().count(), lossy.chars().count());
        }
    }
}
