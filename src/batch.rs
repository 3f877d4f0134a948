//! How does an archive job get related links for every article? Runs [`Engine::related`] for many sources
//! in parallel (rayon) — the very call the gRPC service makes, so batch output equals `Related` responses —
//! and writes the lists as JSON Lines or CSV, atomically.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use indicatif::{ParallelProgressIterator, ProgressBar};
use rayon::prelude::*;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::recommend::{Filter, Recommendation, RelatedQuery, Source};

/// Related stories of one source article.
#[derive(Clone, Debug, Serialize)]
pub struct RelatedLinks {
    /// Id of the source article.
    pub id: String,
    /// Its related stories, best first.
    pub related: Vec<Recommendation>,
}

/// Output file format, chosen by the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per source: `{"id": …, "related": [{"id", "title", "url", "section", "published_at",
    /// "score", "shared_terms"}, …]}`.
    JsonLines,
    /// One row per link: `source_id,rank,id,score,title,url,section,shared_terms` (terms joined by `|`).
    Csv,
}

impl OutputFormat {
    /// The format for `path`: `.jsonl` or `.csv`.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some("jsonl") => Ok(OutputFormat::JsonLines),
            Some("csv") => Ok(OutputFormat::Csv),
            _ => Err(Error::invalid(
                "out",
                format!("{} must end in .jsonl or .csv", path.display()),
            )),
        }
    }
}

/// Computes the `k` related stories of every live article that `sources` lets through, in slot order,
/// on all cores; `progress` advances once per source.
pub fn related_for_all(
    engine: &Engine,
    sources: &Filter,
    k: usize,
    progress: &ProgressBar,
) -> Result<Vec<RelatedLinks>> {
    let selected: Vec<&str> = engine
        .live()
        .filter(|&(slot, _)| engine.matches(sources, slot))
        .map(|(_, article)| article.id)
        .collect();
    progress.set_length(selected.len() as u64);
    selected
        .par_iter()
        .progress_with(progress.clone())
        .map(|&id| {
            let query = RelatedQuery::new(Source::Article(id.to_owned()), k);
            Ok(RelatedLinks {
                id: id.to_owned(),
                related: engine.related(&query)?,
            })
        })
        .collect()
}

/// Writes `links` to `path` in `format`: into a temporary file beside it, then renamed over it.
pub fn write(links: &[RelatedLinks], path: &Path, format: OutputFormat) -> Result<()> {
    let temporary = path.with_extension("tmp");
    let file = File::create(&temporary).map_err(|err| Error::io(&temporary, err))?;
    let mut out = BufWriter::new(file);
    let written = match format {
        OutputFormat::JsonLines => write_json_lines(links, &mut out),
        OutputFormat::Csv => write_csv(links, &mut out),
    };
    written
        .and_then(|()| out.into_inner().map_err(|err| err.into_error()))
        .and_then(|file| file.sync_all())
        .map_err(|err| Error::io(&temporary, err))?;
    std::fs::rename(&temporary, path).map_err(|err| Error::io(path, err))
}

fn write_json_lines(links: &[RelatedLinks], out: &mut impl Write) -> std::io::Result<()> {
    for source in links {
        serde_json::to_writer(&mut *out, source)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn write_csv(links: &[RelatedLinks], out: &mut impl Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "source_id",
        "rank",
        "id",
        "score",
        "title",
        "url",
        "section",
        "shared_terms",
    ])?;
    for source in links {
        for (rank, story) in source.related.iter().enumerate() {
            writer.write_record([
                source.id.as_str(),
                &(rank + 1).to_string(),
                &story.id,
                &format!("{:.4}", story.score),
                &story.title,
                &story.url,
                &story.section,
                &story.shared_terms.join("|"),
            ])?;
        }
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Vec<RelatedLinks> {
        vec![RelatedLinks {
            id: "a".into(),
            related: vec![Recommendation {
                id: "b".into(),
                title: "Zwei, \"drei\"".into(),
                url: String::new(),
                section: "Sport".into(),
                published_at: None,
                score: 0.5,
                shared_terms: vec!["fußball".into(), "tor".into()],
            }],
        }]
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            OutputFormat::from_path(Path::new("x/related.jsonl")).unwrap(),
            OutputFormat::JsonLines
        );
        assert_eq!(
            OutputFormat::from_path(Path::new("related.csv")).unwrap(),
            OutputFormat::Csv
        );
        assert!(OutputFormat::from_path(Path::new("related.txt")).is_err());
    }

    #[test]
    fn csv_quotes_fields_and_numbers_ranks_from_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("related.csv");
        write(&links(), &path, OutputFormat::Csv).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "source_id,rank,id,score,title,url,section,shared_terms\na,1,b,0.5000,\"Zwei, \"\"drei\"\"\",,Sport,fußball|tor\n"
        );
        assert!(!dir.path().join("related.tmp").exists());
    }

    #[test]
    fn json_lines_hold_one_source_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("related.jsonl");
        write(&links(), &path, OutputFormat::JsonLines).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(value["id"], "a");
        assert_eq!(value["related"][0]["shared_terms"][1], "tor");
    }
}
