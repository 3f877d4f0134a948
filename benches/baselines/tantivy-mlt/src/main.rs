//! tantivy More-Like-This anchor of weitere's scale benchmark (issue 10).
//!
//! What a Rust team would build with the library it would reach for instead of weitere: the archive
//! (JSON Lines with `id`, `title`, `body`; gzip if the name ends in `.gz`) is streamed into a tantivy
//! index with a German (or English) analyser on two indexing threads, and then tantivy's
//! `MoreLikeThisQuery` ranks the top 10 of 1,000 seeded source articles (or of every article), one at a
//! time on one thread. One JSON object of figures goes to stdout: index wall and CPU seconds, memory,
//! index size and p50/p99 query latency. `benches/baselines/baselines.py` also runs it over every
//! article of its corpora. README.md gives the settings and the measured figures.
//!
//! ```sh
//! cargo run --release -- ARCHIVE [--sources 1000] [--seed 1] [--index-dir DIR] [--neighbours-out FILE]
//!     [--all-sources] [--k 10] [--min-term-frequency 2] [--min-doc-frequency 5] [--language de|en]
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use flate2::read::MultiGzDecoder;
use rand_mt::Mt;
use serde::Deserialize;
use serde_json::json;
use tantivy::collector::TopDocs;
use tantivy::query::{MoreLikeThisQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{DocAddress, Index, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term, doc};

/// Neighbours kept per source unless `--k` says otherwise.
const DEFAULT_K: usize = 10;
/// More-Like-This's minimum frequency of a term in the source field: Lucene's default (and tantivy's).
const LUCENE_MIN_TERM_FREQUENCY: usize = 2;
/// More-Like-This's minimum number of documents holding a term: Lucene's default (and tantivy's).
const LUCENE_MIN_DOC_FREQUENCY: u64 = 5;
/// Indexing threads of the `IndexWriter`.
const INDEX_THREADS: usize = 2;
/// Memory budget of the `IndexWriter`, shared by its threads.
const MEMORY_BUDGET: usize = 256 << 20;
/// Terms of a More-Like-This query, as in Lucene (tantivy's default too; see README.md).
const MAX_QUERY_TERMS: usize = 25;

/// Command line.
#[derive(Parser)]
#[command(about = "tantivy More-Like-This anchor of weitere's scale benchmark")]
struct Args {
    /// JSON Lines archive (id, title, body), gzip-compressed if the name ends in .gz
    archive: PathBuf,
    /// Source articles to query
    #[arg(long, default_value_t = 1000)]
    sources: usize,
    /// Seed for picking the sources, as Python's random.Random(seed).sample
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the index (must hold no index yet); a temporary directory if not given
    #[arg(long)]
    index_dir: Option<PathBuf>,
    /// Also write each source's top-k ids, best first, to this JSON Lines file
    #[arg(long)]
    neighbours_out: Option<PathBuf>,
    /// Query every article, in file order (overrides --sources and --seed)
    #[arg(long)]
    all_sources: bool,
    /// Neighbours per source
    #[arg(long, default_value_t = DEFAULT_K)]
    #[arg(value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    k: usize,
    /// More-Like-This: a query term occurs at least this often in the source field
    #[arg(long, default_value_t = LUCENE_MIN_TERM_FREQUENCY)]
    min_term_frequency: usize,
    /// More-Like-This: a query term occurs in at least this many articles
    #[arg(long, default_value_t = LUCENE_MIN_DOC_FREQUENCY)]
    min_doc_frequency: u64,
    /// Language of the analyser's stop words and Snowball stemmer
    #[arg(long, value_enum, default_value_t = AnalyserLanguage::De)]
    language: AnalyserLanguage,
}

/// The analyser's language (`--language`); its code is also the name the analyser is registered under.
#[derive(Clone, Copy, ValueEnum)]
enum AnalyserLanguage {
    /// German
    De,
    /// English
    En,
}

impl AnalyserLanguage {
    /// The name of the analyser in the index's tokenizer manager: the ISO 639-1 code.
    fn code(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }

    /// tantivy's language of the stop-word list and the Snowball stemmer.
    fn tantivy(self) -> Language {
        match self {
            Self::De => Language::German,
            Self::En => Language::English,
        }
    }
}

/// How each source is queried.
struct Settings {
    /// Neighbours kept.
    k: usize,
    /// More-Like-This's `min_term_frequency`.
    min_term_frequency: usize,
    /// More-Like-This's `min_doc_frequency`.
    min_doc_frequency: u64,
}

/// One archive line; other fields are ignored.
#[derive(Deserialize)]
struct Article {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

/// The schema's fields.
struct Fields {
    id: Field,
    title: Field,
    body: Field,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let temporary = tempfile::tempdir()?;
    let index_dir = args.index_dir.as_deref().unwrap_or(temporary.path());
    std::fs::create_dir_all(index_dir)?;

    let (schema, fields) = schema(args.language);
    let index = Index::create_in_dir(index_dir, schema)
        .with_context(|| format!("creating an index in {}", index_dir.display()))?;
    index
        .tokenizers()
        .register(args.language.code(), analyser(args.language));

    let wall = Instant::now();
    let (cpu, read_cpu) = (cpu_seconds(libc::RUSAGE_SELF), cpu_seconds(libc::RUSAGE_THREAD));
    let ids = index_archive(&args.archive, &index, &fields)?;
    let index_cpu = cpu_seconds(libc::RUSAGE_SELF) - cpu;
    let read_cpu = cpu_seconds(libc::RUSAGE_THREAD) - read_cpu;
    let index_wall = wall.elapsed().as_secs_f64();
    let index_peak_rss = status_mb("VmHWM")?;
    let settings = Settings {
        k: args.k,
        min_term_frequency: args.min_term_frequency,
        min_doc_frequency: args.min_doc_frequency,
    };
    if ids.len() <= settings.k {
        bail!("{}: need more than {} articles", args.archive.display(), settings.k);
    }

    let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
    let searcher = reader.searcher();
    let sources = if args.all_sources {
        (0..ids.len()).collect()
    } else {
        python_sample(args.seed, ids.len(), args.sources.min(ids.len()))
    };
    let mut times = Vec::with_capacity(sources.len());
    let mut results = Vec::with_capacity(sources.len());
    let queries = Instant::now();
    for &source in &sources {
        let started = Instant::now();
        results.push(neighbours(&searcher, &fields, &settings, &ids[source])?);
        times.push(1000.0 * started.elapsed().as_secs_f64());
    }
    let queries_wall = queries.elapsed().as_secs_f64();
    let query_rss = status_mb("VmRSS")?;
    times.sort_by(f64::total_cmp);
    let full = results
        .iter()
        .filter(|neighbours| neighbours.len() == settings.k)
        .count();

    if let Some(path) = &args.neighbours_out {
        let mut out = BufWriter::new(File::create(path)?);
        for (&source, neighbours) in sources.iter().zip(&results) {
            writeln!(out, "{}", json!({"source": ids[source], "neighbours": neighbours}))?;
        }
        out.flush()?;
    }
    let figures = json!({
        "docs": ids.len(),
        "index_wall_s": round3(index_wall),
        "index_cpu_s": round3(index_cpu),
        "read_parse_cpu_s": round3(read_cpu),
        "docs_per_cpu_s": (ids.len() as f64 / index_cpu).round(),
        "index_peak_rss_mb": index_peak_rss.round(),
        "peak_rss_mb": status_mb("VmHWM")?.round(),
        "query_rss_mb": query_rss.round(),
        "top10_p50_ms": round3(nearest_rank(&times, 50.0)),
        "top10_p99_ms": round3(nearest_rank(&times, 99.0)),
        "sources": sources.len(),
        "coverage": round3(full as f64 / sources.len() as f64),
        "segments": searcher.segment_readers().len(),
        "index_bytes": directory_bytes(index_dir)?,
        "tantivy": tantivy::version_string(),
        "queries_wall_s": round3(queries_wall),
    });
    println!("{figures}");
    Ok(())
}

/// `id` is one untokenised term; `title` and `body` go through the language's analyser with frequencies
/// and positions (tantivy's `TEXT`). All three are stored: More-Like-This reads the source's stored
/// fields, and the neighbours' ids come from the store.
fn schema(language: AnalyserLanguage) -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(language.code())
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        id: builder.add_text_field("id", STRING | STORED),
        title: builder.add_text_field("title", text.clone()),
        body: builder.add_text_field("body", text),
    };
    (builder.build(), fields)
}

