//! Is this candidate the same text as the source, or as a better story in the block? A near-copy test on
//! the words of an article, not on its TF-IDF vector: two outlets' wordings of one event are close in
//! TF-IDF (a cosine of 0.9 on headlines is common) but are different articles a reader may want, while a
//! syndicated copy is the same text with a site name on its title.
//!
//! **What is compared.** The title with a site suffix taken off ([`strip_site_suffix`]: " - WELT",
//! " | LatestLY", " | The China Post, Taiwan"), then the body; both lower-cased and cut into words at
//! every character that is not alphanumeric. The article is its *set of words* (one-word shingles), and
//! two articles are copies when the Jaccard similarity of their sets reaches [`COPY_JACCARD`].
//!
//! **Why word sets and 0.7.** Measured on the same-story title pairs of og2021-titles (German, English)
//! and uci-news-stories, with the evaluation's own copy test (raw word sets, Jaccard ≥ 0.8) as the
//! copies to catch. A first run (exact duplicates kept, a looser suffix rule; 3,008 / 39,149 / 233,813
//! pairs that are not byte-identical) compared shingle lengths at threshold 0.7: word sets missed 11 of 97
//! German, 0 of 1,385 English and 1 of 245 UCI copies, word pairs 18 / 456 / 109 and word triples
//! 20 / 557 / 143 — on a ten-word headline one changed word breaks two or three shingles. The misses of
//! word sets were the suffix rule cutting the second half of dpa headlines ("… - Chance auf Bronze"),
//! hence [`name_like`]. With it, over the corpora as evaluated (exact copies dropped, stories capped at
//! 150 articles; 1,926 / 26,229 / 280,512 pairs), word sets at 0.7 miss 0 of 32, 0 of 421 and 1 of 270
//! copies ("UPDATE 1-BoE's Carney says …") and flag 5.2 %, 5.9 % and 0.4 % of the same-story pairs —
//! headlines that differ by a kicker, a word or a site name. On long bodies word sets are conservative:
//! two different articles of several hundred words rarely share 70 % of their vocabulary.
//!
//! **Why a bottom-k sketch.** A signature keeps the [`SIGNATURE_LEN`] smallest 32-bit hashes of the word
//! set (a bottom-k MinHash sketch, 128 bytes). Two sketches give the Jaccard estimate of the k smallest
//! hashes of the union, and when both sets have at most k words — every headline — the estimate *is* the
//! exact Jaccard similarity. Longer texts get the usual MinHash error (±0.08 at 0.7 for k = 32), far from
//! the gap between copies (near 1) and different articles (below 0.4). SimHash (8 bytes) was not taken:
//! one word of a ten-word headline flips many of its bits, so a Hamming threshold cannot separate a
//! changed word from a paraphrase. Signatures are computed once, when an article is indexed or upserted;
//! a query compares stored ones (a merge of two sorted arrays, no allocation).

use rayon::prelude::*;

use crate::article::Article;

/// Hashes kept per signature.
pub const SIGNATURE_LEN: usize = 32;

/// Word-set Jaccard similarity from which two articles are copies of one text (see the module docs).
pub const COPY_JACCARD: f32 = 0.7;

/// Padding of a signature whose text has fewer than [`SIGNATURE_LEN`] distinct words; no word hashes to it.
const EMPTY: u32 = u32::MAX;

/// Longest site suffix taken off a title, in words and in bytes.
const SUFFIX_MAX_WORDS: usize = 6;
const SUFFIX_MAX_BYTES: usize = 40;
/// Fewest words a title must keep before its suffix for the suffix to be taken off.
const HEAD_MIN_WORDS: usize = 3;
/// Separators between a headline and a site name.
const SUFFIX_SEPARATORS: [&str; 4] = [" - ", " | ", " – ", " — "];

/// The bottom-k sketch of an article's word set: the smallest hashes, ascending, padded with [`EMPTY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopySignature(pub [u32; SIGNATURE_LEN]);

