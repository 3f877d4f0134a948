//! Command-line interface: the clap types, their conversion into the library's plain config structs, and
//! one function per subcommand. Nothing outside this module knows about clap.

mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use weitere::analysis::CompoundMode;
use weitere::article::DEFAULT_MAX_BODY_BYTES;
use weitere::engine::{BuildConfig, Engine, SearchStrategy};
use weitere::error::Result;
use weitere::evaluate::sweep::DEFAULT_EF_VALUES;
use weitere::index::{DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M, DEFAULT_SEED, HnswParams, InsertionMode};
use weitere::live::RebuildPolicy;
use weitere::projection::{DEFAULT_DIMENSIONS, DEFAULT_SAMPLE, ProjectionConfig};
use weitere::recommend::{RankingPolicy, TimeShape};
use weitere::service::Limits;

pub use commands::run;

/// Environment variable for `--addr`.
pub const ENV_ADDR: &str = "WEITERE_ADDR";
/// Environment variable for `--model`.
pub const ENV_MODEL: &str = "WEITERE_MODEL";
/// Environment variable for `--min-score`.
pub const ENV_MIN_SCORE: &str = "WEITERE_MIN_SCORE";
/// Environment variable for `--time-scale-hours`.
pub const ENV_TIME_SCALE_HOURS: &str = "WEITERE_TIME_SCALE_HOURS";
/// Environment variable for `--time-weight`.
pub const ENV_TIME_WEIGHT: &str = "WEITERE_TIME_WEIGHT";
/// Environment variable for `--diversity`.
pub const ENV_DIVERSITY: &str = "WEITERE_DIVERSITY";
/// Environment variable for `--dense-weight`.
pub const ENV_DENSE_WEIGHT: &str = "WEITERE_DENSE_WEIGHT";
/// Environment variable for `--log-format`.
pub const ENV_LOG_FORMAT: &str = "WEITERE_LOG_FORMAT";
/// Environment variable for `serve --write-token`.
pub const ENV_WRITE_TOKEN: &str = "WEITERE_WRITE_TOKEN";
/// Environment variable for `serve --read-token`.
pub const ENV_READ_TOKEN: &str = "WEITERE_READ_TOKEN";
/// Environment variable for `serve --tls-cert`.
pub const ENV_TLS_CERT: &str = "WEITERE_TLS_CERT";
/// Environment variable for `serve --tls-key`.
pub const ENV_TLS_KEY: &str = "WEITERE_TLS_KEY";
/// Environment variable for `serve --http-addr`.
pub const ENV_HTTP_ADDR: &str = "WEITERE_HTTP_ADDR";
/// Environment variable for `serve --metrics-addr`.
pub const ENV_METRICS_ADDR: &str = "WEITERE_METRICS_ADDR";
/// Environment variable for `serve --rebuild-nice`.
pub const ENV_REBUILD_NICE: &str = "WEITERE_REBUILD_NICE";

/// Where `serve` keeps the index of the built-in sample when no `--model` is given.
pub const DEFAULT_MODEL_DIR: &str = "models/default";

/// weitere: related news stories ("Weitere Meldungen") for German and English articles.
#[derive(Debug, Parser)]
#[command(name = "weitere", version, about, long_about = None)]
pub struct Cli {
    /// Log output format (filter with RUST_LOG, e.g. RUST_LOG=weitere=debug).
    #[arg(long, global = true, value_enum, env = ENV_LOG_FORMAT, default_value = "plain")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a snapshot from JSON Lines files (plain or .gz).
    Index(IndexArgs),
    /// Serve a snapshot over gRPC (with health checking and reflection), optionally also as JSON over
    /// HTTP with an editor preview page (--http-addr) and Prometheus metrics (--metrics-addr).
    Serve(ServeArgs),
    /// Print the related stories for one stored article or a piece of text.
    Related(RelatedArgs),
    /// Measure recommendation quality, ANN recall and latency on a labelled corpus.
    Eval(EvalArgs),
    /// Write the related stories of every stored article (or those matching a filter) to a file.
    Batch(BatchArgs),
}

