//! What is an article? The unit the engine stores, indexes and returns, independent of any wire format.

use serde::{Deserialize, Serialize};

use crate::analysis::Lang;

/// A news article as stored in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Article {
    /// Caller-chosen unique id (CMS id, URL slug, …).
    pub id: String,
    /// Headline; weighted above the body when vectorised.
    pub title: String,
    /// Text without markup.
    pub body: String,
    /// Publication time in seconds since the Unix epoch (UTC), when known.
    pub published_at: Option<i64>,
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

    /// Why this article cannot be indexed, if it cannot.
    pub fn rejection_reason(&self) -> Option<&'static str> {
        if self.id.trim().is_empty() {
            Some("empty id")
        } else if self.title.trim().is_empty() && self.body.trim().is_empty() {
            Some("empty title and body")
        } else {
            None
        }
    }
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
