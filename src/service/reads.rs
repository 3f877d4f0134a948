//! The read calls as both protocols make them: authorise → convert the proto request → call the core off
//! the async workers → the proto answer. The gRPC handlers (`related.rs`) and the HTTP routes (`http.rs`)
//! are thin wrappers around [`Reads`], so each read is written once; each protocol maps the typed
//! [`Error`] to its own codes in one place (`status.rs`, `http_status.rs`).

use std::sync::Arc;
use std::time::Instant;

use prost::Message;

use super::auth::{Access, Credentials};
use super::convert;
use super::limits::MAX_RELATED_RESPONSE_BYTES;
use super::proto;
use super::search_pool::SearchPool;
use crate::error::{Error, Result, check_deadline};
use crate::live::LiveIndex;
use crate::recommend::Explanation;

/// Proof that a call passed [`Reads::admit`]: the read methods take one, so none runs unauthorised.
#[derive(Debug)]
pub struct Admitted(());

/// The read side of the service over one [`LiveIndex`].
pub struct Reads {
    index: Arc<LiveIndex>,
    access: Arc<Access>,
    searches: SearchPool,
}

impl Reads {
    /// Reads from `index` for callers that `access` lets in, with `query_threads` search threads (0: one
    /// per core).
    pub fn new(index: Arc<LiveIndex>, access: Arc<Access>, query_threads: usize) -> Result<Self> {
        Ok(Self {
            index,
            access,
            searches: SearchPool::new(query_threads)?,
        })
    }

    /// The index the reads answer from.
    pub fn index(&self) -> &Arc<LiveIndex> {
        &self.index
    }

    /// Lets a read through when reads are open or `credentials` carry the read (or write) token.
    pub fn admit(&self, credentials: Credentials<'_>) -> Result<Admitted> {
        self.access.authorise_read(credentials)?;
        Ok(Admitted(()))
    }

    /// `Related`: the stories for a stored article or a draft, best first, within `deadline`; with
    /// `explain`, also the candidates left out and why.
    pub async fn related(
        &self,
        _admitted: Admitted,
        request: proto::RelatedRequest,
        deadline: Option<Instant>,
    ) -> Result<proto::RelatedResponse> {
        let convert::RelatedCall { query, explain } = convert::related_call(request)?;
        let index = Arc::clone(&self.index);
        let (sender, answer) = tokio::sync::oneshot::channel();
        self.searches.spawn(move || {
            let explanation = unless_late(deadline, &index, |index| {
                if explain {
                    index.related_explained_until(&query, deadline)
                } else {
                    let stories = index.related_until(&query, deadline)?;
                    Ok(Explanation {
                        stories,
                        left_out: Vec::new(),
                    })
                }
            });
            // The caller may have gone (cancelled or timed out); then nobody waits for the answer.
            let _ = sender.send(explanation);
        });
        let Explanation { stories, left_out } = answer
            .await
            .map_err(|_| Error::Index("worker failed: the search panicked".into()))??;
        let mut response = proto::RelatedResponse {
            stories: stories.into_iter().map(convert::related_story).collect(),
            left_out: left_out.into_iter().map(convert::left_out).collect(),
        };
        fit_response(&mut response);
        Ok(response)
    }

    /// `GetArticle`: one stored article, body included, within `deadline`.
    pub async fn article(
        &self,
        _admitted: Admitted,
        request: proto::GetArticleRequest,
        deadline: Option<Instant>,
    ) -> Result<proto::Article> {
        let proto::GetArticleRequest { id } = request;
        // The body is read from the snapshot's body file: disk work, off the async workers.
        let article = run_blocking(&self.index, deadline, move |index| index.article(&id)).await?;
        Ok(convert::article(&article))
    }

    /// `Stats`: size and provenance of the live index.
    pub fn stats(&self, _admitted: Admitted) -> proto::StatsResponse {
        convert::stats(self.index.stats())
    }
}

/// Runs CPU-bound or disk-bound core work on tokio's blocking pool, off the async workers, unless
/// `deadline` passed while it waited for a thread.
pub async fn run_blocking<T: Send + 'static>(
    index: &Arc<LiveIndex>,
    deadline: Option<Instant>,
    work: impl FnOnce(&Arc<LiveIndex>) -> Result<T> + Send + 'static,
) -> Result<T> {
    let index = Arc::clone(index);
    tokio::task::spawn_blocking(move || unless_late(deadline, &index, work))
        .await
        .map_err(|err| Error::Index(format!("worker failed: {err}")))?
}

/// Runs `work` on a worker thread, unless `deadline` passed while the call waited for that thread.
fn unless_late<T>(
    deadline: Option<Instant>,
    index: &Arc<LiveIndex>,
    work: impl FnOnce(&Arc<LiveIndex>) -> Result<T>,
) -> Result<T> {
    check_deadline(deadline, "before the request was processed; nothing was done")?;
    work(index)
}

/// Drops the least similar left-out candidates, then the lowest-ranked stories, until the answer fits in
/// [`MAX_RELATED_RESPONSE_BYTES`]. The field limits of every stored article keep a full answer far below
/// it (130 stories of at most ~10 KiB each); this guard keeps that promise for whatever else an index
/// may hold.
fn fit_response(response: &mut proto::RelatedResponse) {
    let full = response.stories.len();
    while response.encoded_len() > MAX_RELATED_RESPONSE_BYTES {
        if response.left_out.pop().is_none() {
            response.stories.pop();
        }
    }
    if response.stories.len() < full {
        tracing::warn!(
            kept = response.stories.len(),
            dropped = full - response.stories.len(),
            limit = MAX_RELATED_RESPONSE_BYTES,
            "Related answer over its size limit: dropped the lowest-ranked stories"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_too_large_for_default_clients_loses_its_last_stories() {
        let story = |rank: usize| proto::RelatedStory {
            id: format!("s-{rank}"),
            title: "T".repeat(1 << 20),
            ..proto::RelatedStory::default()
        };
        let mut response = proto::RelatedResponse {
            stories: (0..10).map(story).collect(),
            left_out: vec![proto::LeftOut::default(); 3],
        };
        fit_response(&mut response);
        assert!(response.encoded_len() <= MAX_RELATED_RESPONSE_BYTES);
        assert!(response.left_out.is_empty(), "the explanation goes first");
        assert_eq!(response.stories.len(), 3);
        assert_eq!(response.stories[2].id, "s-2", "the best stories are kept");
    }
}
