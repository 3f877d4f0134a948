//! The `weitere.v1.RelatedStories` handlers. Each is a small adapter: validate → authorise → call the core
//! off the async workers (searches on the search pool; writes, which wait on fsync, and body reads on
//! tokio's blocking pool, so that they never hold a search thread) → map the result. The reads go through
//! [`Reads`], which the HTTP routes share.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status, Streaming};

use super::auth::{Access, Credentials};
use super::limits::Limits;
use super::proto::related_stories_server::RelatedStories;
use super::reads::{Admitted, Reads, run_blocking};
use super::{convert, proto, to_status};
use crate::error::Result;
use crate::live::WriteOutcome;

/// Serves one [`LiveIndex`](crate::live::LiveIndex): the reads through the [`Reads`] the HTTP routes
/// share, the writes here.
#[derive(Clone)]
pub struct RelatedStoriesService {
    reads: Arc<Reads>,
    access: Arc<Access>,
    limits: Arc<Limits>,
}

impl RelatedStoriesService {
    /// A service answering reads through `reads` and taking writes for callers that `access` lets in,
    /// within `limits`.
    pub fn new(reads: Arc<Reads>, access: Arc<Access>, limits: Arc<Limits>) -> Self {
        Self { reads, access, limits }
    }

    /// Lets a read through and returns its deadline.
    fn admit_read<T>(&self, request: &Request<T>) -> Result<(Admitted, Option<Instant>), Status> {
        let admitted = self.reads.admit(Credentials::grpc(request)).map_err(to_status)?;
        Ok((admitted, self.limits.deadline(request.metadata())))
    }

    /// Lets a write through with the write token and returns its deadline.
    fn admit_write<T>(&self, request: &Request<T>) -> Result<Option<Instant>, Status> {
        self.access
            .authorise_write(Credentials::grpc(request))
            .map_err(to_status)?;
        Ok(self.limits.deadline(request.metadata()))
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
        let mut written = run_blocking(self.reads.index(), deadline, move |index| index.upsert(convertible))
            .await
            .map_err(to_status)?
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

#[tonic::async_trait]
impl RelatedStories for RelatedStoriesService {
    #[tracing::instrument(skip_all, fields(k = request.get_ref().k))]
    async fn related(
        &self,
        request: Request<proto::RelatedRequest>,
    ) -> Result<Response<proto::RelatedResponse>, Status> {
        let (admitted, deadline) = self.admit_read(&request)?;
        let response = self.reads.related(admitted, request.into_inner(), deadline).await;
        response.map(Response::new).map_err(to_status)
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_article(
        &self,
        request: Request<proto::GetArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        let (admitted, deadline) = self.admit_read(&request)?;
        let article = self.reads.article(admitted, request.into_inner(), deadline).await;
        article.map(Response::new).map_err(to_status)
    }

    #[tracing::instrument(skip_all)]
    async fn stats(&self, request: Request<proto::StatsRequest>) -> Result<Response<proto::StatsResponse>, Status> {
        let (admitted, _) = self.admit_read(&request)?;
        Ok(Response::new(self.reads.stats(admitted)))
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
        let outcomes = run_blocking(self.reads.index(), deadline, move |index| index.delete(ids))
            .await
            .map_err(to_status)?;
        Ok(Response::new(proto::DeleteArticlesResponse {
            results: convert::write_results(outcomes),
        }))
    }
}
