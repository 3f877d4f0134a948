//! Proto messages to core types and back. Every proto field is named when a message is unpacked, so a new
//! field fails to compile until it is handled here.

use super::proto;
use crate::article::{Article, Timestamp};
use crate::engine::Stats;
use crate::error::{Error, Result};
use crate::live::{LiveStats, WriteHealth, WriteOutcome};
use crate::recommend::{
    DEFAULT_K, Draft, Filter, LeftOut, LeftOutReason, RankingControls, Recommendation, RelatedQuery, Source,
};

/// A `Related` request as the core understands it.
#[derive(Clone, Debug, PartialEq)]
pub struct RelatedCall {
    /// The query.
    pub query: RelatedQuery,
    /// Whether to explain what was left out ([`crate::engine::Engine::related_explained_until`]).
    pub explain: bool,
}

/// A request as the core understands it; bad input is an [`Error::InvalidArgument`] naming the field.
pub fn related_call(request: proto::RelatedRequest) -> Result<RelatedCall> {
    let proto::RelatedRequest {
        source,
        k,
        filter,
        explain,
        positive_ids,
        negative_ids,
        min_score,
        time_scale_hours,
        diversity,
    } = request;
    let k = match k {
        0 => DEFAULT_K,
        k => usize::try_from(k).unwrap_or(usize::MAX),
    };
    let source = match source {
        Some(proto::related_request::Source::ArticleId(id)) => Some(Source::Article(id)),
        Some(proto::related_request::Source::Draft(proto::Draft { title, body, lang })) => {
            Some(Source::Draft(Draft { title, body, lang }))
        }
        None => None,
    };
    let mut query = match source {
        Some(source) => RelatedQuery {
            positive_ids,
            negative_ids,
            ..RelatedQuery::new(source, k)
        },
        None => RelatedQuery::from_examples(positive_ids, negative_ids, k, "source")?,
    };
    query.filter = filter.map(self::filter).transpose()?.unwrap_or_default();
    query.controls = RankingControls {
        min_score,
        time_scale_hours,
        diversity,
    };
    query.validate()?;
    Ok(RelatedCall { query, explain })
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
            .map(|at| instant(at).map_err(|reason| Error::invalid("filter.published_after", reason)))
            .transpose()?,
        published_before: published_before
            .map(|at| instant(at).map_err(|reason| Error::invalid("filter.published_before", reason)))
            .transpose()?,
        exclude_ids,
    })
}

/// A wire timestamp as the core's, nanoseconds included; out-of-range nanoseconds are refused.
fn instant(timestamp: prost_types::Timestamp) -> Result<Timestamp, String> {
    Timestamp::new(timestamp.seconds, i64::from(timestamp.nanos))
}

fn timestamp(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.seconds(),
        nanos: i32::try_from(at.nanos()).expect("nanos are below 1e9"),
    }
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

/// A left-out candidate on the wire.
pub fn left_out(left_out: LeftOut) -> proto::LeftOut {
    let LeftOut {
        story,
        reason,
        near_copy_of,
    } = left_out;
    proto::LeftOut {
        story: Some(related_story(story)),
        reason: left_out_reason(reason).into(),
        near_copy_of: near_copy_of.unwrap_or_default(),
    }
}