impl CopySignature {
    /// The signature of an article's title (site suffix taken off) and body.
    pub fn of(title: &str, body: &str) -> Self {
        // The smallest distinct hashes so far, ascending; every word hashes below the EMPTY padding, so a
        // hash not below the last slot is not among the smallest (most of a long body's, once it is full).
        let mut signature = [EMPTY; SIGNATURE_LEN];
        for hash in words(strip_site_suffix(title)).chain(words(body)) {
            if hash >= signature[SIGNATURE_LEN - 1] {
                continue;
            }
            if let Err(at) = signature.binary_search(&hash) {
                signature.copy_within(at..SIGNATURE_LEN - 1, at + 1);
                signature[at] = hash;
            }
        }
        Self(signature)
    }

    /// The signature of a stored article.
    pub fn of_article(article: &Article) -> Self {
        Self::of(&article.title, &article.body)
    }
}

/// Estimated Jaccard similarity of the word sets behind two signatures (exact when both have at most
/// [`SIGNATURE_LEN`] words); 0 when both texts have no words.
pub fn jaccard(a: &[u32], b: &[u32]) -> f32 {
    let (mut i, mut j, mut union, mut both) = (0, 0, 0usize, 0usize);
    while union < SIGNATURE_LEN {
        let x = a.get(i).copied().filter(|&hash| hash != EMPTY);
        let y = b.get(j).copied().filter(|&hash| hash != EMPTY);
        match (x, y) {
            (None, None) => break,
            (Some(_), None) => i += 1,
            (None, Some(_)) => j += 1,
            (Some(x), Some(y)) if x == y => {
                both += 1;
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => i += 1,
            (Some(_), Some(_)) => j += 1,
        }
        union += 1;
    }
    if union == 0 { 0.0 } else { both as f32 / union as f32 }
}

/// True when the texts behind two signatures are copies of one another ([`COPY_JACCARD`]).
pub fn are_copies(a: &[u32], b: &[u32]) -> bool {
    jaccard(a, b) >= COPY_JACCARD
}

/// The title without a trailing site name: the part after the last " - ", " | ", " – " or " — " when
/// it looks like a name — at most six words and 40 bytes, every word capitalised, a number, a domain
/// ("svz.de") or a particle of at most two letters ("Noticias de Bolivia y el Mundo") — and at least
/// three words stand before it ("Biles zieht sich zurück - WELT" → "Biles zieht sich zurück"). The
/// second half of a headline stays ("Schröder will nach Tokio", "Chance auf Bronze"), and so does the
/// ending of a short title ("Tag 3 - Ergebnisse").
pub fn strip_site_suffix(title: &str) -> &str {
    let title = title.trim_end();
    let cut = SUFFIX_SEPARATORS
        .iter()
        .filter_map(|separator| title.rfind(separator).map(|at| (at, at + separator.len())))
        .max();
    let Some((head_end, tail_start)) = cut else {
        return title;
    };
    let (head, tail) = (&title[..head_end], &title[tail_start..]);
    let suffix_like = tail.len() <= SUFFIX_MAX_BYTES
        && tail.split_whitespace().count() <= SUFFIX_MAX_WORDS
        && tail.split_whitespace().all(name_like);
    if suffix_like && head.split_whitespace().count() >= HEAD_MIN_WORDS {
        head
    } else {
        title
    }
}

/// True for a word that can be part of a site's name: capitalised, a number, a domain, a particle of at
/// most two letters, or no letters at all ("+", "24").
fn name_like(word: &str) -> bool {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let first = word.chars().find(|c| c.is_alphanumeric());
    letters <= 2 || word.contains('.') || first.is_none_or(|c| c.is_uppercase() || c.is_numeric())
}

/// The hash of each word of `text`: maximal runs of alphanumeric characters, lower-cased while hashed.
fn words(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(hash_word)
}

/// FNV-1a over the lower-cased UTF-8 bytes, then a SplitMix64 finaliser; stable across builds, since
/// signatures are stored in snapshots.
fn hash_word(word: &str) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut add = |byte: u8| hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    if word.is_ascii() {
        // The same bytes as below, without decoding characters (most words of German and English news).
        word.bytes().for_each(|byte| add(byte.to_ascii_lowercase()));
    } else {
        let mut buffer = [0u8; 4];
        for c in word.chars().flat_map(char::to_lowercase) {
            c.encode_utf8(&mut buffer).bytes().for_each(&mut add);
        }
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    ((hash >> 32) as u32).min(EMPTY - 1)
}

/// Every article's signature, slot order, as one flat array of [`SIGNATURE_LEN`] hashes per article.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignatureTable {
    values: crate::flat_file::FlatArray<u32>,
}

