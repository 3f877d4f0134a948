//! The `weitere.v1.RelatedStories` handlers. Each is a small adapter: validate → authorise → call the core
//! off the async workers (searches on the [`SearchPool`]; writes, which wait on fsync, and body reads on
//! tokio's blocking pool, so that they never hold a search thread) → map the result.

use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::auth::Access;
use super::limits::{Limits, MAX_RELATED_RESPONSE_BYTES};
use super::proto::related_stories_server::RelatedStories;
use super::search_pool::SearchPool;
use super::{convert, proto, to_status};
use crate::error::{Result, check_deadline};
use crate::live::{LiveIndex, WriteOutcome};

/// Serves one [`LiveIndex`].
#[derive(Clone)]
pub struct RelatedStoriesService {
    index: Arc<LiveIndex>,
    access: Arc<Access>,
    limits: Arc<Limits>,
    searches: Arc<SearchPool>,
}

impl RelatedStoriesService {
    /// A service answering from `index`, letting callers through as `access` says, within `limits`, with
    /// `query_threads` threads for searches (0: one per core).
    pub fn new(index: Arc<LiveIndex>, access: Access, limits: Limits, query_threads: usize) -> Result<Self> {
        Ok(Self {
            index,
            access: Arc::new(access),
            limits: Arc::new(limits),
            searches: Arc::new(SearchPool::new(query_threads)?),
        })
    }

    /// Runs a search on the search pool, unless `deadline` passed while it waited for a thread.
    async fn search<T: Send + 'static>(
        &self,
        deadline: Option<Instant>,
        work: impl FnOnce(&Arc<LiveIndex>) -> Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let index = Arc::clone(&self.index);
        let (sender, answer) = tokio::sync::oneshot::channel();
        self.searches.spawn(move || {
            // The caller may have gone (cancelled or timed out); then nobody waits for the answer.
            let _ = sender.send(unless_late(deadline, &index, work));
        });
        answer
            .await
            .map_err(|_| Status::internal("worker failed: the search panicked"))?
    }

    /// Lets a write through with the write token and returns its deadline.
    fn admit_write<T>(&self, request: &Request<T>) -> Result<Option<Instant>, Status> {
        self.access.authorise_write(request)?;
        Ok(self.limits.deadline(request.metadata()))
    }

    /// Runs CPU-bound or disk-bound core work off the async runtime's worker threads, unless `deadline`
    /// passed while it waited for a thread.
    async fn run<T: Send + 'static>(
        &self,
        deadline: Option<Instant>,
        work: impl FnOnce(&Arc<LiveIndex>) -> Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || unless_late(deadline, &index, work))
            .await
            .map_err(|err| Status::internal(format!("worker failed: {err}")))?
    }

    /// Upserts one batch: durable and visible when this returns.
    async fn upsert(
        &self,
        request: proto::UpsertArticlesRequest,
        deadline: Option<Instant>,
    ) -> Result<Vec<proto::WriteResult>, Status> {
        let proto::UpsertArticlesRequest { articles } = request;
        self.limits.check_batch("articles", articles.len())?;
        // Articles that do not even convert are rejected here; the rest go to the core, and the results
        // are put back in request order.
        let mut outcomes: Vec<Option<WriteOutcome>> = Vec::with_capacity(articles.len());
        let mut convertible = Vec::with_capacity(articles.len());
        for article in articles {
            match convert::article_from_wire(article) {
                Ok(article) => {
                    convertible.push(article);
                    outcomes.push(None);
                }
                Err(rejected) => outcomes.push(Some(rejected)),
            }
        }
        let mut written = self
            .run(deadline, move |index| index.upsert(convertible))
            .await?
            .into_iter();
        let outcomes = outcomes
            .into_iter()
            .map(|outcome| {
                outcome
                    .or_else(|| written.next())
                    .expect("one core outcome per article")
            })
            .collect();
        Ok(convert::write_results(outcomes))
    }
}

