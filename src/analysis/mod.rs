//! How do we turn an article's text into index terms?
//!
//! [`Analyzer`] runs one fixed pipeline, written out in [`Analyzer::analyze_into`], in the style
//! of tantivy's `TextAnalyzer` and meilisearch's charabia. Each stage lives in its own file:
//!
//! 1. **Normalise** (`normalize`): Unicode NFC, typographic apostrophes to `'`, soft hyphens and
//!    other invisible break hints removed, Unicode hyphens to `-`, and lower-casing of each word.
//!    Equal words must give equal terms whichever way the CMS encoded them.
//! 2. **Tokenise** (`tokenize`): Unicode word boundaries (UAX #29, `segment`: a fast path for Latin-script
//!    text, `unicode-segmentation` for the rest) plus news-text rules:
//!    hyphenated words give their pieces ("Nato-Generalsekretär" → "nato", "generalsekretär"),
//!    a trailing `'s` is dropped ("Britain's" → "britain"), initialisms lose their dots ("U.S." →
//!    "us"), pure numbers are dropped except years 1900–2099 (unless
//!    [`AnalyzerConfig::keep_numbers`]), and one-letter words go. German truncated compounds
//!    ("Raketen- und Nuklearprogrammen") are rebuilt as "raketenprogrammen" with the head of the
//!    completing word, found by the compound splitter; this happens in every [`CompoundMode`]
//!    because it restores a word the text elided rather than splitting one it wrote.
//! 3. **Stop words** (`stop_words`): German and English function words are dropped (Snowball
//!    lists), checked on the lower-cased word before stemming. All-capital acronyms ("WHO") are
//!    kept.
//! 4. **Decompound** (`decompound`, German only, see [`CompoundMode`]): a compound yields itself
//!    and its parts ("Atomprogramm" → "atomprogramm", "atom", "programm"), split by corpus
//!    frequencies from the [`Lexicon`]; and/or character n-grams of long words as extra terms.
//! 5. **Stem** (`stem`): Snowball stemming for German and English, also of compound parts, so
//!    "Programmen" and "Programm" meet. Other languages are not stemmed.
//!
//! Every [`Term`] keeps the word as written (its surface) next to the key, so that "why related"
//! explanations can show "Programm" rather than "programm" or a stem.
//!
//! The [`AnalyzerConfig`] and the [`Lexicon`] are stored in snapshots: a query must be analysed
//! exactly like the indexed articles were.
//!
//! # Compound handling: measured choice
//!
//! German compounds must meet their parts ("Atomprogramm" ~ "Atom" + "Programm"). Two ways were compared:
//! splitting against the corpus lexicon (Koehn & Knight style, parts of at least 4 characters, added
//! beside the whole word) and character 4-grams of long words. Measured with `weitere eval --k 5 --label
//! category --compounds …` on gnad10k, choosing on the dev half (even lines, = `data/gnad-sample.jsonl.gz`)
//! and reporting on the other half and the whole corpus (precision@5, leave-one-out):
//!
//! | mode | dev half | other half | all 1,028 |
//! |---|---:|---:|---:|
//! | `Off` | 0.625 | 0.585 | 0.658 |
//! | `Split` | **0.647** | **0.600** | **0.669** |
//! | `NGrams` | 0.599 | 0.555 | 0.628 |
//! | `SplitAndNGrams` | 0.605 | 0.561 | 0.633 |
//!
//! Splitting wins on every split; n-grams lose about 0.03 even when added to splitting, because the many
//! shared fragments ("ung#", "#sch") make unrelated articles look alike. Hence [`CompoundMode::Split`] is
//! the default and n-grams stay available for corpora where they measure better.

mod decompound;
mod lexicon;
mod normalize;
mod segment;
mod stem;
mod stop_words;
mod tokenize;

use std::convert::Infallible;
use std::fmt;
use std::ops::Range;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use lexicon::Lexicon;

use normalize::{lowercase_into, normalize};
use stem::Stemmers;
use stop_words::is_stop_word;
use tokenize::{Token, tokenize};

use crate::error::{Result, check_deadline};

