//! One function per subcommand, each a thin sequence of library calls plus output formatting.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use weitere::batch::OutputFormat;
use weitere::engine::{BuildConfig, Engine};
use weitere::error::{Error, Result};
use weitere::evaluate::sweep::{SweepPoint, ef_sweep, write_chart};
use weitere::evaluate::{EvalOptions, EvalReport, Label, Split, drop_exact_duplicates, evaluate, select_sources};
use weitere::ingest::{self, Corpus, IngestOptions};
use weitere::live::{self, LiveIndex, LostLog, RebuildPolicy};
use weitere::recommend::{Draft, Filter, Recommendation, RelatedQuery, Source};
use weitere::service::{Access, Limits, Listeners, MetricsListener, ServerOptions};

use super::{
    BatchArgs, Cli, Command, DEFAULT_MODEL_DIR, ENV_READ_TOKEN, ENV_TLS_CERT, ENV_TLS_KEY, ENV_WRITE_TOKEN, EvalArgs,
    IndexArgs, LabelArg, RelatedArgs, ServeArgs, SplitArg,
};

/// The German sample compiled into the binary, indexed by `serve` when no `--model` is given.
const EMBEDDED_SAMPLE: &[u8] = include_bytes!("../../data/gnad-sample.jsonl.gz");

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Index(args) => index(&args),
        Command::Serve(args) => serve(&args),
        Command::Related(args) => related(&args),
        Command::Eval(args) => eval(&args),
        Command::Batch(args) => batch(&args),
    }
}

fn index(args: &IndexArgs) -> Result<()> {
    let started = Instant::now();
    let corpus = ingest::read_files(
        &args.input,
        IngestOptions {
            skip_malformed: args.skip_malformed,
        },
    )?;
    report_corpus(&corpus);
    let article_count = corpus.articles.len();
    let engine = Engine::build_spilling_bodies(corpus.articles, &args.build.to_config(), &progress_bar(), &args.out)?;
    let manifest = engine.save(&args.out)?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes: u64 = manifest.files.iter().map(|file| file.bytes).sum();
    println!(
        "indexed {article_count} articles ({} terms) into {} in {seconds:.1} s: {:.0} articles/s, {bytes} snapshot bytes ({:.0} per article)",
        manifest.vocabulary_size,
        args.out.display(),
        article_count as f64 / seconds,
        bytes as f64 / article_count as f64,
    );
    Ok(())
}

fn report_corpus(corpus: &Corpus) {
    tracing::info!(
        lines = corpus.lines_read,
        accepted = corpus.articles.len(),
        duplicates_replaced = corpus.duplicates_replaced,
        malformed_skipped = corpus.malformed_skipped,
        rejected = corpus.rejected.len(),
        "input read"
    );
    for example in &corpus.malformed_examples {
        tracing::warn!("skipped: {example}");
    }
    for rejection in &corpus.rejected {
        tracing::warn!(id = %weitere::error::quote(&rejection.id), reason = %rejection.reason, "article rejected");
    }
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>15} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Opens the snapshot in `dir`, or for the default directory builds it from the embedded sample first.
fn open_or_build_default(model: Option<&Path>) -> Result<Engine> {
    if let Some(dir) = model {
        return Engine::open(dir);
    }
    let dir = Path::new(DEFAULT_MODEL_DIR);
    match Engine::open(dir) {
        Ok(engine) => return Ok(engine),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(dir = %dir.display(), "no snapshot yet: indexing the built-in sample");
        }
        Err(err) => tracing::warn!(%err, "rebuilding the built-in sample's snapshot"),
    }
    let corpus = ingest::read_gzip_bytes(EMBEDDED_SAMPLE, "gnad-sample.jsonl.gz", IngestOptions::default())?;
    let engine = Engine::build(corpus.articles, &BuildConfig::default(), &progress_bar())?;
    engine.save(dir)?;
    Ok(engine)
}