impl SignatureTable {
    /// The signatures of `articles`, computed on all cores.
    pub fn of_articles(articles: &[Article]) -> Self {
        let signatures: Vec<CopySignature> = articles.par_iter().map(CopySignature::of_article).collect();
        signatures.into_iter().collect()
    }

    /// A table over stored hashes (a multiple of [`SIGNATURE_LEN`] long).
    pub fn from_flat(values: crate::flat_file::FlatArray<u32>) -> Self {
        debug_assert_eq!(values.len() % SIGNATURE_LEN, 0);
        Self { values }
    }

    /// Hands the pages of a mapped table back, or maps them all ([`crate::flat_file::Residency`]).
    pub fn set_residency(&self, residency: crate::flat_file::Residency) -> std::io::Result<()> {
        self.values.set_residency(residency)
    }

    /// The hashes, signature after signature.
    pub fn as_flat(&self) -> &[u32] {
        &self.values
    }

    /// Signatures in the table.
    pub fn len(&self) -> usize {
        self.values.len() / SIGNATURE_LEN
    }

    /// True when the table holds no signature.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The signature of the article in row `row`.
    pub fn get(&self, row: usize) -> &[u32] {
        &self.values[row * SIGNATURE_LEN..(row + 1) * SIGNATURE_LEN]
    }

    /// Appends a signature.
    pub fn push(&mut self, signature: &[u32]) {
        debug_assert_eq!(signature.len(), SIGNATURE_LEN);
        self.values.to_mut().extend_from_slice(signature);
    }
}

impl<'a> FromIterator<&'a [u32]> for SignatureTable {
    fn from_iter<I: IntoIterator<Item = &'a [u32]>>(signatures: I) -> Self {
        let mut values = Vec::new();
        for signature in signatures {
            values.extend_from_slice(signature);
        }
        Self { values: values.into() }
    }
}

