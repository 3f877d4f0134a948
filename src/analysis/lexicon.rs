//! The corpus lexicon: how often each German word form occurs, for the compound splitter.
//!
//! A compound is split when its parts are frequent words of the corpus (see `decompound`), so
//! the lexicon counts lower-cased surface forms (not stems: the splitter looks up pieces of
//! unstemmed words). It is built once at index time, possibly in parallel with [`Lexicon::merge`],
//! pruned with [`Lexicon::finish`] and stored in the snapshot, so queries split exactly like the
//! index did.

use serde::{Deserialize, Serialize, Serializer};

use super::normalize::lowercase_into;
use super::{Lang, for_each_token};
use crate::string_table::{PositionIndex, StringTable};

/// Word frequencies of the corpus: lower-cased German surface forms and how often they occur. The words
/// live in one [`StringTable`] with a [`PositionIndex`] over it (a million-article corpus keeps about a
/// million forms: as `String` keys of a map they were a million allocations at every open).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(try_from = "StoredLexicon")]
pub struct Lexicon {
    words: StringTable,
    /// `counts[i]` is how often `words.get(i)` occurs.
    counts: Vec<u32>,
    index: PositionIndex,
}

/// The lexicon as the snapshot stores it: words in sorted order, so that equal lexicons give byte-equal
/// snapshots, with their counts.
#[derive(Serialize, Deserialize)]
struct StoredLexicon {
    words: StringTable,
    counts: Vec<u32>,
}

impl TryFrom<StoredLexicon> for Lexicon {
    type Error = String;

    fn try_from(stored: StoredLexicon) -> Result<Self, String> {
        if stored.words.len() != stored.counts.len() {
            return Err(format!(
                "{} words with {} counts",
                stored.words.len(),
                stored.counts.len()
            ));
        }
        let index = PositionIndex::build(stored.words.len(), |position| stored.words.get(position));
        if index.len() != stored.words.len() {
            return Err("a word is listed twice".into());
        }
        Ok(Self {
            words: stored.words,
            counts: stored.counts,
            index,
        })
    }
}

impl Serialize for Lexicon {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_unstable_by_key(|&position| self.words.get(position));
        StoredLexicon {
            words: order.iter().map(|&position| self.words.get(position)).collect(),
            counts: order.iter().map(|&position| self.counts[position]).collect(),
        }
        .serialize(serializer)
    }
}

impl PartialEq for Lexicon {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(word, count)| other.count(word) == count)
    }
}

impl Eq for Lexicon {}

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
        match self.index.find(word, |position| self.words.get(position)) {
            Some(position) => self.counts[position] = self.counts[position].saturating_add(count),
            None => {
                let position = self.words.push(word);
                self.counts.push(count);
                self.index.insert(position, |position| self.words.get(position));
            }
        }
    }

    /// Adds the counts of `other` to this lexicon.
    pub fn merge(&mut self, mut other: Lexicon) {
        if other.len() > self.len() {
            std::mem::swap(self, &mut other);
        }
        for (word, count) in other.iter() {
            self.add_word(word, count);
        }
    }

    /// Drops word forms seen fewer than `min_count` times: rare forms are mostly typos and names
    /// and would only license nonsense splits.
    pub fn finish(self, min_count: u32) -> Lexicon {
        let mut kept = Lexicon::new();
        for (word, count) in self.iter().filter(|&(_, count)| count >= min_count) {
            kept.add_word(word, count);
        }
        kept
    }

    /// Number of distinct word forms.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether no word has been counted.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// How often the lower-cased `word` occurs; 0 if unknown.
    pub fn count(&self, word: &str) -> u32 {
        self.index
            .find(word, |position| self.words.get(position))
            .map_or(0, |position| self.counts[position])
    }

    /// Every word form with its count, in the order they were first counted.
    fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.words.iter().zip(self.counts.iter().copied())
    }
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

    #[test]
    fn a_stored_lexicon_with_repeated_words_or_missing_counts_is_refused() {
        let stored = |words: &[&str], counts: Vec<u32>| {
            let bytes = postcard::to_stdvec(&StoredLexicon {
                words: words.iter().collect(),
                counts,
            })
            .unwrap();
            postcard::from_bytes::<Lexicon>(&bytes)
        };
        assert_eq!(stored(&["atom", "bund"], vec![2, 3]).unwrap().count("bund"), 3);
        assert!(stored(&["atom", "atom"], vec![2, 3]).is_err());
        assert!(stored(&["atom", "bund"], vec![2]).is_err());
    }
}