/// `weitere index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// JSON Lines input files (`.gz` is decompressed); ids are unique across all files, last wins.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Snapshot directory to write (created if missing; an existing snapshot is replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Skip and count malformed lines instead of stopping at the first one.
    #[arg(long)]
    pub skip_malformed: bool,
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Index-time settings shared by `index` and `eval`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// German compound handling: split against the corpus lexicon, character n-grams, both, or off.
    #[arg(long, value_enum, default_value_t = CompoundArg::from(BuildConfig::default().analysis.compounds))]
    pub compounds: CompoundArg,
    /// Disable Snowball stemming.
    #[arg(long)]
    pub no_stem: bool,
    /// Keep stop words.
    #[arg(long)]
    pub keep_stop_words: bool,
    /// How many body occurrences one title occurrence counts for.
    #[arg(long, default_value_t = BuildConfig::default().tfidf.title_weight)]
    pub title_weight: f32,
    /// Drop terms found in fewer documents than this.
    #[arg(long, default_value_t = BuildConfig::default().tfidf.min_df)]
    pub min_df: u32,
    /// Drop terms found in more than this share of documents.
    #[arg(long, default_value_t = BuildConfig::default().tfidf.max_df_ratio)]
    pub max_df: f32,
    /// HNSW `m`: links per point and layer (2..=256).
    #[arg(long, default_value_t = DEFAULT_M)]
    pub m: usize,
    /// HNSW `ef_construction`: candidate list size while building.
    #[arg(long, default_value_t = DEFAULT_EF_CONSTRUCTION)]
    pub ef_construction: usize,
    /// HNSW `ef_search`: candidate list size while searching.
    #[arg(long, default_value_t = DEFAULT_EF_SEARCH)]
    pub ef_search: usize,
    /// Seed of the graph's insertion order; the same input and seed build the same graph.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub hnsw_seed: u64,
    /// Insert into the graph on all cores: faster, but each build gives a slightly different graph. The
    /// default; kept so that scripts naming it still work.
    #[arg(long, conflicts_with = "serial_insert")]
    pub parallel_insert: bool,
    /// Insert into the graph one point after another in seeded order, so that the same input and seed
    /// build the same graph (reproducible, slower on several cores). The manifest records the mode.
    #[arg(long)]
    pub serial_insert: bool,
    /// Dimensions of the dense projection (LSA) that the graph searches; 4 bytes per article each.
    #[arg(long, default_value_t = DEFAULT_DIMENSIONS)]
    pub dimensions: usize,
    /// Articles sampled (with --projection-seed) to fit the projection.
    #[arg(long, default_value_t = DEFAULT_SAMPLE)]
    pub projection_sample: usize,
    /// Seed of the projection's sample and random test matrix.
    #[arg(long, default_value_t = weitere::projection::DEFAULT_SEED)]
    pub projection_seed: u64,
}

/// `--compounds` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompoundArg {
    /// No decompounding.
    Off,
    /// Split compounds against the corpus lexicon.
    Split,
    /// Add character n-grams of long words.
    Ngrams,
    /// Both.
    SplitAndNgrams,
}

impl From<CompoundMode> for CompoundArg {
    fn from(mode: CompoundMode) -> Self {
        match mode {
            CompoundMode::Off => CompoundArg::Off,
            CompoundMode::Split => CompoundArg::Split,
            CompoundMode::NGrams => CompoundArg::Ngrams,
            CompoundMode::SplitAndNGrams => CompoundArg::SplitAndNgrams,
        }
    }
}

impl From<CompoundArg> for CompoundMode {
    fn from(arg: CompoundArg) -> Self {
        match arg {
            CompoundArg::Off => CompoundMode::Off,
            CompoundArg::Split => CompoundMode::Split,
            CompoundArg::Ngrams => CompoundMode::NGrams,
            CompoundArg::SplitAndNgrams => CompoundMode::SplitAndNGrams,
        }
    }
}