fn serve(args: &ServeArgs) -> Result<()> {
    let started = Instant::now();
    let options = server_options(args)?;
    let mut engine = open_or_build_default(args.model.as_deref())?;
    args.policy.apply(&mut engine)?;
    let dir = args.model.as_deref().unwrap_or(Path::new(DEFAULT_MODEL_DIR));
    let rebuild = RebuildPolicy {
        min_changes: args.rebuild_min_changes,
        ratio: args.rebuild_ratio,
        niceness: args.rebuild_nice,
    };
    let lost_log = if args.accept_change_log_loss {
        LostLog::SetAside
    } else {
        LostLog::Refuse
    };
    let index =
        Arc::new(LiveIndex::open_with(dir, engine, rebuild, lost_log)?.with_max_body_bytes(args.max_body_bytes));
    let stats = index.stats().index;
    if options.access.write_token.is_none() {
        tracing::info!("no write token configured: UpsertArticles and DeleteArticles are refused");
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|err| Error::io("tokio runtime", err))?;
    runtime.block_on(async {
        let listener = bind(args.addr).await?;
        let local = listener
            .local_addr()
            .map_err(|err| Error::io(args.addr.to_string(), err))?;
        let http = match args.http_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let metrics = match args.metrics_addr {
            None => MetricsListener::Off,
            Some(addr) if Some(addr) == args.http_addr => MetricsListener::WithHttp,
            Some(addr) => MetricsListener::Own(bind(addr).await?),
        };
        let bound = |listener: Option<&tokio::net::TcpListener>| {
            listener
                .and_then(|listener| listener.local_addr().ok())
                .map_or_else(|| "off".to_owned(), |addr| addr.to_string())
        };
        let metrics_at = match &metrics {
            MetricsListener::Off => "off".to_owned(),
            MetricsListener::Own(listener) => bound(Some(listener)),
            MetricsListener::WithHttp => bound(http.as_ref()),
        };
        tracing::info!(
            addr = %local,
            http_addr = %bound(http.as_ref()),
            metrics_addr = %metrics_at,
            snapshot_version = stats.snapshot_version,
            articles = stats.article_count,
            startup_ms = started.elapsed().as_millis() as u64,
            tls = options.tls.is_some(),
            "serving weitere.v1.RelatedStories"
        );
        let listeners = Listeners {
            grpc: listener.into(),
            http,
            metrics,
        };
        weitere::service::serve(Arc::clone(&index), options, listeners, shutdown_signal())
            .await
            .map_err(|err| Error::Index(format!("server failed: {err}")))
    })?;
    drop(runtime);
    index.shut_down();
    Ok(())
}

/// Listens on `addr`; failing to is an I/O error naming the address.
async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| Error::io(addr.to_string(), err))
}

fn server_options(args: &ServeArgs) -> Result<ServerOptions> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(weitere::service::tls_identity(cert, key).map_err(name_the_flag)?),
        _ => None,
    };
    let access = Access {
        write_token: args.write_token.clone(),
        read_token: args.read_token.clone(),
    };
    access.validate().map_err(name_the_flag)?;
    Ok(ServerOptions {
        access,
        limits: Limits {
            max_message_bytes: args.max_message_bytes,
            max_batch: args.max_batch,
            request_timeout: args.request_timeout_ms.map(Duration::from_millis),
        },
        tls,
        query_threads: args.query_threads,
    })
}

/// Names the flag and environment variable of a `serve` setting that the library refused by its field.
fn name_the_flag(err: Error) -> Error {
    match err {
        Error::InvalidArgument { field, reason } => {
            let flag = match field.as_str() {
                "write_token" => format!("--write-token ({ENV_WRITE_TOKEN})"),
                "read_token" => format!("--read-token ({ENV_READ_TOKEN})"),
                "tls_cert" => format!("--tls-cert ({ENV_TLS_CERT})"),
                "tls_key" => format!("--tls-key ({ENV_TLS_KEY})"),
                _ => field,
            };
            Error::InvalidArgument { field: flag, reason }
        }
        other => other,
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn related(args: &RelatedArgs) -> Result<()> {
    let mut engine = live::open_current(&args.model)?;
    args.policy.apply(&mut engine)?;
    let source = match (&args.id, &args.text) {
        (Some(id), _) => Some(Source::Article(id.clone())),
        (None, Some(text)) => Some(Source::Draft(Draft {
            title: String::new(),
            body: text.clone(),
            lang: args.lang.clone(),
        })),
        (None, None) => None,
    };
    let (positive_ids, negative_ids) = (args.positive_id.clone(), args.negative_id.clone());
    let mut query = match source {
        Some(source) => RelatedQuery {
            positive_ids,
            negative_ids,
            ..RelatedQuery::new(source, args.k)
        },
        None => RelatedQuery::from_examples(positive_ids, negative_ids, args.k, "--id/--text/--positive-id")?,
    };
    query.filter.sections = args.section.clone();
    let stories = engine.related(&query)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stories).expect("recommendations serialise")
        );
    } else {
        print_table(&stories);
    }
    Ok(())
}