impl FromIterator<CopySignature> for SignatureTable {
    fn from_iter<I: IntoIterator<Item = CopySignature>>(signatures: I) -> Self {
        let mut values = Vec::new();
        for signature in signatures {
            values.extend_from_slice(&signature.0);
        }
        Self { values: values.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn similarity(a: (&str, &str), b: (&str, &str)) -> f32 {
        jaccard(&CopySignature::of(a.0, a.1).0, &CopySignature::of(b.0, b.1).0)
    }

    proptest::proptest! {
        #[test]
        fn a_signature_holds_the_smallest_distinct_word_hashes(
            title in "[a-eA-E ä-]{0,40}",
            body in "[a-zA-Z0-9 äöüß.,-]{0,600}",
        ) {
            let mut hashes: Vec<u32> = words(strip_site_suffix(&title)).chain(words(&body)).collect();
            hashes.sort_unstable();
            hashes.dedup();
            let mut expected = [EMPTY; SIGNATURE_LEN];
            for (slot, hash) in expected.iter_mut().zip(hashes) {
                *slot = hash;
            }
            proptest::prop_assert_eq!(CopySignature::of(&title, &body), CopySignature(expected));
        }
    }

    #[test]
    fn word_hashes_stay_as_stored_in_snapshots() {
        // FNV-1a of the lower-cased UTF-8 bytes and the SplitMix64 finaliser, computed independently.
        let expected = [
            ("Bundestag", 3_946_723_218),
            ("STRASSE", 2_042_177_482),
            ("Größe", 3_197_139_393),
            ("Ärger", 2_944_511_868),
        ];
        for (word, hash) in expected {
            assert_eq!(hash_word(word), hash, "{word}");
        }
    }

    #[test]
    fn site_suffixes_come_off_and_short_endings_stay() {
        assert_eq!(
            strip_site_suffix("Simone Biles zieht sich zurück - WELT"),
            "Simone Biles zieht sich zurück"
        );
        assert_eq!(
            strip_site_suffix("India wins bronze in hockey | LatestLY"),
            "India wins bronze in hockey"
        );
        assert_eq!(
            strip_site_suffix("Japan tops medal table | The China Post, Taiwan"),
            "Japan tops medal table"
        );
        assert_eq!(strip_site_suffix("Tag 3 - Ergebnisse"), "Tag 3 - Ergebnisse");
        assert_eq!(
            strip_site_suffix("Judoka verliert Viertelfinale - Chance auf Bronze | svz.de"),
            "Judoka verliert Viertelfinale - Chance auf Bronze"
        );
        assert_eq!(
            strip_site_suffix("Copa: Argentina vence a Brasil | Noticias de Bolivia y el Mundo"),
            "Copa: Argentina vence a Brasil"
        );
        // The second half of a headline is not a site name.
        for headline in [
            "Basketballer feiern in Split - Schröder will nach Tokio",
            "Judoka Ressel verliert Viertelfinale - Chance auf Bronze",
        ] {
            assert_eq!(strip_site_suffix(headline), headline);
        }
        let long_tail = "Olympia - die Schwimmerin gewinnt nach einem dramatischen Rennen ihre zweite Medaille";
        assert_eq!(strip_site_suffix(long_tail), long_tail);
    }

    #[test]
    fn a_syndicated_copy_is_a_copy_and_a_paraphrase_is_not() {
        let original = ("Simone Biles zieht sich aus dem Mehrkampf-Finale zurück", "");
        let syndicated = ("Simone Biles zieht sich aus dem Mehrkampf-Finale zurück - WELT", "");
        let paraphrase = ("Turn-Star Biles verzichtet auch auf das Mehrkampf-Finale", "");
        // A kicker in front of the same headline, with a suffix behind the other: still one text.
        let kicker = ("Judoka Ressel verliert Viertelfinale - Chance auf Bronze - WELT", "");
        let plain = ("Olympia: Judoka Ressel verliert Viertelfinale - Chance auf Bronze", "");
        assert!(
            similarity(kicker, plain) >= COPY_JACCARD,
            "{}",
            similarity(kicker, plain)
        );
        assert_eq!(similarity(original, syndicated), 1.0);
        assert!(are_copies(
            &CopySignature::of(original.0, original.1).0,
            &CopySignature::of(syndicated.0, syndicated.1).0
        ));
        assert!(
            similarity(original, paraphrase) < 0.3,
            "{}",
            similarity(original, paraphrase)
        );
    }

    #[test]
    fn short_texts_get_the_exact_jaccard_similarity() {
        // {a b c d e} and {a b c d f}: 4 shared of 6.
        assert!((similarity(("A b, c", "d e"), ("a B c d", "F")) - 4.0 / 6.0).abs() < 1e-6);
        assert_eq!(similarity(("", ""), ("", "")), 0.0);
        assert_eq!(similarity(("Wort", ""), ("", "")), 0.0);
    }

    #[test]
    fn long_copies_are_copies_and_long_different_texts_are_not() {
        let text: Vec<String> = (0..400).map(|i| format!("wort{i}")).collect();
        let body = text.join(" ");
        let edited = format!("{} neu hinzugefügt", text[..390].join(" "));
        let other: Vec<String> = (200..600).map(|i| format!("wort{i}")).collect();
        let estimate = similarity(("Titel", &body), ("Titel", &edited));
        assert!(estimate >= COPY_JACCARD, "{estimate}");
        let estimate = similarity(("Titel", &body), ("Titel", &other.join(" ")));
        assert!(estimate < COPY_JACCARD, "{estimate}");
    }

    #[test]
    fn the_table_keeps_one_row_per_article() {
        let mut table: SignatureTable = [CopySignature::of("a b", ""), CopySignature::of("c", "")]
            .into_iter()
            .collect();
        table.push(&CopySignature::of("a b", "").0);
        assert_eq!(table.len(), 3);
        assert_eq!(table.get(0), table.get(2));
        assert_ne!(table.get(0), table.get(1));
    }
}
