//! Tokenisation: cut normalised text into words.
//!
//! Word boundaries follow Unicode UAX #29 (`segment`), then a few news-text rules:
//!
//! - A hyphen always separates: "Nato-Generalsekretär" gives "Nato" and "Generalsekretär".
//! - A German word ending in a hyphen before a coordination ("Ergänzungsstrich": "Raketen- und
//!   Nuklearprogrammen", "Ein-, Aus- oder Durchfuhr") is marked with the word that completes it,
//!   so the decompounder can rebuild "Raketenprogrammen".
//! - UAX #29 keeps ".", ":" and "·" inside words ("www.tagesschau.de", "Bürger:innen"); such
//!   words are split there, except numbers ("1.000,5") and initialisms ("U.S", "z.B"), which
//!   stay whole (their dots are dropped with the letter case, so "U.S." matches "US").
//! - A trailing `'s` is dropped: "Britain's" → "Britain", "geht's" → "geht". Other apostrophe
//!   forms ("don't") stay whole for the stop-word list.
//! - Pure numbers are noise for relatedness: unless numbers are kept, only years 1900–2099
//!   survive. Words mixing letters and digits ("G20", "5G") are kept.
//! - One-character words (other than kept numbers) and words longer than [`MAX_WORD_CHARS`]
//!   (URLs, base64, tables flattened into text) are dropped.

use std::ops::Range;

use super::Lang;
use super::segment::{Segments, segments};

/// Longest word kept, in characters. Long enough for real German compounds.
const MAX_WORD_CHARS: usize = 64;

/// Words that may stand between a truncated compound and the word completing it.
const COORDINATORS: &[&str] = &[
    "als",
    "auch",
    "beziehungsweise",
    "bzw",
    "noch",
    "oder",
    "sowie",
    "sowohl",
    "u",
    "und",
    "wie",
];

/// Punctuation that may stand between a truncated compound and the word completing it. A "."
/// may also follow a coordinator ("bzw.", "u.").
const COORDINATING_PUNCTUATION: &[&str] = &["-", ",", "/", "&"];

/// Characters UAX #29 keeps inside words where news text means a word break.
const INNER_SEPARATORS: [char; 3] = ['.', ':', '·'];

/// How many segments (words, spaces, punctuation) to look ahead for the completing word.
const MAX_COORDINATION_SEGMENTS: usize = 16;

/// A word of the normalised text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Token {
    /// Byte range of the word in the normalised text.
    pub range: Range<usize>,
    /// For a truncated German compound ("Raketen-" in "Raketen- und Nuklearprogrammen"): byte
    /// range of the word that completes it ("Nuklearprogrammen").
    pub completion: Option<Range<usize>>,
}

/// Appends the tokens of the normalised `text` to `out`.
pub(super) fn tokenize(text: &str, lang: Lang, keep_numbers: bool, out: &mut Vec<Token>) {
    let mut segments = segments(text);
    while let Some((start, segment)) = segments.next() {
        if !is_word(segment) {
            continue;
        }
        let completion = if lang == Lang::De {
            completion(segments.clone())
        } else {
            None
        };
        if has_letters(segment) && !is_initialism(segment) {
            let mut pieces = segment.split_inclusive(INNER_SEPARATORS).peekable();
            let mut piece_start = start;
            while let Some(piece) = pieces.next() {
                let is_last = pieces.peek().is_none();
                let word = piece.strip_suffix(INNER_SEPARATORS).unwrap_or(piece);
                let range = piece_start..piece_start + word.len();
                piece_start += piece.len();
                if let Some(range) = word_range(text, range, keep_numbers) {
                    let completion = if is_last { completion.clone() } else { None };
                    out.push(Token { range, completion });
                }
            }
        } else if let Some(range) = word_range(text, start..start + segment.len(), keep_numbers) {
            out.push(Token { range, completion });
        }
    }
}

/// Whether a UAX #29 segment is a word (rather than space, punctuation or emoji).
fn is_word(segment: &str) -> bool {
    segment.chars().any(char::is_alphanumeric)
}

fn has_letters(word: &str) -> bool {
    word.chars().any(char::is_alphabetic)
}

/// Whether `word` is letters separated by dots ("U.S", "z.B").
fn is_initialism(word: &str) -> bool {
    word.contains('.') && word.split('.').all(|piece| piece.chars().count() == 1)
}

/// Whether `word` is a year from 1900 to 2099.
fn is_year(word: &str) -> bool {
    word.len() == 4 && word.bytes().all(|b| b.is_ascii_digit()) && (word.starts_with("19") || word.starts_with("20"))
}

/// Applies the per-word rules to a piece of a segment; returns the range of the word to keep.
fn word_range(text: &str, mut range: Range<usize>, keep_numbers: bool) -> Option<Range<usize>> {
    let mut word = &text[range.clone()];
    // A combining mark right after a space joins it in one segment (UAX #29, rule WB4): " ਾ".
    range.start += word.len() - word.trim_start().len();
    word = word.trim();
    range.end = range.start + word.len();
    if word.ends_with("'s") || word.ends_with("'S") {
        word = &word[..word.len() - 2];
        range.end -= 2;
    }
    if !is_word(word) {
        return None;
    }
    if !has_letters(word) {
        return (keep_numbers || is_year(word)).then_some(range);
    }
    let chars = word.chars().count();
    (2..=MAX_WORD_CHARS).contains(&chars).then_some(range)
}