/// Words split at non-alphanumeric characters, tokens over 40 bytes dropped, lower case, tantivy's
/// stop words of the language removed, the language's Snowball stemmer.
fn analyser(language: AnalyserLanguage) -> TextAnalyzer {
    let stop_words = StopWordFilter::new(language.tantivy()).expect("tantivy has German and English stop words");
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop_words)
        .filter(Stemmer::new(language.tantivy()))
        .build()
}

/// Streams the archive into the index, commits and waits for the merges; returns the ids in file
/// order. This thread reads and parses; the writer's threads analyse and write the segments.
fn index_archive(path: &Path, index: &Index, fields: &Fields) -> Result<Vec<String>> {
    let mut writer: IndexWriter = index.writer_with_num_threads(INDEX_THREADS, MEMORY_BUDGET)?;
    let mut ids = Vec::new();
    for (number, line) in open(path)?.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let article: Article =
            serde_json::from_str(&line).with_context(|| format!("{}, line {}", path.display(), number + 1))?;
        writer.add_document(doc!(
            fields.id => article.id.as_str(),
            fields.title => article.title,
            fields.body => article.body,
        ))?;
        ids.push(article.id);
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(ids)
}

/// Opens the archive, decompressing it if its name ends in `.gz`.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(if path.extension().is_some_and(|extension| extension == "gz") {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    })
}