/// Runs `work` on a worker thread, unless `deadline` passed while the call waited for that thread.
fn unless_late<T>(
    deadline: Option<Instant>,
    index: &Arc<LiveIndex>,
    work: impl FnOnce(&Arc<LiveIndex>) -> Result<T>,
) -> Result<T, Status> {
    check_deadline(deadline, "before the request was processed; nothing was done").map_err(to_status)?;
    work(index).map_err(to_status)
}

/// Drops the lowest-ranked stories until the answer fits in [`MAX_RELATED_RESPONSE_BYTES`]. The field
/// limits of every stored article keep a full answer far below it (100 stories of at most ~10 KiB each);
/// this guard keeps that promise for whatever else an index may hold.
fn fit_response(response: &mut proto::RelatedResponse) {
    let full = response.stories.len();
    while response.encoded_len() > MAX_RELATED_RESPONSE_BYTES {
        response.stories.pop();
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

#[tonic::async_trait]
impl RelatedStories for RelatedStoriesService {
    #[tracing::instrument(skip_all, fields(k = request.get_ref().k))]
    async fn related(
        &self,
        request: Request<proto::RelatedRequest>,
    ) -> Result<Response<proto::RelatedResponse>, Status> {
        self.access.authorise_read(&request)?;
        let deadline = self.limits.deadline(request.metadata());
        let query = convert::related_query(request.into_inner()).map_err(to_status)?;
        let recommendations = self
            .search(deadline, move |index| index.related_until(&query, deadline))
            .await?;
        let mut response = proto::RelatedResponse {
            stories: recommendations.into_iter().map(convert::related_story).collect(),
        };
        fit_response(&mut response);
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_article(
        &self,
        request: Request<proto::GetArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        self.access.authorise_read(&request)?;
        let deadline = self.limits.deadline(request.metadata());
        let proto::GetArticleRequest { id } = request.into_inner();
        // The body is read from the snapshot's body file: disk work, off the async workers.
        let article = self.run(deadline, move |index| index.article(&id)).await?;
        Ok(Response::new(convert::article(&article)))
    }

    #[tracing::instrument(skip_all)]
    async fn stats(&self, request: Request<proto::StatsRequest>) -> Result<Response<proto::StatsResponse>, Status> {
        self.access.authorise_read(&request)?;
        Ok(Response::new(convert::stats(self.index.stats())))
    }

    #[tracing::instrument(skip_all, fields(articles = request.get_ref().articles.len()))]
    async fn upsert_articles(
        &self,
        request: Request<proto::UpsertArticlesRequest>,
    ) -> Result<Response<proto::UpsertArticlesResponse>, Status> {
        let deadline = self.admit_write(&request)?;
        let results = self.upsert(request.into_inner(), deadline).await?;
        Ok(Response::new(proto::UpsertArticlesResponse { results }))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_articles_stream(
        &self,
        request: Request<Streaming<proto::UpsertArticlesRequest>>,
    ) -> Result<Response<proto::UpsertArticlesResponse>, Status> {
        let deadline = self.admit_write(&request)?;
        let mut batches = request.into_inner();
        let mut results = Vec::new();
        while let Some(batch) = batches.message().await? {
            results.extend(self.upsert(batch, deadline).await?);
        }
        Ok(Response::new(proto::UpsertArticlesResponse { results }))
    }

    #[tracing::instrument(skip_all, fields(ids = request.get_ref().ids.len()))]
    async fn delete_articles(
        &self,
        request: Request<proto::DeleteArticlesRequest>,
    ) -> Result<Response<proto::DeleteArticlesResponse>, Status> {
        let deadline = self.admit_write(&request)?;
        let proto::DeleteArticlesRequest { ids } = request.into_inner();
        self.limits.check_batch("ids", ids.len())?;
        let outcomes = self.run(deadline, move |index| index.delete(ids)).await?;
        Ok(Response::new(proto::DeleteArticlesResponse {
            results: convert::write_results(outcomes),
        }))
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
        };
        fit_response(&mut response);
        assert!(response.encoded_len() <= MAX_RELATED_RESPONSE_BYTES);
        assert_eq!(response.stories.len(), 3);
        assert_eq!(response.stories[2].id, "s-2", "the best stories are kept");
    }
}
