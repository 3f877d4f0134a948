//! Proto messages to core types and back. Every proto field is named when a message is unpacked, so a new
//! field fails to compile until it is handled here.

use prost_types::Timestamp;

use super::proto;
use crate::article::Article;
use crate::engine::Stats;
use crate::error::{Error, Result};
use crate::live::WriteOutcome;
use crate::recommend::{DEFAULT_K, Draft, Filter, Recommendation, RelatedQuery, Source};

/// A request as the core understands it; bad input is an [`Error::InvalidArgument`] naming the field.
pub fn related_query(request: proto::RelatedRequest) -> Result<RelatedQuery> {
    let proto::RelatedRequest { source, k, filter } = request;
    let source = match source {
        Some(proto::related_request::Source::ArticleId(id)) => Source::Article(id),
        Some(proto::related_request::Source::Draft(proto::Draft { title, body, lang })) => {
            Source::Draft(Draft { title, body, lang })
        }
        None => return Err(Error::invalid("source", "set article_id or draft")),
    };
    let k = match k {
        0 => DEFAULT_K,
        k => usize::try_from(k).unwrap_or(usize::MAX),
    };
    let query = RelatedQuery {
        source,
        k,
        filter: filter.map(self::filter).transpose()?.unwrap_or_default(),
    };
    query.validate()?;
    Ok(query)
}

fn filter(filter: proto::Filter) -> Result<Filter> {
    let proto::Filter {
        sections,
        lang,
        published_after,
        published_before,
        exclude_ids,
    } = filter;
    Ok(Filter {
        sections,
        lang: Some(lang).filter(|lang| !lang.is_empty()),
        published_after: published_after
            .map(|at| seconds(at, "filter.published_after"))
            .transpose()?,
        published_before: published_before
            .map(|at| seconds(at, "filter.published_before"))
            .transpose()?,
        exclude_ids,
    })
}

fn seconds(timestamp: Timestamp, field: &str) -> Result<i64> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(Error::invalid(field, "nanos must be in 0..1e9"));
    }
    Ok(timestamp.seconds)
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// A recommendation on the wire.
pub fn related_story(recommendation: Recommendation) -> proto::RelatedStory {
    let Recommendation {
        id,
        title,
        url,
        section,
        published_at,
        score,
        shared_terms,
    } = recommendation;
    proto::RelatedStory {
        id,
        title,
        url,
        section,
        published_at: published_at.map(timestamp),
        score,
        shared_terms,
    }
}

/// A stored article on the wire.
pub fn article(article: &Article) -> proto::Article {
    let Article {
        id,
        title,
        body,
        published_at,
        section,
        lang,
        url,
        story: _,
        category: _,
    } = article;
    proto::Article {
        id: id.clone(),
        title: title.clone(),
        body: body.clone(),
        url: url.clone(),
        section: section.clone(),
        lang: lang.clone(),
        published_at: published_at.map(timestamp),
    }
}

/// An article from the wire, for an upsert. Nanoseconds of `published_at` are dropped (the engine keeps
/// seconds); the core validates the rest.
pub fn article_from_wire(article: proto::Article) -> Article {
    let proto::Article {
        id,
        title,
        body,
        url,
        section,
        lang,
        published_at,
    } = article;
    Article {
        id,
        title,
        body,
        published_at: published_at.map(|at| at.seconds),
        section,
        lang,
        url,
        story: None,
        category: None,
    }
}

/// Per-article write outcomes on the wire.
pub fn write_results(outcomes: Vec<WriteOutcome>) -> Vec<proto::WriteResult> {
    outcomes
        .into_iter()
        .map(|WriteOutcome { id, rejected }| proto::WriteResult {
            id,
            accepted: rejected.is_none(),
            error: rejected.unwrap_or_default(),
        })
        .collect()
}

/// Engine statistics on the wire.
pub fn stats(stats: Stats) -> proto::StatsResponse {
    let Stats {
        article_count,
        vocabulary_size,
        snapshot_version,
        built_at,
    } = stats;
    proto::StatsResponse {
        article_count,
        vocabulary_size,
        snapshot_version,
        built_at: Some(timestamp(built_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(k: u32) -> proto::RelatedRequest {
        proto::RelatedRequest {
            source: Some(proto::related_request::Source::ArticleId("a".into())),
            k,
            filter: None,
        }
    }

    #[test]
    fn k_zero_means_default_and_above_hundred_is_rejected() {
        assert_eq!(related_query(request(0)).unwrap().k, DEFAULT_K);
        assert_eq!(related_query(request(100)).unwrap().k, 100);
        let err = related_query(request(101)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { ref field, .. } if field == "k"));
    }

    #[test]
    fn missing_source_and_inverted_window_name_their_fields() {
        let no_source = proto::RelatedRequest {
            source: None,
            ..request(5)
        };
        assert!(matches!(related_query(no_source), Err(Error::InvalidArgument { field, .. }) if field == "source"));
        let inverted = proto::RelatedRequest {
            filter: Some(proto::Filter {
                published_after: Some(timestamp(100)),
                published_before: Some(timestamp(50)),
                ..Default::default()
            }),
            ..request(5)
        };
        assert!(
            matches!(related_query(inverted), Err(Error::InvalidArgument { field, .. }) if field == "filter.published_after")
        );
    }
}