/// Python's `random.Random(seed).sample(range(n), k)` (CPython 3.11's algorithm on its MT19937), so
/// that the sources are the ones `benches/scale/sklearn_anchor.py` picks for the same seed.
fn python_sample(seed: u64, n: usize, k: usize) -> Vec<usize> {
    assert!(k <= n && n <= u32::MAX as usize, "sample of {k} from {n}");
    // random.seed(int) hands the seed to init_by_array as 32-bit words, least significant first.
    let key = if seed >> 32 == 0 {
        vec![seed as u32]
    } else {
        vec![seed as u32, (seed >> 32) as u32]
    };
    let mut mt = Mt::new_with_key(key);
    // _randbelow_with_getrandbits: the top bits of one 32-bit output, redrawn while out of range.
    let mut below = |n: usize| {
        let bits = usize::BITS - n.leading_zeros();
        loop {
            let r = (mt.next_u32() >> (32 - bits)) as usize;
            if r < n {
                return r;
            }
        }
    };
    let mut set_size = 21;
    if k > 5 {
        set_size += 4usize.pow(((3 * k) as f64).log(4.0).ceil() as u32);
    }
    if n <= set_size {
        let mut pool: Vec<usize> = (0..n).collect();
        (0..k)
            .map(|i| {
                let j = below(n - i);
                let chosen = pool[j];
                pool[j] = pool[n - i - 1];
                chosen
            })
            .collect()
    } else {
        let mut selected = HashSet::with_capacity(k);
        (0..k)
            .map(|_| {
                loop {
                    let j = below(n);
                    if selected.insert(j) {
                        break j;
                    }
                }
            })
            .collect()
    }
}

/// One request: finds the source by its id, runs More-Like-This on its stored fields for the top
/// k + 1, drops the source and returns the ids of the rest (at most k), best first.
fn neighbours(searcher: &Searcher, fields: &Fields, settings: &Settings, id: &str) -> Result<Vec<String>> {
    let by_id = TermQuery::new(Term::from_field_text(fields.id, id), IndexRecordOption::Basic);
    let found = searcher.search(&by_id, &TopDocs::with_limit(1).order_by_score())?;
    let Some(&(_, source)) = found.first() else {
        bail!("source {id} is not in the index");
    };
    let query = MoreLikeThisQuery::builder()
        .with_min_term_frequency(settings.min_term_frequency)
        .with_min_doc_frequency(settings.min_doc_frequency)
        .with_max_query_terms(MAX_QUERY_TERMS)
        .with_document(source);
    let hits = searcher.search(&query, &TopDocs::with_limit(settings.k + 1).order_by_score())?;
    hits.into_iter()
        .filter(|&(_, address)| address != source)
        .take(settings.k)
        .map(|(_, address)| stored_id(searcher, fields, address))
        .collect()
}

/// The stored id of a document.
fn stored_id(searcher: &Searcher, fields: &Fields, address: DocAddress) -> Result<String> {
    let document: TantivyDocument = searcher.doc(address)?;
    let id = document.get_first(fields.id).and_then(|value| value.as_str());
    Ok(id.context("a document without an id")?.to_owned())
}

/// User + system CPU seconds of the process (`RUSAGE_SELF`) or of this thread (`RUSAGE_THREAD`).
fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// A `/proc/self/status` memory line (`VmHWM`, `VmRSS`) in MB.
fn status_mb(key: &str) -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse::<f64>().ok())
        .with_context(|| format!("no {key} in /proc/self/status"))?;
    Ok(kilobytes / 1024.0)
}

/// Total size of the files in the index directory (tantivy keeps them flat).
fn directory_bytes(path: &Path) -> Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(path)? {
        bytes += entry?.metadata()?.len();
    }
    Ok(bytes)
}

/// The nearest-rank percentile of sorted values.
fn nearest_rank(sorted: &[f64], percent: f64) -> f64 {
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Rounds to three decimals.
fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from Python 3.11's `random.Random(seed).sample(range(n), k)`.
    #[test]
    fn sample_matches_python() {
        assert_eq!(python_sample(1, 10_000, 5), [2201, 9325, 1033, 4179, 1931]);
        // n below the set size: the pool branch.
        assert_eq!(python_sample(7, 30, 10), [10, 4, 12, 20, 1, 2, 17, 3, 11, 18]);
        // A seed of two 32-bit words.
        assert_eq!(
            python_sample((1 << 40) + 3, 100_000, 6),
            [28807, 7973, 72019, 12400, 74239, 39864]
        );
        let sources = python_sample(1, 100_000, 1000);
        assert_eq!((sources[0], sources[999]), (17611, 37645));
        assert_eq!(sources.iter().sum::<usize>(), 50_524_827);
    }
}