/// How many tokens [`Analyzer::analyze_until`] analyses between two looks at the clock.
pub const DEADLINE_CHECK_TOKENS: usize = 1_024;

/// Prefix of the keys of character n-gram terms ([`CompoundMode::NGrams`]). Word keys never start
/// with it, so n-grams and words cannot collide.
pub const NGRAM_PREFIX: &str = "#";

/// Article language as far as analysis cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    /// German: stop words, compounds, German stemming.
    De,
    /// English: stop words, English stemming.
    En,
    /// Anything else: tokenised and lower-cased only.
    Other,
}

impl Lang {
    /// The language of a code as found in feeds and metadata: "de", "DE", "de-AT", "de_CH",
    /// "deu", "ger", "german" are German; "en", "en-GB", "eng", "english" are English; anything
    /// else, including "", is [`Lang::Other`].
    pub fn from_code(code: &str) -> Lang {
        let primary = code.trim().split(['-', '_']).next().unwrap_or_default();
        let is_one_of = |names: &[&str]| names.iter().any(|name| name.eq_ignore_ascii_case(primary));
        if is_one_of(&["de", "deu", "ger", "german", "deutsch"]) {
            Lang::De
        } else if is_one_of(&["en", "eng", "english"]) {
            Lang::En
        } else {
            Lang::Other
        }
    }
}

/// How German compounds are handled (other languages have none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompoundMode {
    /// No decompounding.
    Off,
    /// Dictionary split against the corpus [`Lexicon`]; the whole word and its parts are terms.
    Split,
    /// Character n-grams of long words as extra terms (keys start with [`NGRAM_PREFIX`]).
    NGrams,
    /// Both [`CompoundMode::Split`] and [`CompoundMode::NGrams`].
    SplitAndNGrams,
}

impl CompoundMode {
    fn splits(self) -> bool {
        matches!(self, CompoundMode::Split | CompoundMode::SplitAndNGrams)
    }

    fn ngrams(self) -> bool {
        matches!(self, CompoundMode::NGrams | CompoundMode::SplitAndNGrams)
    }
}

/// Everything that decides how text becomes terms. Stored in snapshots (serde), so a query is
/// analysed exactly like the index was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyzerConfig {
    /// Snowball stemming (German, English); other languages are never stemmed.
    pub stem: bool,
    /// Drop German and English stop words.
    pub stop_words: bool,
    /// How German compounds are handled.
    pub compounds: CompoundMode,
    /// Shortest compound part in characters, for splitting and for rebuilding truncated
    /// compounds.
    pub min_part_len: usize,
    /// n of the character n-grams of [`CompoundMode::NGrams`]; words need more than `2 * n`
    /// characters to get n-grams.
    pub ngram_len: usize,
    /// Keep all numbers; when false only years 1900–2099 are kept.
    pub keep_numbers: bool,
}

impl Default for AnalyzerConfig {
    /// A first guess, to be replaced by measurement (see the module docs).
    fn default() -> Self {
        Self {
            stem: true,
            stop_words: true,
            compounds: CompoundMode::Split,
            min_part_len: 4,
            ngram_len: 4,
            keep_numbers: false,
        }
    }
}

/// One index term produced from the text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Term {
    /// The index term: normalised, lower-cased, stemmed (n-grams: [`NGRAM_PREFIX`] + n-gram).
    pub key: String,
    /// The word as written, for explanations. For a compound part, the part as it would be
    /// written on its own ("Programm" from "Atomprogramm"); for an n-gram, the word it is from.
    pub surface: String,
}

/// Turns text into terms. `Send + Sync`; share it behind an `Arc`.
pub struct Analyzer {
    config: AnalyzerConfig,
    lexicon: Lexicon,
    stemmers: Stemmers,
}

impl fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .field("lexicon_len", &self.lexicon.len())
            .finish_non_exhaustive()
    }
}