impl BuildArgs {
    /// The library's build settings.
    pub fn to_config(&self) -> BuildConfig {
        let mut config = BuildConfig::default();
        config.analysis.compounds = self.compounds.into();
        config.analysis.stem = !self.no_stem;
        config.analysis.stop_words = !self.keep_stop_words;
        config.tfidf.title_weight = self.title_weight;
        config.tfidf.min_df = self.min_df;
        config.tfidf.max_df_ratio = self.max_df;
        config.hnsw = HnswParams::default()
            .m(self.m)
            .ef_construction(self.ef_construction)
            .ef_search(self.ef_search)
            .seed(self.hnsw_seed)
            .insertion(if self.serial_insert {
                InsertionMode::Serial
            } else {
                InsertionMode::Parallel
            });
        config.projection = ProjectionConfig::default()
            .dimensions(self.dimensions)
            .sample(self.projection_sample)
            .seed(self.projection_seed);
        config
    }
}

/// Query-time settings shared by `serve`, `related`, `eval` and `batch`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Score floor: stories less similar than this are never shown ("show fewer rather than irrelevant").
    #[arg(long, env = ENV_MIN_SCORE, default_value_t = RankingPolicy::default().min_score)]
    pub min_score: f32,
    /// Also count stories at least this similar in TF-IDF cosine to a better one (or to the source) as
    /// copies (0..=1). Unset (the default), only the text test counts: near-identical word sets, site
    /// suffixes such as " - WELT" ignored, so that paraphrases of one story stay in the block.
    #[arg(long)]
    pub duplicate_similarity: Option<f32>,
    /// Scale in hours of the time-proximity prior: a story this far before or after the source (a
    /// draft: now) loses half of what the prior can take away (hyperbolic shape), one ten times as far
    /// 10/11 of it. 0 = off.
    #[arg(long, env = ENV_TIME_SCALE_HOURS, default_value_t = RankingPolicy::default().time_scale_hours)]
    pub time_scale_hours: f32,
    /// Share of the score that the time prior can take away from a story far from the source in time
    /// (0..=1).
    #[arg(long, env = ENV_TIME_WEIGHT, default_value_t = RankingPolicy::default().time_weight)]
    pub time_weight: f32,
    /// How the time prior falls with the gap |Δt|: hyperbolic 1/(1+|Δt|/scale), exponential e^(-|Δt|/scale).
    #[arg(long, value_enum, default_value = "hyperbolic")]
    pub time_shape: TimeShapeArg,
    /// Half-life in days of the older one-sided preference for recent stories (0 = off, the default;
    /// applies on top of the time prior when set).
    #[arg(long, default_value_t = RankingPolicy::default().recency_half_life_days)]
    pub recency_half_life_days: f32,
    /// Share of the score that age can take away under --recency-half-life-days (0..=1).
    #[arg(long, default_value_t = RankingPolicy::default().recency_weight)]
    pub recency_weight: f32,
    /// Diversity of the block (0..=1): maximal marginal relevance with λ = 1 − diversity, each next story
    /// maximising (1 − diversity)·score − diversity·(its largest cosine to a story already chosen).
    /// 0 = by score alone. A request may set its own (RelatedRequest.diversity).
    #[arg(long, env = ENV_DIVERSITY, default_value_t = RankingPolicy::default().diversity)]
    pub diversity: f32,
    /// Share of a story's similarity taken from the cosine of the LSA projections instead of the
    /// TF-IDF cosine (0..=1), the LSA relating words that occur together; 0 = TF-IDF alone.
    #[arg(long, env = ENV_DENSE_WEIGHT, default_value_t = RankingPolicy::default().dense_weight)]
    pub dense_weight: f32,
    /// Nearest-neighbour search: exact scan for small indexes or narrow filters and the HNSW graph
    /// otherwise (auto), or always one of the two.
    #[arg(long, value_enum, default_value = "auto")]
    pub search: SearchArg,
}

/// `--time-shape` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TimeShapeArg {
    /// 1 / (1 + |Δt| / scale).
    Hyperbolic,
    /// e^(−|Δt| / scale).
    Exponential,
}