fn print_table(stories: &[Recommendation]) {
    if stories.is_empty() {
        println!("no related story clears the score floor");
        return;
    }
    println!(
        "{:>3}  {:>5}  {:<20}  {:<14}  {:<60}  why",
        "#", "score", "id", "section", "title"
    );
    for (rank, story) in stories.iter().enumerate() {
        println!(
            "{:>3}  {:>5.3}  {:<20}  {:<14}  {:<60}  {}",
            rank + 1,
            story.score,
            truncate(&story.id, 20),
            truncate(&story.section, 14),
            truncate(&story.title, 60),
            story.shared_terms.join(", ")
        );
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(width - 1).collect();
    short.push('…');
    short
}

/// `eval --json` output: the report plus how the corpus was prepared and the optional sweep.
#[derive(Serialize)]
struct EvalOutput {
    #[serde(flatten)]
    report: EvalReport,
    exact_duplicates_dropped: usize,
    index_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ef_sweep: Option<Vec<SweepPoint>>,
}

fn eval(args: &EvalArgs) -> Result<()> {
    let corpus = ingest::read_files(&args.input, IngestOptions::default())?;
    report_corpus(&corpus);
    let (articles, exact_duplicates_dropped) = drop_exact_duplicates(corpus.articles);
    let started = Instant::now();
    let mut engine = Engine::build(articles, &args.build.to_config(), &progress_bar())?;
    let index_seconds = started.elapsed().as_secs_f64();
    args.policy.apply(&mut engine)?;
    let options = EvalOptions {
        label: match args.label {
            LabelArg::Story => Label::Story,
            LabelArg::Category => Label::Category,
        },
        k: args.k,
        sample: args.sample,
        seed: args.seed,
        split: match args.split {
            SplitArg::All => Split::All,
            SplitArg::Dev => Split::Dev,
            SplitArg::Test => Split::Test,
        },
    };
    let report = evaluate(&engine, &options)?;
    let ef_sweep = match &args.chart {
        Some(path) => {
            let points = ef_sweep(&engine, &select_sources(&engine, &options)?, args.k, &args.ef);
            write_chart(&points, args.k, path)?;
            Some(points)
        }
        None => None,
    };
    let output = EvalOutput {
        report,
        exact_duplicates_dropped,
        index_seconds,
        ef_sweep,
    };
    if args.json {
        println!("{}", serde_json::to_string(&output).expect("reports serialise"));
    } else {
        print_eval_table(&output);
    }
    Ok(())
}

fn print_eval_table(output: &EvalOutput) {
    let report = &output.report;
    let k = report.k;
    let optional = |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |value| format!("{value:.1}"));
    println!(
        "sources                    {} of split {} ({} exact copies dropped, {} without relevant)",
        report.sources, report.split, output.exact_duplicates_dropped, report.sources_without_relevant
    );
    println!("precision@{k:<3}              {:.4}", report.precision_at_k);
    println!("distinct precision@{k:<3}     {:.4}", report.distinct_precision_at_k);
    println!("recall@{k:<3}                 {:.4}", report.recall_at_k);
    println!("nDCG@{k:<3}                   {:.4}", report.ndcg_at_k);
    println!("MRR                        {:.4}", report.mrr);
    println!("coverage                   {:.4}", report.coverage);
    println!("blocks with a near-copy    {:.4}", report.duplicate_rate);
    println!("near-copy items            {:.4}", report.duplicate_item_rate);
    println!("intra-list similarity      {:.4}", report.intra_list_similarity);
    println!("median age gap (days)      {}", optional(report.median_age_gap_days));
    println!("self-recommendations       {}", report.self_recommendations);
    println!("exact kNN precision@{k:<3}    {:.4}", report.knn_precision_at_k);
    println!("ANN recall@{k:<3}             {:.4}", report.ann_recall_at_k);
    println!(
        "latency p50 / p99          {:.3} / {:.3} ms",
        report.latency_p50_ms, report.latency_p99_ms
    );
    println!("index build                {:.2} s", output.index_seconds);
    for point in output.ef_sweep.iter().flatten() {
        println!(
            "ef_search {:<5}            recall {:.4}, p50 {:.3} ms, p99 {:.3} ms",
            point.ef_search, point.ann_recall_at_k, point.latency_p50_ms, point.latency_p99_ms
        );
    }
}

fn batch(args: &BatchArgs) -> Result<()> {
    let format = OutputFormat::from_path(&args.out)?;
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|err| Error::invalid("threads", err.to_string()))?;
    }
    let mut engine = live::open_current(&args.model)?;
    args.policy.apply(&mut engine)?;
    let sources = Filter {
        sections: args.section.clone(),
        lang: args.lang.clone(),
        ..Filter::default()
    };
    let started = Instant::now();
    let progress = progress_bar();
    progress.set_message("recommending");
    let links = weitere::batch::related_for_all(&engine, &sources, args.k, &progress)?;
    progress.finish_and_clear();
    weitere::batch::write(&links, &args.out, format)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "wrote related stories for {} articles to {} in {seconds:.2} s: {:.0} articles/s ({} threads)",
        links.len(),
        args.out.display(),
        links.len() as f64 / seconds,
        rayon::current_num_threads(),
    );
    Ok(())
}