/// Given the segments after a word, finds the word completing it if it is a truncated compound:
/// a hyphen right after the word, then only coordinators, punctuation and further truncated
/// compounds up to the completing word.
fn completion(mut rest: Segments<'_>) -> Option<Range<usize>> {
    if rest.next()?.1 != "-" {
        return None;
    }
    if is_word(rest.clone().next()?.1) {
        // "Nato-Generalsekretär": an ordinary hyphenated word.
        return None;
    }
    for _ in 0..MAX_COORDINATION_SEGMENTS {
        let (start, segment) = rest.next()?;
        if segment.trim().is_empty() || COORDINATING_PUNCTUATION.contains(&segment) {
            continue;
        }
        if !is_word(segment) {
            return None;
        }
        let is_coordinator = COORDINATORS.iter().any(|word| word.eq_ignore_ascii_case(segment));
        if is_coordinator {
            if rest.clone().next().is_some_and(|(_, next)| next == ".") {
                rest.next();
            }
        } else if !is_truncated(rest.clone()) {
            return Some(start..start + segment.len());
        }
    }
    None
}

/// Whether the segments after a word start with a hyphen that is not followed by a word.
fn is_truncated(mut rest: Segments<'_>) -> bool {
    rest.next().is_some_and(|(_, segment)| segment == "-") && rest.next().is_none_or(|(_, segment)| !is_word(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, lang: Lang, keep_numbers: bool) -> Vec<&str> {
        let mut tokens = Vec::new();
        tokenize(text, lang, keep_numbers, &mut tokens);
        tokens.iter().map(|token| &text[token.range.clone()]).collect()
    }

    fn completions(text: &str) -> Vec<(&str, &str)> {
        let mut tokens = Vec::new();
        tokenize(text, Lang::De, false, &mut tokens);
        tokens
            .iter()
            .filter_map(|token| {
                let completion = token.completion.clone()?;
                Some((&text[token.range.clone()], &text[completion]))
            })
            .collect()
    }

    #[test]
    fn splits_hyphenated_words() {
        assert_eq!(
            words("Nato-Generalsekretär Stoltenberg", Lang::De, false),
            ["Nato", "Generalsekretär", "Stoltenberg"]
        );
    }

    #[test]
    fn a_combining_mark_after_a_space_does_not_drag_the_space_into_the_word() {
        // Found by the analysis property test.
        assert_eq!(words(" \u{A3E}\u{A3E} x", Lang::De, false), vec!["\u{A3E}\u{A3E}"]);
    }

    #[test]
    fn strips_possessive_s() {
        assert_eq!(
            words("Britain's PM, BRITAIN'S", Lang::En, false),
            ["Britain", "PM", "BRITAIN"]
        );
        assert_eq!(words("so geht's", Lang::De, false), ["so", "geht"]);
        assert_eq!(words("don't", Lang::En, false), ["don't"]);
    }

    #[test]
    fn splits_abbreviations_and_gender_colons() {
        assert_eq!(
            words("Bürger:innen, www.tagesschau.de, 3.Liga", Lang::De, false),
            ["Bürger", "innen", "www", "tagesschau", "de", "Liga"]
        );
    }

    #[test]
    fn keeps_initialisms_whole() {
        assert_eq!(
            words("U.S. troops, z.B. hier", Lang::En, false),
            ["U.S", "troops", "z.B", "hier"]
        );
    }

    #[test]
    fn number_rules() {
        let text = "G20 2024 1850 5G 3 1.000 covid-19 2,5";
        assert_eq!(words(text, Lang::En, false), ["G20", "2024", "5G", "covid"]);
        assert_eq!(
            words(text, Lang::En, true),
            ["G20", "2024", "1850", "5G", "3", "1.000", "covid", "19", "2,5"]
        );
    }

    #[test]
    fn drops_single_letters_and_overlong_words() {
        let long = "x".repeat(MAX_WORD_CHARS + 1);
        let text = format!("E-Mail a {long} ok");
        assert_eq!(words(&text, Lang::En, false), ["Mail", "ok"]);
    }

    #[test]
    fn finds_completion_of_truncated_compounds() {
        assert_eq!(
            completions("Raketen- und Nuklearprogrammen"),
            [("Raketen", "Nuklearprogrammen")]
        );
        assert_eq!(
            completions("Ein-, Aus- oder Durchfuhr."),
            [("Ein", "Durchfuhr"), ("Aus", "Durchfuhr")]
        );
        assert_eq!(
            completions("Bundes- bzw. Landesregierung"),
            [("Bundes", "Landesregierung")]
        );
        assert_eq!(
            completions("Straßen- u. Schienenverkehr"),
            [("Straßen", "Schienenverkehr")]
        );
        assert_eq!(
            completions("sowohl Kinder- als auch Jugendhilfe"),
            [("Kinder", "Jugendhilfe")]
        );
    }

    #[test]
    fn no_completion_without_coordination() {
        assert!(completions("Nato-Generalsekretär").is_empty());
        assert!(completions("Raketen-. Neuer Satz").is_empty());
        assert!(completions("Raketen- (und Atomprogramm)").is_empty());
        assert!(completions("am Ende ein Bindestrich-").is_empty());
    }

    #[test]
    fn truncated_compounds_only_in_german() {
        let mut tokens = Vec::new();
        tokenize("pre- and postwar", Lang::En, false, &mut tokens);
        assert!(tokens.iter().all(|token| token.completion.is_none()));
    }
}
