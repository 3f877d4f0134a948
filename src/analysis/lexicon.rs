//! The corpus lexicon: how often each German word form occurs, for the compound splitter.
//!
//! A compound is split when its parts are frequent words of the corpus (see `decompound`), so
//! the lexicon counts lower-cased surface forms (not stems: the splitter looks up pieces of
//! unstemmed words). It is built once at index time, possibly in parallel with [`Lexicon::merge`],
//! pruned with [`Lexicon::finish`] and stored in the snapshot, so queries split exactly like the
//! index did.

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize, Serializer};

use super::normalize::lowercase_into;
use super::{Lang, for_each_token};

/// Word frequencies of the corpus: lower-cased German surface forms and how often they occur.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lexicon {
    /// Serialised in sorted order so that equal lexicons give byte-equal snapshots.
    #[serde(serialize_with = "serialize_sorted")]
    counts: HashMap<String, u32>,
}

impl Lexicon {
    /// An empty lexicon.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts the words of `text` if it is German; other languages are ignored. Words are
    /// normalised and tokenised exactly as the analyser does; numbers are not counted.
    pub fn add_text(&mut self, text: &str, lang: Lang) {
        if lang != Lang::De {
            return;
        }
        for_each_token(text, lang, false, |word, _| self.add_token(word, 1));
    }

    /// Adds `count` occurrences of a German token as [`super::for_each_token`] gives it: lower-cased,
    /// and only if it has a letter.
    pub fn add_token(&mut self, token: &str, count: u32) {
        if token.chars().any(char::is_alphabetic) {
            let mut lower = String::with_capacity(token.len());
            lowercase_into(token, &mut lower);
            self.add_word(&lower, count);
        }
    }

    /// Adds `count` occurrences of `word`, which must already be normalised and lower-cased.
    pub fn add_word(&mut self, word: &str, count: u32) {
        match self.counts.get_mut(word) {
            Some(total) => *total = total.saturating_add(count),
            None => {
                self.counts.insert(word.to_owned(), count);
            }
        }
    }

    /// Adds the counts of `other` to this lexicon.
    pub fn merge(&mut self, mut other: Lexicon) {
        if other.counts.len() > self.counts.len() {
            std::mem::swap(self, &mut other);
        }
        for (word, count) in other.counts {
            let total = self.counts.entry(word).or_insert(0);
            *total = total.saturating_add(count);
        }
    }

    /// Drops word forms seen fewer than `min_count` times: rare forms are mostly typos and names
    /// and would only license nonsense splits.
    pub fn finish(mut self, min_count: u32) -> Lexicon {
        self.counts.retain(|_, count| *count >= min_count);
        self.counts.shrink_to_fit();
        self
    }

    /// Number of distinct word forms.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no word has been counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// How often the lower-cased `word` occurs; 0 if unknown.
    pub fn count(&self, word: &str) -> u32 {
        self.counts.get(word).copied().unwrap_or(0)
    }
}

fn serialize_sorted<S: Serializer>(counts: &HashMap<String, u32>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut sorted: Vec<(&String, &u32)> = counts.iter().collect();
    sorted.sort_unstable();
    serializer.collect_map(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_normalised_lower_cased_german_words() {
        let mut lexicon = Lexicon::new();
        lexicon.add_text("Das Programm, das PROGRAMM und 2024 Nato-Programme.", Lang::De);
        assert_eq!(lexicon.count("programm"), 2);
        assert_eq!(lexicon.count("das"), 2);
        assert_eq!(lexicon.count("programme"), 1);
        assert_eq!(lexicon.count("nato"), 1);
        assert_eq!(lexicon.count("2024"), 0);
        assert_eq!(lexicon.count("Programm"), 0);
    }

    #[test]
    fn ignores_other_languages() {
        let mut lexicon = Lexicon::new();
        lexicon.add_text("The programme", Lang::En);
        lexicon.add_text("Le programme", Lang::Other);
        assert!(lexicon.is_empty());
    }

    #[test]
    fn merge_adds_counts() {
        let mut left = Lexicon::new();
        left.add_text("Atom Atom Programm", Lang::De);
        let mut right = Lexicon::new();
        right.add_text("Atom Regierung Regierung Bund", Lang::De);
        left.merge(right);
        assert_eq!(left.count("atom"), 3);
        assert_eq!(left.count("regierung"), 2);
        assert_eq!(left.count("programm"), 1);
        assert_eq!(left.len(), 4);
    }

    #[test]
    fn finish_prunes_rare_forms() {
        let mut lexicon = Lexicon::new();
        lexicon.add_text("Atom Atom Programm", Lang::De);
        let lexicon = lexicon.finish(2);
        assert_eq!(lexicon.len(), 1);
        assert_eq!(lexicon.count("atom"), 2);
    }

    #[test]
    fn serialisation_is_deterministic_and_round_trips() {
        let mut lexicon = Lexicon::new();
        lexicon.add_text("Zebra Atom Mitte Bund Regierung Programm Atom", Lang::De);
        let mut rebuilt = Lexicon::new();
        rebuilt.add_text("Programm Regierung Bund Mitte Atom Zebra Atom", Lang::De);
        let bytes = postcard::to_stdvec(&lexicon).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&rebuilt).unwrap());
        let back: Lexicon = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, lexicon);
    }
}
