//! The `weitere.v1.RelatedStories` handlers: validate, call the engine on the blocking pool, map the result.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::proto::related_stories_server::RelatedStories;
use super::{convert, proto, to_status};
use crate::engine::Engine;
use crate::error::Result;

/// Serves one loaded [`Engine`].
#[derive(Clone)]
pub struct RelatedStoriesService {
    engine: Arc<Engine>,
}

impl RelatedStoriesService {
    /// A service answering from `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Runs CPU-bound engine work off the async runtime's worker threads.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || work(&engine))
            .await
            .map_err(|err| Status::internal(format!("worker failed: {err}")))?
            .map_err(to_status)
    }
}

#[tonic::async_trait]
impl RelatedStories for RelatedStoriesService {
    #[tracing::instrument(skip_all, fields(k = request.get_ref().k))]
    async fn related(
        &self,
        request: Request<proto::RelatedRequest>,
    ) -> Result<Response<proto::RelatedResponse>, Status> {
        let query = convert::related_query(request.into_inner()).map_err(to_status)?;
        let recommendations = self.run(move |engine| engine.related(&query)).await?;
        Ok(Response::new(proto::RelatedResponse {
            stories: recommendations.into_iter().map(convert::related_story).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_article(
        &self,
        request: Request<proto::GetArticleRequest>,
    ) -> Result<Response<proto::Article>, Status> {
        let proto::GetArticleRequest { id } = request.into_inner();
        let article = self.engine.article(&id).map_err(to_status)?;
        Ok(Response::new(convert::article(article)))
    }

    #[tracing::instrument(skip_all)]
    async fn stats(&self, _request: Request<proto::StatsRequest>) -> Result<Response<proto::StatsResponse>, Status> {
        Ok(Response::new(convert::stats(self.engine.stats())))
    }
}
