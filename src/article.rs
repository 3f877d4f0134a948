//! What is an article? The unit the engine stores, indexes and returns, independent of any wire format,
//! with the limits every field must keep wherever an article comes from (a file, an upsert, a draft), so
//! that no single article can buy unbounded work or an unbounded answer.

use serde::{Deserialize, Serialize};

use crate::analysis::Lang;
use crate::error::quote;

/// Longest id, in UTF-8 bytes.
pub const MAX_ID_BYTES: usize = 512;
/// Longest title (headline), in UTF-8 bytes: ten times the longest headline in the shipped corpora.
pub const MAX_TITLE_BYTES: usize = 4 << 10;
/// Longest URL, in UTF-8 bytes.
pub const MAX_URL_BYTES: usize = 4 << 10;
/// Longest section name, in UTF-8 bytes.
pub const MAX_SECTION_BYTES: usize = 256;
/// Longest language code, in UTF-8 bytes (the length BCP 47 asks implementations to support).
pub const MAX_LANG_BYTES: usize = 35;
/// Default longest body, in UTF-8 bytes: 1 MiB, far above any news article. Configurable per server.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// An instant: seconds since the Unix epoch (UTC) and nanoseconds within the second, as protobuf's
/// `Timestamp` carries it. Ordered by time; `nanos` is always below 10⁹.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    seconds: i64,
    nanos: u32,
}

impl Timestamp {
    /// The instant `seconds` after the epoch, on the second.
    pub const fn from_seconds(seconds: i64) -> Self {
        Self { seconds, nanos: 0 }
    }

    /// The instant `seconds` and `nanos` after the epoch; `nanos` must be in `0..1_000_000_000`.
    pub fn new(seconds: i64, nanos: i64) -> Result<Self, String> {
        let nanos = u32::try_from(nanos)
            .ok()
            .filter(|&nanos| nanos < 1_000_000_000)
            .ok_or_else(|| format!("nanos must be in 0..1000000000, got {nanos}"))?;
        Ok(Self { seconds, nanos })
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn seconds(self) -> i64 {
        self.seconds
    }

    /// Nanoseconds past [`Timestamp::seconds`].
    pub fn nanos(self) -> u32 {
        self.nanos
    }
}

/// A news article as stored in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Article {
    /// Caller-chosen unique id (CMS id, URL slug, …).
    pub id: String,
    /// Headline; weighted above the body when vectorised.
    pub title: String,
    /// Text without markup.
    pub body: String,
    /// Publication time, when known.
    pub published_at: Option<Timestamp>,
    /// Newsroom section ("Ausland", "Sport", …); empty when unknown.
    pub section: String,
    /// Language code as given ("de", "en", …); empty when unknown.
    pub lang: String,
    /// Canonical URL; empty when unknown.
    pub url: String,
    /// Story (event cluster) label, used only by offline evaluation.
    pub story: Option<String>,
    /// Category label, used only by offline evaluation.
    pub category: Option<String>,
}

impl Article {
    /// The language analysis uses for this article.
    pub fn analysis_lang(&self) -> Lang {
        Lang::from_code(&self.lang)
    }

    /// Why this article cannot be indexed, if it cannot: the field at fault and what is wrong with it
    /// (`"title: 5000 bytes, the limit is 4096"`), quoting at most the first 64 bytes of the input.
    pub fn rejection_reason(&self, max_body_bytes: usize) -> Option<String> {
        let fields = [
            ("title", &self.title, MAX_TITLE_BYTES, true),
            ("body", &self.body, max_body_bytes, true),
            ("url", &self.url, MAX_URL_BYTES, false),
            ("section", &self.section, MAX_SECTION_BYTES, false),
            ("lang", &self.lang, MAX_LANG_BYTES, false),
        ];
        check_id(&self.id)
            .map_err(|reason| format!("id: {reason}"))
            .and_then(|()| {
                fields.iter().try_for_each(|&(field, value, limit, control_allowed)| {
                    check_text(value, limit, control_allowed).map_err(|reason| format!("{field}: {reason}"))
                })
            })
            .err()
            .or_else(|| {
                (self.title.trim().is_empty() && self.body.trim().is_empty()).then(|| "empty title and body".to_owned())
            })
    }
}

