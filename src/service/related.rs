//! The `weitere.v1.RelatedStories` handlers. Each is a small adapter: validate → authorise → call the core
//! on the blocking pool → map the result.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status, Streaming};

use super::auth::Access;
use super::limits::{Limits, check_deadline};
use super::proto::related_stories_server::RelatedStories;
use super::{convert, proto, to_status};
use crate::error::Result;
use crate::live::LiveIndex;

/// Serves one [`LiveIndex`].
#[derive(Clone)]
pub struct RelatedStoriesService {
    index: Arc<LiveIndex>,
    access: Arc<Access>,
    limits: Arc<Limits>,
}

impl RelatedStoriesService {
    /// A service answering from `index`, letting callers through as `access` says, within `limits`.
    pub fn new(index: Arc<LiveIndex>, access: Access, limits: Limits) -> Self {
        Self {
            index,
            access: Arc::new(access),
            limits: Arc::new(limits),
        }
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
        tokio::task::spawn_blocking(move || {
            check_deadline(deadline)?;
            work(&index).map_err(to_status)
        })
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
        let articles = articles.into_iter().map(convert::article_from_wire).collect();
        let outcomes = self.run(deadline, move |index| index.upsert(articles)).await?;
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
        self.access.authorise_read(&request)?;
        let deadline = self.limits.deadline(request.metadata());
        let query = convert::related_query(request.into_inner()).map_err(to_status)?;
        let recommendations = self.run(deadline, move |index| index.related(&query)).await?;
        Ok(Response::new(proto::RelatedResponse {
            stories: recommendations.into_iter().map(convert::related_story).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_article(
        &self,
        request: Request<proto::GetArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        self.access.authorise_read(&request)?;
        let proto::GetArticleRequest { id } = request.into_inner();
        let article = self.index.article(&id).map_err(to_status)?;
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
