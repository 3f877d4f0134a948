//! Which half of a corpus may settings be tuned on? A fixed, documented dev/test split: an article's
//! story (its `story` label; its id when it has none) is hashed, and the hash's top bit puts it in the dev
//! half (0) or the test half (1). Splitting by story keeps every story whole on one side, so a setting
//! chosen on the dev stories is judged on stories it never saw. The hash is 64-bit FNV-1a followed by the
//! SplitMix64 finaliser (FNV-1a alone leaves its top bit nearly blind to the last bytes, which put all of
//! gnad10k's `gnad-test-NNNNN` ids in one half). The same function is in
//! `benches/baselines/baselines.py`, so both sides agree on every article.

use crate::article_table::ArticleRef;

/// Which sources an evaluation uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Split {
    /// Every labelled article.
    #[default]
    All,
    /// The half settings are tuned on.
    Dev,
    /// The held-back half results are reported on.
    Test,
}

impl Split {
    /// True when `article` is in this split.
    pub fn holds(self, article: ArticleRef<'_>) -> bool {
        match self {
            Split::All => true,
            Split::Dev => !in_test_half(split_key(article)),
            Split::Test => in_test_half(split_key(article)),
        }
    }

    /// The split's name, as the `--split` flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Split::All => "all",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// What decides an article's half: its story, else its id.
pub fn split_key<'a>(article: ArticleRef<'a>) -> &'a str {
    article.story.unwrap_or(article.id)
}

/// True when `key` falls in the test half: the top bit of its hash.
pub fn in_test_half(key: &str) -> bool {
    split_hash(key) >> 63 == 1
}

/// 64-bit FNV-1a of the key's UTF-8 bytes, then the SplitMix64 finaliser.
fn split_hash(key: &str) -> u64 {
    let mut z = fnv1a64(key.as_bytes());
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_the_halves_are_about_even() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        // The value baselines.py computes for "a".
        assert_eq!(split_hash("a"), 0x02c0_bdbf_4814_20f8);
        let test = (0..10_000)
            .filter(|i| in_test_half(&format!("gnad-test-{i:05}")))
            .count();
        assert!((4_700..5_300).contains(&test), "{test}");
    }

    #[test]
    fn a_story_decides_the_half_and_the_id_only_without_one() {
        let mut article = crate::article::test_article("x", "T", "");
        article.story = Some("s1".into());
        assert_eq!(split_key(article.metadata()), "s1");
        article.story = None;
        assert_eq!(split_key(article.metadata()), "x");
        assert_ne!(
            Split::Dev.holds(article.metadata()),
            Split::Test.holds(article.metadata())
        );
        assert!(Split::All.holds(article.metadata()));
    }
}