/// Checks an article id: not empty, at most [`MAX_ID_BYTES`], no control characters and no white space
/// at either end (ids are compared exactly, so `" a-1"` and `"a-1"` would be two articles).
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty id".into());
    }
    check_text(id, MAX_ID_BYTES, false)?;
    if id.trim() != id {
        return Err(format!("white space at the start or end of {}", quote(id)));
    }
    Ok(())
}

/// Checks that `value` holds at most `limit` bytes and, unless `control_allowed`, no control characters.
pub fn check_text(value: &str, limit: usize, control_allowed: bool) -> Result<(), String> {
    if value.len() > limit {
        return Err(format!(
            "{} bytes, the limit is {limit} bytes: {}",
            value.len(),
            quote(value)
        ));
    }
    if !control_allowed {
        if let Some((at, control)) = value.char_indices().find(|(_, c)| c.is_control()) {
            return Err(format!(
                "control character U+{:04X} at byte {at}: {}",
                u32::from(control),
                quote(value)
            ));
        }
    }
    Ok(())
}

/// A German article with only id, title and body set, for unit tests.
#[cfg(test)]
pub(crate) fn test_article(id: &str, title: &str, body: &str) -> Article {
    Article {
        id: id.into(),
        title: title.into(),
        body: body.into(),
        published_at: None,
        section: String::new(),
        lang: "de".into(),
        url: String::new(),
        story: None,
        category: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_has_a_limit_and_the_reason_names_it() {
        let ok = test_article("a-1", "Titel", "Text");
        assert_eq!(ok.rejection_reason(DEFAULT_MAX_BODY_BYTES), None);
        let reason = |article: Article| article.rejection_reason(100).unwrap();
        assert!(reason(test_article("", "T", "B")).contains("empty id"));
        assert!(reason(test_article(&"x".repeat(MAX_ID_BYTES + 1), "T", "B")).starts_with("id: 513 bytes"));
        assert!(reason(test_article("a\nb", "T", "B")).starts_with("id: control character U+000A at byte 1"));
        assert!(reason(test_article(" a", "T", "B")).starts_with("id: white space"));
        assert!(reason(test_article("a", &"T".repeat(MAX_TITLE_BYTES + 1), "")).starts_with("title: 4097 bytes"));
        assert!(reason(test_article("a", "T", &"B".repeat(101))).starts_with("body: 101 bytes, the limit is 100"));
        let section = Article {
            section: "Sport\0".into(),
            ..test_article("a", "T", "B")
        };
        assert!(reason(section).starts_with("section: control character U+0000"));
        assert!(reason(test_article("a", " ", "\n")).contains("empty title and body"));
        // Line breaks are text in titles and bodies.
        assert_eq!(
            test_article("a", "Zwei\nZeilen", "Ein\tText").rejection_reason(100),
            None
        );
    }

    #[test]
    fn long_input_is_quoted_by_its_first_bytes_only() {
        let reason = check_id(&"ü".repeat(10_000)).unwrap_err();
        assert!(reason.len() < 200, "{reason}");
        assert!(reason.contains("20000 bytes"), "{reason}");
    }

    #[test]
    fn timestamps_order_by_nanoseconds_too_and_refuse_bad_nanos() {
        let on_the_second = Timestamp::from_seconds(100);
        let half_past = Timestamp::new(100, 500_000_000).unwrap();
        assert!(on_the_second < half_past && half_past < Timestamp::from_seconds(101));
        assert_eq!(half_past.nanos(), 500_000_000);
        assert!(Timestamp::new(100, 1_000_000_000).is_err());
        assert!(Timestamp::new(100, -1).is_err());
    }
}