/// `--search` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SearchArg {
    /// Exact scan when few articles are eligible, the graph otherwise.
    Auto,
    /// Always scan exactly.
    Exact,
    /// Always search the HNSW graph.
    Hnsw,
}

impl PolicyArgs {
    /// Puts the ranking policy and search strategy into force on `engine`.
    pub fn apply(&self, engine: &mut Engine) -> Result<()> {
        engine.set_policy(RankingPolicy {
            min_score: self.min_score,
            duplicate_similarity: self.duplicate_similarity,
            time_scale_hours: self.time_scale_hours,
            time_weight: self.time_weight,
            time_shape: match self.time_shape {
                TimeShapeArg::Hyperbolic => TimeShape::Hyperbolic,
                TimeShapeArg::Exponential => TimeShape::Exponential,
            },
            recency_half_life_days: self.recency_half_life_days,
            recency_weight: self.recency_weight,
            diversity: self.diversity,
            dense_weight: self.dense_weight,
            ..RankingPolicy::default()
        })?;
        engine.set_search(match self.search {
            SearchArg::Auto => SearchStrategy::Auto,
            SearchArg::Exact => SearchStrategy::Exact,
            SearchArg::Hnsw => SearchStrategy::Hnsw,
        });
        Ok(())
    }
}

/// `weitere serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Snapshot directory. Without it, the built-in German sample is indexed into models/default on first
    /// run and reused afterwards.
    #[arg(long, env = ENV_MODEL)]
    pub model: Option<PathBuf>,
    /// Address to listen on (gRPC).
    #[arg(long, env = ENV_ADDR, default_value = "127.0.0.1:50051")]
    pub addr: SocketAddr,
    /// Also serve JSON over HTTP on this address: POST /v1/related, GET /v1/articles/{id}, GET /v1/stats,
    /// GET /healthz, and the editor preview page at /. The same tokens (Authorization: Bearer), limits and
    /// error codes as gRPC. Plain HTTP/1.1 without TLS: bind it to a private interface or put a TLS proxy
    /// in front. Off without it.
    #[arg(long, env = ENV_HTTP_ADDR)]
    pub http_addr: Option<SocketAddr>,
    /// Also serve Prometheus metrics at /metrics on this address (plain HTTP, no token: keep it on a
    /// private interface). Off without it, also when --http-addr is set. The same address as --http-addr
    /// serves /metrics on that listener, beside the JSON routes.
    #[arg(long, env = ENV_METRICS_ADDR)]
    pub metrics_addr: Option<SocketAddr>,
    /// Bearer token that UpsertArticles and DeleteArticles require; without it, writes are refused. An
    /// empty or blank token is refused at start (exit code 64).
    #[arg(long, env = ENV_WRITE_TOKEN, hide_env_values = true)]
    pub write_token: Option<String>,
    /// Bearer token that reads (Related, GetArticle, Stats) require; without it, reads are open. An empty
    /// or blank token is refused at start (exit code 64).
    #[arg(long, env = ENV_READ_TOKEN, hide_env_values = true)]
    pub read_token: Option<String>,
    /// Rebuild the index in the background after at least this many live changes ...
    #[arg(long, default_value_t = RebuildPolicy::default().min_changes)]
    pub rebuild_min_changes: usize,
    /// ... once they also reach this share of the live articles.
    #[arg(long, default_value_t = RebuildPolicy::default().ratio)]
    pub rebuild_ratio: f64,
    /// Nice value (0 to 19) of the threads that build the new index in a rebuild. Above 0 the build yields
    /// the CPU to queries and writes: they keep more of it, and the rebuild takes longer the busier they
    /// keep the machine (under saturating load it hardly moves). 0 builds at the serving threads' priority.
    #[arg(long, env = ENV_REBUILD_NICE, default_value_t = RebuildPolicy::default().niceness,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub rebuild_nice: i32,
    /// Start even when the change log is missing, empty, from another directory, older than the
    /// snapshot expects or damaged: rename it aside, start a new one and log the loss at WARN. Without
    /// this flag such a start fails, since every write acknowledged since the snapshot would be lost.
    /// (Deliberately no environment variable: accepting data loss is a decision for one start.)
    #[arg(long)]
    pub accept_change_log_loss: bool,
    /// PEM certificate chain to serve TLS with (needs --tls-key); without it, plain HTTP/2.
    #[arg(long, env = ENV_TLS_CERT, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = ENV_TLS_KEY, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest request or response message, in bytes; larger ones fail with RESOURCE_EXHAUSTED.
    #[arg(long, env = "WEITERE_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Most articles per UpsertArticles message (or ids per DeleteArticles); more fail with INVALID_ARGUMENT.
    #[arg(long, env = "WEITERE_MAX_BATCH", default_value_t = Limits::default().max_batch)]
    pub max_batch: usize,
    /// Longest article or draft body, in UTF-8 bytes; longer upserts are rejected per article, longer
    /// drafts fail with INVALID_ARGUMENT.
    #[arg(long, env = "WEITERE_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Longest any request may run, in milliseconds, also when the client sends no deadline (a client's
    /// shorter grpc-timeout always applies). Without it, only client deadlines apply.
    #[arg(long, env = "WEITERE_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Threads that answer Related calls (0: one per core). Concurrent calls beyond them wait for a free
    /// thread instead of sharing the cores with more threads.
    #[arg(long, env = "WEITERE_QUERY_THREADS", default_value_t = 0)]
    pub query_threads: usize,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// `weitere related`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["id", "text"])))]