impl Analyzer {
    /// An analyser with the given settings and corpus lexicon (used for compound splitting and
    /// for rebuilding truncated compounds; may be empty).
    pub fn new(config: AnalyzerConfig, lexicon: Lexicon) -> Self {
        Self {
            config,
            lexicon,
            stemmers: Stemmers::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    /// The corpus lexicon.
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// Appends the terms of `text` to `out`, in text order (the caller reuses the buffer).
    pub fn analyze_into(&self, text: &str, lang: Lang, out: &mut Vec<Term>) {
        self.analyze_until(text, lang, None, out)
            .expect("analysis without a deadline cannot miss it");
    }

    /// Like [`Analyzer::analyze_into`], but gives up with [`Error::DeadlineExceeded`] once `deadline` has
    /// passed (checked at the first token and then every [`DEADLINE_CHECK_TOKENS`] tokens), so that a request
    /// whose caller has given up stops using the CPU.
    pub fn analyze_until(&self, text: &str, lang: Lang, deadline: Option<Instant>, out: &mut Vec<Term>) -> Result<()> {
        const DURING: &str = "while the text was analysed; the rest was skipped";
        let mut position = 0;
        let mut parts = Vec::new();
        try_for_each_token(text, lang, self.config.keep_numbers, |surface, completion| {
            if position % DEADLINE_CHECK_TOKENS == 0 {
                check_deadline(deadline, DURING)?;
            }
            position += 1;
            self.analyze_token_with(surface, completion, lang, &mut parts, out);
            Ok(())
        })
    }

    /// Appends the terms of one token, as [`for_each_token`] gives it, to `out`: exactly what
    /// [`Analyzer::analyze_into`] gives for that token in a text. The terms depend on nothing but the
    /// token, its completion and the language, which lets a corpus fit analyse each distinct token once.
    pub fn analyze_token(&self, surface: &str, completion: Option<&str>, lang: Lang, out: &mut Vec<Term>) {
        self.analyze_token_with(surface, completion, lang, &mut Vec::new(), out);
    }

    fn analyze_token_with(
        &self,
        surface: &str,
        completion: Option<&str>,
        lang: Lang,
        parts: &mut Vec<Range<usize>>,
        out: &mut Vec<Term>,
    ) {
        let mut lower = String::with_capacity(surface.len());
        lowercase_into(surface, &mut lower);
        if !self.is_stop_word(surface, &lower, lang) {
            self.push_word(surface, &lower, lang, parts, out);
        }
        if let Some(completion) = completion {
            self.push_completed(surface, &lower, completion, lang, out);
        }
    }

    /// The terms of `text`.
    pub fn analyze(&self, text: &str, lang: Lang) -> Vec<Term> {
        let mut terms = Vec::new();
        self.analyze_into(text, lang, &mut terms);
        terms
    }

    fn is_stop_word(&self, surface: &str, lower: &str, lang: Lang) -> bool {
        self.config.stop_words && is_stop_word(surface, lower, lang)
    }

    /// Pushes the terms of one word: itself, then (German) its compound parts and n-grams.
    fn push_word(&self, surface: &str, lower: &str, lang: Lang, parts: &mut Vec<Range<usize>>, out: &mut Vec<Term>) {
        self.push_term(lower, surface.to_owned(), lang, out);
        if lang != Lang::De || !lower.chars().all(char::is_alphabetic) {
            return;
        }
        let compounds = self.config.compounds;
        if compounds.splits() && decompound::split(lower, &self.lexicon, self.config.min_part_len, parts) {
            for range in parts.iter() {
                let part = &lower[range.clone()];
                let part_surface = standalone_surface(surface, part_surface(surface, lower, range));
                if !self.is_stop_word(&part_surface, part, lang) {
                    self.push_term(part, part_surface, lang, out);
                }
            }
        }
        if compounds.ngrams() {
            for ngram in decompound::ngrams(lower, self.config.ngram_len) {
                out.push(Term {
                    key: format!("{NGRAM_PREFIX}{ngram}"),
                    surface: surface.to_owned(),
                });
            }
        }
    }

    /// Pushes the compound a truncated word stands for: "Raketen" completed by
    /// "Nuklearprogrammen" is "Raketenprogrammen".
    fn push_completed(&self, surface: &str, lower: &str, completion: &str, lang: Lang, out: &mut Vec<Term>) {
        let mut completion_lower = String::new();
        lowercase_into(completion, &mut completion_lower);
        let Some(head) = decompound::head_start(&completion_lower, &self.lexicon, self.config.min_part_len) else {
            return;
        };
        let head_range = head..completion_lower.len();
        let head_surface = part_surface(completion, &completion_lower, &head_range);
        let compound = format!("{lower}{}", &completion_lower[head_range]);
        self.push_term(&compound, format!("{surface}{head_surface}"), lang, out);
    }

    /// Pushes a term for the lower-cased `word`, stemmed if configured.
    fn push_term(&self, word: &str, surface: String, lang: Lang, out: &mut Vec<Term>) {
        let key = if self.config.stem {
            self.stemmers.stem(word, lang)
        } else {
            word.into()
        };
        if !key.is_empty() {
            out.push(Term {
                key: key.into_owned(),
                surface,
            });
        }
    }
}

/// Calls `token(surface, completion)` for every token of `text` in order, as analysis sees them: the word
/// as written in the normalised text and, for a truncated German compound, the word completing it.
pub fn for_each_token(text: &str, lang: Lang, keep_numbers: bool, mut token: impl FnMut(&str, Option<&str>)) {
    let Ok(()) = try_for_each_token::<Infallible>(text, lang, keep_numbers, |surface, completion| {
        token(surface, completion);
        Ok(())
    });
}

/// Like [`for_each_token`], stopping at the first error of `token`.
fn try_for_each_token<E>(
    text: &str,
    lang: Lang,
    keep_numbers: bool,
    mut token: impl FnMut(&str, Option<&str>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut normalized = String::with_capacity(text.len());
    normalize(text, &mut normalized);
    let mut tokens: Vec<Token> = Vec::new();
    tokenize(&normalized, lang, keep_numbers, &mut tokens);
    for found in &tokens {
        let completion = found.completion.clone().map(|range| &normalized[range]);
        token(&normalized[found.range.clone()], completion)?;
    }
    Ok(())
}

/// The characters of `surface` that the byte `range` of its lower-cased form `lower` covers;
/// the lower-cased characters if lower-casing changed the number of characters.
fn part_surface<'a>(surface: &'a str, lower: &'a str, range: &Range<usize>) -> &'a str {
    if surface.chars().count() != lower.chars().count() {
        return &lower[range.clone()];
    }
    let first = lower[..range.start].chars().count();
    let len = lower[range.clone()].chars().count();
    let byte_offset = |char_index: usize| {
        surface
            .char_indices()
            .nth(char_index)
            .map_or(surface.len(), |(offset, _)| offset)
    };
    &surface[byte_offset(first)..byte_offset(first + len)]
}

/// A compound part as written on its own: capitalised if the compound is ("Atomprogramm" →
/// "Programm"), since the parts of a German noun compound are nouns.
fn standalone_surface(compound: &str, part: &str) -> String {
    let capitalised = compound.chars().next().is_some_and(char::is_uppercase);
    let mut chars = part.chars();
    match chars.next() {
        Some(first) if capitalised && first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => part.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn lexicon() -> Lexicon {
        let mut lexicon = Lexicon::new();
        for (word, count) in [
            ("atom", 40),
            ("programm", 120),
            ("programmen", 15),
            ("nuklear", 10),
            ("raketen", 25),
            ("bund", 80),
            ("regierung", 300),
            ("land", 50),
            ("fuhr", 3),
            ("aus", 500),
            ("verantwortung", 120),
            ("verant", 2),
            ("wortung", 1),
            ("über", 400),
            ("wachung", 2),
        ] {
            lexicon.add_word(word, count);
        }
        lexicon
    }

    fn analyzer_with(compounds: CompoundMode) -> Analyzer {
        let config = AnalyzerConfig {
            compounds,
            ..AnalyzerConfig::default()
        };
        Analyzer::new(config, lexicon())
    }

    fn keys(analyzer: &Analyzer, text: &str, lang: Lang) -> Vec<String> {
        analyzer.analyze(text, lang).into_iter().map(|term| term.key).collect()
    }

    /// Whether every term of `query` is also a term of `text`.
    fn matches_all(analyzer: &Analyzer, text: &str, query: &str) -> bool {
        let text_keys = keys(analyzer, text, Lang::De);
        keys(analyzer, query, Lang::De)
            .iter()
            .all(|key| text_keys.contains(key))
    }

    #[test]
    fn lang_from_code() {
        for code in ["de", "DE", "de-AT", "de_CH", "deu", "ger", "german", " German "] {
            assert_eq!(Lang::from_code(code), Lang::De, "{code}");
        }
        for code in ["en", "EN", "en-GB", "en_US", "eng", "english"] {
            assert_eq!(Lang::from_code(code), Lang::En, "{code}");
        }
        for code in ["", "fr", "d", "deutschland", "-", "ελ", "de🙂"] {
            assert_eq!(Lang::from_code(code), Lang::Other, "{code}");
        }
    }

    #[test]
    fn english_pipeline() {
        let analyzer = analyzer_with(CompoundMode::Split);
        assert_eq!(
            keys(&analyzer, "Britain's elections: we don't know, the U.S. said", Lang::En),
            ["britain", "elect", "know", "us", "said"]
        );
    }

    #[test]
    fn german_pipeline_without_compounds() {
        let analyzer = analyzer_with(CompoundMode::Off);
        assert_eq!(
            keys(
                &analyzer,
                "Die Nato-Generalsekretärin sprach über das Jahr 2024",
                Lang::De
            ),
            ["nato", "generalsekretarin", "sprach", "jahr", "2024"]
        );
    }

    #[test]
    fn a_narrow_no_break_space_separates_words() {
        // Found by the property test below: UAX #29 keeps U+202F inside a word.
        let analyzer = analyzer_with(CompoundMode::Off);
        assert_eq!(
            keys(&analyzer, "Nato\u{202F}Gipfel in\u{202F}Berlin", Lang::De),
            ["nato", "gipfel", "berlin"]
        );
    }

    #[test]
    fn compounds_match_their_parts() {
        let analyzer = analyzer_with(CompoundMode::Split);
        assert!(matches_all(&analyzer, "Das Atomprogramm", "Programm"));
        assert!(matches_all(&analyzer, "Das Atomprogramm", "Atom"));
        assert!(matches_all(&analyzer, "Die Bundesregierung", "Regierung"));
        assert!(matches_all(&analyzer, "Die Bundesregierung", "Bund"));
        assert!(!matches_all(&analyzer, "Die Verantwortung", "Wortung"));
        let without_lexicon = Analyzer::new(AnalyzerConfig::default(), Lexicon::new());
        assert!(!matches_all(&without_lexicon, "Das Atomprogramm", "Programm"));
        let off = analyzer_with(CompoundMode::Off);
        assert!(!matches_all(&off, "Das Atomprogramm", "Programm"));
    }

    #[test]
    fn compound_part_surfaces_read_like_words() {
        let analyzer = analyzer_with(CompoundMode::Split);
        let terms = analyzer.analyze("Bundesregierung", Lang::De);
        let surfaces: Vec<&str> = terms.iter().map(|term| term.surface.as_str()).collect();
        assert_eq!(surfaces, ["Bundesregierung", "Bund", "Regierung"]);
    }

    #[test]
    fn stop_word_parts_are_dropped() {
        let mut lexicon = lexicon();
        lexicon.add_word("wachung", 1000);
        let analyzer = Analyzer::new(AnalyzerConfig::default(), lexicon);
        assert_eq!(keys(&analyzer, "Überwachung", Lang::De), ["uberwach", "wachung"]);
    }

    #[test]
    fn truncated_compounds_are_rebuilt() {
        let text = "Sanktionen gegen die Raketen- und Nuklearprogrammen";
        for mode in [CompoundMode::Off, CompoundMode::Split] {
            let analyzer = analyzer_with(mode);
            assert!(matches_all(&analyzer, text, "Raketenprogramm"), "{mode:?}");
            assert!(matches_all(&analyzer, text, "Nuklearprogramm"), "{mode:?}");
        }
        let analyzer = analyzer_with(CompoundMode::Split);
        let terms = analyzer.analyze("Raketen- und Nuklearprogrammen", Lang::De);
        assert!(terms.contains(&Term {
            key: "raketenprogramm".into(),
            surface: "Raketenprogrammen".into(),
        }));
    }

    #[test]
    fn truncated_stop_word_is_still_completed() {
        let config = AnalyzerConfig {
            min_part_len: 3,
            ..AnalyzerConfig::default()
        };
        let analyzer = Analyzer::new(config, lexicon());
        let keys = keys(&analyzer, "Ein- und Ausfuhr", Lang::De);
        assert!(keys.contains(&"einfuhr".to_owned()), "{keys:?}");
        assert!(!keys.contains(&"ein".to_owned()), "{keys:?}");
    }

    #[test]
    fn ngrams_are_prefixed_and_german_only() {
        let analyzer = analyzer_with(CompoundMode::NGrams);
        let german = keys(&analyzer, "Atomprogramm", Lang::De);
        assert_eq!(german[0], "atomprogramm");
        assert_eq!(
            german[1..],
            [
                "#atom", "#tomp", "#ompr", "#mpro", "#prog", "#rogr", "#ogra", "#gram", "#ramm"
            ]
        );
        assert_eq!(keys(&analyzer, "Atomprogramm", Lang::En), ["atomprogramm"]);
        let both = keys(&analyzer_with(CompoundMode::SplitAndNGrams), "Atomprogramm", Lang::De);
        assert_eq!(both[..3], ["atomprogramm", "atom", "programm"]);
        assert_eq!(both.len(), 3 + 9);
    }

    #[test]
    fn other_languages_are_only_lower_cased() {
        let analyzer = analyzer_with(CompoundMode::Split);
        assert_eq!(
            keys(&analyzer, "Les élections à Paris", Lang::Other),
            ["les", "élections", "paris"]
        );
    }

    #[test]
    fn settings_switch_stages_off() {
        let config = AnalyzerConfig {
            stem: false,
            stop_words: false,
            keep_numbers: true,
            ..AnalyzerConfig::default()
        };
        let analyzer = Analyzer::new(config, Lexicon::new());
        assert_eq!(
            keys(&analyzer, "The elections in 3 states", Lang::En),
            ["the", "elections", "in", "3", "states"]
        );
    }

    #[test]
    fn analysis_stops_once_its_deadline_has_passed() {
        let analyzer = analyzer_with(CompoundMode::Split);
        let text = "Gewerkschaft fordert Transparenz ".repeat(10_000);
        let mut terms = Vec::new();
        let passed = Some(Instant::now());
        let err = analyzer.analyze_until(&text, Lang::De, passed, &mut terms).unwrap_err();
        assert!(matches!(err, crate::error::Error::DeadlineExceeded(_)), "{err}");
        assert!(terms.len() < DEADLINE_CHECK_TOKENS, "kept analysing after the deadline");
        let later = Some(Instant::now() + std::time::Duration::from_secs(60));
        analyzer.analyze_until(&text, Lang::De, later, &mut terms).unwrap();
        assert!(terms.len() > 10_000);
    }

    #[test]
    fn analyze_into_appends() {
        let analyzer = analyzer_with(CompoundMode::Split);
        let mut out = analyzer.analyze("Regierung", Lang::De);
        analyzer.analyze_into("Atom", Lang::De, &mut out);
        let keys: Vec<&str> = out.iter().map(|term| term.key.as_str()).collect();
        assert_eq!(keys, ["regier", "atom"]);
    }

    #[test]
    fn never_panics_on_nasty_input() {
        let long_word = "Donaudampfschifffahrtsgesellschaftskapitän".repeat(50);
        let nasty = [
            "",
            " ",
            "...,;!?-–—",
            "-",
            "- - -",
            "'s",
            "''''",
            "Raketen-",
            "Raketen- und",
            "Raketen- und -",
            "und- oder-",
            "🙂🙃 👨‍👩‍👧 🇩🇪",
            "مرحبا بالعالم",
            "שלום עולם",
            "\u{202E}gnirts desrever\u{202C}",
            "e\u{301}\u{301}\u{301} \u{301}\u{302}\u{303}",
            "Z\u{0351}\u{0358}a\u{0362}l\u{0334}g\u{0335}o",
            "\u{0}\u{1}\u{7}\t\r\n\u{1B}[31m",
            "\u{AD}\u{AD}\u{200B}\u{FEFF}",
            "İstanbul İİİİİİİİİİ ǅemal",
            "ẞẞẞẞẞẞẞẞẞ STRAẞENBAHN",
            "漢字かなカナ한국어",
            "1.2.3.4 12:30 1,000,000 ½ ² ٣",
            "a.b.c.d.e.f U.S.-Präsident z.B.",
            "Bürger:innen Bürger*innen Bürger·innen",
            "\u{FFFD}\u{FFFF}",
            long_word.as_str(),
        ];
        let mut configs = Vec::new();
        for compounds in [
            CompoundMode::Off,
            CompoundMode::Split,
            CompoundMode::NGrams,
            CompoundMode::SplitAndNGrams,
        ] {
            for (min_part_len, ngram_len) in [(0, 0), (1, 1), (4, 4), (100, 100)] {
                configs.push(AnalyzerConfig {
                    compounds,
                    min_part_len,
                    ngram_len,
                    keep_numbers: min_part_len == 1,
                    ..AnalyzerConfig::default()
                });
            }
        }
        let mut lexicon = lexicon();
        for text in nasty {
            lexicon.add_text(text, Lang::De);
        }
        for config in configs {
            let analyzer = Analyzer::new(config, lexicon.clone());
            for text in nasty {
                for lang in [Lang::De, Lang::En, Lang::Other] {
                    for term in analyzer.analyze(text, lang) {
                        assert!(!term.key.is_empty() && !term.surface.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn config_round_trips_through_serde() {
        let config = AnalyzerConfig {
            compounds: CompoundMode::SplitAndNGrams,
            ..AnalyzerConfig::default()
        };
        let bytes = postcard::to_stdvec(&config).unwrap();
        assert_eq!(postcard::from_bytes::<AnalyzerConfig>(&bytes).unwrap(), config);
    }

    #[test]
    fn analyzer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Analyzer>();
    }

    /// Text that exercises the German paths (umlauts, ß, hyphens, apostrophes, long compounds, numbers)
    /// far more often than uniformly random strings do.
    fn newsy_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[A-Za-zÄÖÜäöüßẞ0-9 .,;:!?'’\\-–„“\"()/]{0,120}",
            "(Atom|programm|Bundes|regierung|Raketen|über|wachung|Land|fuhr|aus|-| ){0,30}",
            "[\\p{L}\\p{M}\\p{N}\\p{P}\\p{Z}\\p{C}]{0,60}",
        ]
    }

    fn any_lang() -> impl Strategy<Value = Lang> {
        prop_oneof![Just(Lang::De), Just(Lang::En), Just(Lang::Other)]
    }

    fn any_compound_mode() -> impl Strategy<Value = CompoundMode> {
        prop_oneof![
            Just(CompoundMode::Off),
            Just(CompoundMode::Split),
            Just(CompoundMode::NGrams),
            Just(CompoundMode::SplitAndNGrams),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        #[test]
        fn arbitrary_text_never_panics_and_yields_clean_terms(
            text in newsy_text(),
            lang in any_lang(),
            compounds in any_compound_mode(),
        ) {
            let analyzer = analyzer_with(compounds);
            let terms = analyzer.analyze(&text, lang);
            for term in &terms {
                prop_assert!(!term.key.is_empty(), "empty key from {:?}", text);
                prop_assert!(!term.key.chars().any(char::is_whitespace), "{:?} from {:?}", term.key, text);
                prop_assert!(!term.surface.is_empty());
            }
            let mut reused = vec![Term { key: "x".into(), surface: "x".into() }];
            analyzer.analyze_into(&text, lang, &mut reused);
            prop_assert_eq!(&reused[1..], &terms[..], "analysis is not deterministic");
        }
    }
}
