//! Normalisation: make equal words look equal before they are cut into tokens.
//!
//! [`normalize`] rewrites the whole text once: Unicode NFC (so "ü" typed as "u" plus a combining
//! diaeresis equals the precomposed "ü"), typographic apostrophes folded to `'` (so "Britain’s"
//! and "Britain's" tokenise alike), invisible break hints such as the soft hyphen removed (so
//! "Bundes\u{AD}regierung" from a hyphenating CMS is one word again), and Unicode hyphens folded to
//! `-` (the tokeniser gives `-` a meaning), and every kind of white space folded to a plain space
//! (UAX #29 keeps the narrow no-break space inside words, "a\u{202F}b", as it joins Mongolian
//! suffixes; in news text it separates). Letter case is kept here so that terms can carry the
//! word as written; [`lowercase_into`] folds the case of each token afterwards (and drops the
//! dots of initialisms, so "U.S." matches "US").

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Writes the NFC form of `text` to `out`, with apostrophes, hyphens and invisible characters
/// folded as described in the module docs. Letter case is left alone.
pub(super) fn normalize(text: &str, out: &mut String) {
    // Most text arrives in NFC already; the quick check spares it the composing iterator, and the runs of
    // characters that need no folding are copied in one go.
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        let mut kept_from = 0;
        for (at, c) in text.char_indices() {
            if let Some(replacement) = replacement(c) {
                out.push_str(&text[kept_from..at]);
                out.push_str(replacement);
                kept_from = at + c.len_utf8();
            }
        }
        out.push_str(&text[kept_from..]);
    } else {
        for c in text.nfc() {
            match replacement(c) {
                Some(replacement) => out.push_str(replacement),
                None => out.push(c),
            }
        }
    }
}

/// What `c` is folded to, if it is folded.
fn replacement(c: char) -> Option<&'static str> {
    match c {
        ' ' => None,
        // Right and left single quotation marks, modifier letter apostrophe, grave and acute
        // accents: all are typed where an apostrophe is meant ("geht´s", "Britain’s").
        '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '\u{00B4}' => Some("'"),
        // Hyphen and non-breaking hyphen.
        '\u{2010}' | '\u{2011}' => Some("-"),
        // Soft hyphen, zero width space, word joiner, zero width no-break space (BOM).
        '\u{00AD}' | '\u{200B}' | '\u{2060}' | '\u{FEFF}' => Some(""),
        c if c.is_whitespace() => Some(" "),
        _ => None,
    }
}

/// Appends the lower-cased form of the token `word` to `out`. The dots of an initialism are
/// dropped ("U.S" → "us"); the dots of a number are kept ("1.000").
pub(super) fn lowercase_into(word: &str, out: &mut String) {
    let drop_dots = word.chars().any(char::is_alphabetic);
    for c in word.chars() {
        if !(drop_dots && c == '.') {
            out.extend(c.to_lowercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> String {
        let mut out = String::new();
        normalize(text, &mut out);
        out
    }

    #[test]
    fn composes_to_nfc() {
        assert_eq!(normalized("Mu\u{0308}nchen"), "München");
    }

    #[test]
    fn folds_apostrophes_and_hyphens() {
        assert_eq!(normalized("Britain’s geht´s it`s"), "Britain's geht's it's");
        assert_eq!(normalized("Nato\u{2011}Chef"), "Nato-Chef");
    }

    #[test]
    fn removes_soft_hyphens_and_invisible_characters() {
        assert_eq!(normalized("Bundes\u{AD}regierung"), "Bundesregierung");
        assert_eq!(normalized("\u{FEFF}Wort\u{2060}teil"), "Wortteil");
    }

    #[test]
    fn folds_every_white_space_to_a_plain_space() {
        assert_eq!(normalized("10\u{202F}000 z.\u{00A0}B.\tund\n"), "10 000 z. B. und ");
    }

    #[test]
    fn keeps_letter_case_and_other_dashes() {
        assert_eq!(normalized("Berlin – Paris"), "Berlin – Paris");
    }

    #[test]
    fn lowercases_including_capital_sharp_s() {
        let mut out = String::new();
        lowercase_into("STRAẞE Äpfel", &mut out);
        assert_eq!(out, "straße äpfel");
    }

    #[test]
    fn lowercasing_drops_dots_of_initialisms_only() {
        let mut out = String::new();
        lowercase_into("U.S", &mut out);
        out.push(' ');
        lowercase_into("1.000", &mut out);
        assert_eq!(out, "us 1.000");
    }
}
