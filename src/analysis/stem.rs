//! Stemming: map inflected forms to one index term ("Programmen", "Programme" → "programm").
//!
//! Snowball stemmers from `rust-stemmers` for German and English; other languages are left
//! unstemmed. A `rust_stemmers::Stemmer` is a plain function pointer (no state, `Send + Sync`),
//! so one per language is created with the analyser and shared by all threads. The German
//! stemmer also folds "ß" to "ss" and umlauts to their base vowels.

use std::borrow::Cow;

use rust_stemmers::{Algorithm, Stemmer};

use super::Lang;

/// The stemmers of the supported languages.
pub(super) struct Stemmers {
    german: Stemmer,
    english: Stemmer,
}

impl Stemmers {
    pub(super) fn new() -> Self {
        Self {
            german: Stemmer::create(Algorithm::German),
            english: Stemmer::create(Algorithm::English),
        }
    }

    /// The stem of the lower-cased `word` in `lang`; the word itself for [`Lang::Other`].
    pub(super) fn stem<'a>(&self, word: &'a str, lang: Lang) -> Cow<'a, str> {
        match lang {
            Lang::De => self.german.stem(word),
            Lang::En => self.english.stem(word),
            Lang::Other => Cow::Borrowed(word),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stemmers_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Stemmers>();
    }

    #[test]
    fn stems_german_and_english() {
        let stemmers = Stemmers::new();
        assert_eq!(stemmers.stem("programmen", Lang::De), "programm");
        assert_eq!(stemmers.stem("programme", Lang::De), "programm");
        assert_eq!(stemmers.stem("straße", Lang::De), "strass");
        assert_eq!(stemmers.stem("elections", Lang::En), "elect");
        assert_eq!(stemmers.stem("elections", Lang::Other), "elections");
    }
}