fn left_out_reason(reason: LeftOutReason) -> proto::LeftOutReason {
    match reason {
        LeftOutReason::BelowScoreFloor => proto::LeftOutReason::BelowScoreFloor,
        LeftOutReason::NearCopyOfSource => proto::LeftOutReason::NearCopyOfSource,
        LeftOutReason::NearCopyOfBetterStory => proto::LeftOutReason::NearCopyOfBetterStory,
        LeftOutReason::RankedBelowTheBlock => proto::LeftOutReason::RankedBelowTheBlock,
        LeftOutReason::FilteredBySection => proto::LeftOutReason::FilteredBySection,
        LeftOutReason::FilteredByLanguage => proto::LeftOutReason::FilteredByLanguage,
        LeftOutReason::FilteredByDate => proto::LeftOutReason::FilteredByDate,
        LeftOutReason::ExcludedById => proto::LeftOutReason::ExcludedById,
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

/// An article from the wire, for an upsert, or why it cannot be one (a `published_at` whose nanoseconds are
/// out of range); the core validates the rest.
pub fn article_from_wire(article: proto::Article) -> Result<Article, WriteOutcome> {
    let proto::Article {
        id,
        title,
        body,
        url,
        section,
        lang,
        published_at,
    } = article;
    let published_at = match published_at.map(instant).transpose() {
        Ok(published_at) => published_at,
        Err(reason) => return Err(WriteOutcome::rejected(&id, format!("published_at: {reason}"))),
    };
    Ok(Article {
        id,
        title,
        body,
        published_at,
        section,
        lang,
        url,
        story: None,
        category: None,
    })
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

/// Live index statistics on the wire.
pub fn stats(stats: LiveStats) -> proto::StatsResponse {
    let LiveStats {
        index:
            Stats {
                article_count,
                vocabulary_size,
                snapshot_version,
                built_at,
            },
        writes,
        changes_since_snapshot,
        rebuilds,
        log_commits,
        base_articles,
        fresh_articles,
    } = stats;
    let writes_unavailable_reason = match writes {
        WriteHealth::Available => None,
        WriteHealth::Unavailable(reason) => Some(reason),
    };
    proto::StatsResponse {
        article_count,
        vocabulary_size,
        snapshot_version,
        built_at: Some(timestamp(Timestamp::from_seconds(built_at))),
        writes_available: writes_unavailable_reason.is_none(),
        writes_unavailable_reason: writes_unavailable_reason.unwrap_or_default(),
        changes_since_snapshot,
        rebuilds_started: rebuilds.started,
        rebuilds_finished: rebuilds.finished,
        rebuilds_failed: rebuilds.failed,
        change_log_commits: log_commits,
        base_articles,
        fresh_articles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(k: u32) -> proto::RelatedRequest {
        proto::RelatedRequest {
            source: Some(proto::related_request::Source::ArticleId("a".into())),
            k,
            ..proto::RelatedRequest::default()
        }
    }

    #[test]
    fn k_zero_means_default_and_above_hundred_is_rejected() {
        assert_eq!(related_call(request(0)).unwrap().query.k, DEFAULT_K);
        assert_eq!(related_call(request(100)).unwrap().query.k, 100);
        let err = related_call(request(101)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { ref field, .. } if field == "k"));
    }

    #[test]
    fn missing_source_and_inverted_window_name_their_fields() {
        let no_source = proto::RelatedRequest {
            source: None,
            ..request(5)
        };
        assert!(matches!(related_call(no_source), Err(Error::InvalidArgument { field, .. }) if field == "source"));
        let inverted = proto::RelatedRequest {
            filter: Some(proto::Filter {
                published_after: Some(timestamp(Timestamp::from_seconds(100))),
                published_before: Some(timestamp(Timestamp::from_seconds(50))),
                ..Default::default()
            }),
            ..request(5)
        };
        assert!(
            matches!(related_call(inverted), Err(Error::InvalidArgument { field, .. }) if field == "filter.published_after")
        );
    }

    #[test]
    fn examples_without_a_source_make_the_first_one_the_source_and_controls_pass_through() {
        let examples = proto::RelatedRequest {
            source: None,
            positive_ids: vec!["p-1".into(), "p-2".into()],
            negative_ids: vec!["n-1".into()],
            diversity: Some(0.25),
            ..request(5)
        };
        let query = related_call(examples).unwrap().query;
        assert_eq!(query.source, Source::Article("p-1".into()));
        assert_eq!(
            (query.positive_ids, query.negative_ids),
            (vec!["p-2".into()], vec!["n-1".into()])
        );
        assert_eq!(
            query.controls,
            RankingControls {
                diversity: Some(0.25),
                ..RankingControls::default()
            }
        );
        let out_of_range = proto::RelatedRequest {
            min_score: Some(-0.5),
            ..request(5)
        };
        assert!(
            matches!(related_call(out_of_range), Err(Error::InvalidArgument { field, .. }) if field == "min_score")
        );
    }

    #[test]
    fn nanoseconds_are_kept_and_checked() {
        let wire = |nanos| prost_types::Timestamp { seconds: 100, nanos };
        let half_past = Timestamp::new(100, 500_000_000).unwrap();
        let article = article_from_wire(proto::Article {
            id: "a".into(),
            published_at: Some(wire(500_000_000)),
            ..proto::Article::default()
        })
        .unwrap();
        assert_eq!(article.published_at, Some(half_past));
        assert_eq!(timestamp(half_past), wire(500_000_000));
        for bad in [1_000_000_000, -1] {
            let refused = article_from_wire(proto::Article {
                id: "a".into(),
                published_at: Some(wire(bad)),
                ..proto::Article::default()
            })
            .unwrap_err();
            assert!(refused.rejected.unwrap().starts_with("published_at: nanos"));
            let filtered = proto::RelatedRequest {
                filter: Some(proto::Filter {
                    published_after: Some(wire(bad)),
                    ..Default::default()
                }),
                ..request(5)
            };
            assert!(related_call(filtered).is_err());
        }
    }
}