pub struct RelatedArgs {
    /// Snapshot directory.
    #[arg(long, env = ENV_MODEL, default_value = DEFAULT_MODEL_DIR)]
    pub model: PathBuf,
    /// Id of a stored article.
    #[arg(long)]
    pub id: Option<String>,
    /// Raw text (title and body) of an unsaved article.
    #[arg(long)]
    pub text: Option<String>,
    /// Language of `--text` (de, en, …).
    #[arg(long, default_value = "de")]
    pub lang: String,
    /// How many stories (1..=100).
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Only stories from these sections (repeatable).
    #[arg(long)]
    pub section: Vec<String>,
    /// A stored article the stories should also be like (repeatable; without --id or --text the first
    /// is the source). Stories are scored by their cosine to 2·mean(liked) − mean(unliked).
    #[arg(long)]
    pub positive_id: Vec<String>,
    /// A stored article the stories should be unlike (repeatable).
    #[arg(long)]
    pub negative_id: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// `weitere eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Labelled JSON Lines files to index and evaluate on.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Label that defines relevance.
    #[arg(long, value_enum, default_value = "category")]
    pub label: LabelArg,
    /// Recommendation list size.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Evaluate a random sample of this many sources instead of all.
    #[arg(long)]
    pub sample: Option<usize>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Sources from one half of the corpus only: dev (tune settings here) or test (report here); the
    /// half is fixed by a hash of each article's story, or its id without one. Every article stays a
    /// candidate.
    #[arg(long, value_enum, default_value = "all")]
    pub split: SplitArg,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also sweep HNSW `ef_search` and draw recall against latency into this SVG file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// `ef_search` values of the sweep (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_EF_VALUES)]
    pub ef: Vec<usize>,
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// `weitere batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Snapshot directory.
    #[arg(long, env = ENV_MODEL, default_value = DEFAULT_MODEL_DIR)]
    pub model: PathBuf,
    /// Output file: `.jsonl` (one object per source) or `.csv` (one row per link); replaced atomically.
    #[arg(long)]
    pub out: PathBuf,
    /// Related stories per article (1..=100).
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Only source articles from these sections (repeatable).
    #[arg(long)]
    pub section: Vec<String>,
    /// Only source articles in this language.
    #[arg(long)]
    pub lang: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, env = "RAYON_NUM_THREADS")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// `--split` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SplitArg {
    /// Every labelled article is a source.
    All,
    /// The dev half.
    Dev,
    /// The held-back test half.
    Test,
}

/// `--label` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LabelArg {
    /// Same story.
    Story,
    /// Same category.
    Category,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_unique_and_well_formed() {
        Cli::command().debug_assert();
    }
}
