//! How do articles get in? Reads JSON Lines files (plain or gzip) in the schema of `../shared/data`
//! (`id, title, body, published_at, section, lang, url, story, category`) into [`Article`]s.
//!
//! A malformed line is an error naming file, line and field, or, with [`IngestOptions::skip_malformed`],
//! skipped and counted. A later line with an id seen before replaces the earlier one (last wins, counted).
//! An article with neither title nor body, or with a field over its limit (see [`crate::article`]), is
//! rejected with its id and reason and never indexed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};

use crate::article::{Article, DEFAULT_MAX_BODY_BYTES, Timestamp};
use crate::error::{Error, Result};

/// How strict reading is.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngestOptions {
    /// Skip (and count) malformed lines instead of failing on the first one.
    pub skip_malformed: bool,
}

/// An article that was read but not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The article's id.
    pub id: String,
    /// Why it was not accepted.
    pub reason: String,
}

/// What reading produced: the accepted articles and an account of everything else.
#[derive(Debug, Default)]
pub struct Corpus {
    /// Accepted articles, in order of first appearance of their id.
    pub articles: Vec<Article>,
    /// Non-empty lines read.
    pub lines_read: usize,
    /// Articles replaced by a later line with the same id.
    pub duplicates_replaced: usize,
    /// Malformed lines skipped (only with [`IngestOptions::skip_malformed`]); the first few are in
    /// `malformed_examples`.
    pub malformed_skipped: usize,
    /// Up to [`MAX_EXAMPLES`] of the skipped lines' errors.
    pub malformed_examples: Vec<String>,
    /// Articles rejected for their content.
    pub rejected: Vec<Rejection>,
}

/// How many skipped-line errors a [`Corpus`] keeps for the summary.
pub const MAX_EXAMPLES: usize = 5;

/// Reads every file in `paths` into one corpus; ids are unique across all files.
pub fn read_files(paths: &[PathBuf], options: IngestOptions) -> Result<Corpus> {
    let mut reader = CorpusReader::default();
    for path in paths {
        reader.read_file(path, options)?;
    }
    Ok(reader.finish())
}

/// Reads gzip-compressed JSON Lines held in memory (such as the sample compiled into the binary); `name`
/// labels errors.
pub fn read_gzip_bytes(bytes: &[u8], name: &str, options: IngestOptions) -> Result<Corpus> {
    let mut reader = CorpusReader::default();
    reader.read(bytes, true, Path::new(name), options)?;
    Ok(reader.finish())
}

/// Parses one JSON object in the input schema. `path` and `line` only label errors.
pub fn parse_article(json: &str, path: &Path, line: usize) -> Result<Article> {
    let malformed = |field: Option<&str>, reason: String| Error::MalformedInput {
        path: path.to_path_buf(),
        line,
        field: field.map(str::to_owned),
        reason,
    };
    let object: Map<String, Value> = match serde_json::from_str(json) {
        Ok(Value::Object(object)) => object,
        Ok(other) => return Err(malformed(None, format!("expected a JSON object, got {}", kind(&other)))),
        Err(err) => return Err(malformed(None, format!("invalid JSON: {err}"))),
    };
    let text = |field: &str| -> Result<Option<String>> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if field == "id" => Ok(Some(n.to_string())),
            Some(other) => Err(malformed(
                Some(field),
                format!("expected a string, got {}", kind(other)),
            )),
        }
    };
    let id = text("id")?.filter(|id| !id.trim().is_empty());
    let Some(id) = id else {
        return Err(malformed(Some("id"), "missing or empty".into()));
    };
    let published_at = match object.get("published_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_timestamp(s).ok_or_else(|| {
            malformed(
                Some("published_at"),
                format!("{s:?} is not an RFC 3339 timestamp or a YYYY-MM-DD date"),
            )
        })?),
        Some(Value::Number(n)) => Some(n.as_i64().map(Timestamp::from_seconds).ok_or_else(|| {
            malformed(
                Some("published_at"),
                format!("{n} is not whole seconds since the epoch"),
            )
        })?),
        Some(other) => {
            return Err(malformed(
                Some("published_at"),
                format!("expected a timestamp string, got {}", kind(other)),
            ));
        }
    };
    Ok(Article {
        id,
        title: text("title")?.unwrap_or_default(),
        body: text("body")?.unwrap_or_default(),
        published_at,
        section: text("section")?.unwrap_or_default(),
        lang: text("lang")?.unwrap_or_default(),
        url: text("url")?.unwrap_or_default(),
        story: text("story")?,
        category: text("category")?,
    })
}

/// Parses RFC 3339 (`2024-12-04T17:56:18+01:00`, fractional seconds kept), `YYYY-MM-DD HH:MM:SS` (taken as
/// UTC) or `YYYY-MM-DD` into an instant.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let instant = if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        instant.to_utc()
    } else if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        naive.and_utc()
    } else {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
    };
    Timestamp::new(instant.timestamp(), i64::from(instant.timestamp_subsec_nanos())).ok()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Accumulates articles from several files, enforcing last-wins on ids.
#[derive(Default)]
struct CorpusReader {
    corpus: Corpus,
    position_by_id: HashMap<String, usize>,
}

impl CorpusReader {
    fn read_file(&mut self, path: &Path, options: IngestOptions) -> Result<()> {
        let file = File::open(path).map_err(|err| Error::io(path, err))?;
        let gzip = path.extension().is_some_and(|ext| ext == "gz");
        self.read(file, gzip, path, options)
    }

    /// Reads JSON Lines from `input` (gzip-compressed when `gzip`); `path` labels errors.
    fn read<'a>(&mut self, input: impl Read + 'a, gzip: bool, path: &Path, options: IngestOptions) -> Result<()> {
        let input: Box<dyn Read + 'a> = if gzip {
            Box::new(MultiGzDecoder::new(input))
        } else {
            Box::new(input)
        };
        for (index, line) in BufReader::new(input).split(b'\n').enumerate() {
            let line_number = index + 1;
            let malformed = |reason: String| Error::MalformedInput {
                path: path.to_path_buf(),
                line: line_number,
                field: None,
                reason,
            };
            let line = line.map_err(|err| malformed(format!("cannot read line: {err}")))?;
            let parsed = match String::from_utf8(line) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => parse_article(&line, path, line_number),
                Err(err) => Err(malformed(format!("not valid UTF-8: {}", err.utf8_error()))),
            };
            self.corpus.lines_read += 1;
            match parsed {
                Ok(article) => self.accept(article),
                Err(err) if options.skip_malformed => {
                    self.corpus.malformed_skipped += 1;
                    if self.corpus.malformed_examples.len() < MAX_EXAMPLES {
                        self.corpus.malformed_examples.push(err.to_string());
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    fn accept(&mut self, article: Article) {
        if let Some(reason) = article.rejection_reason(DEFAULT_MAX_BODY_BYTES) {
            self.corpus.rejected.push(Rejection { id: article.id, reason });
            return;
        }
        match self.position_by_id.get(&article.id) {
            Some(&position) => {
                self.corpus.articles[position] = article;
                self.corpus.duplicates_replaced += 1;
            }
            None => {
                self.position_by_id
                    .insert(article.id.clone(), self.corpus.articles.len());
                self.corpus.articles.push(article);
            }
        }
    }

    fn finish(self) -> Corpus {
        self.corpus
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    fn write_temp(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_the_shared_schema() {
        let line = r#"{"id": "a1", "title": "T", "body": "B", "published_at": "2024-12-04T17:56:18+01:00", "section": "Ausland", "lang": "de", "url": "https://x", "story": null, "category": "Politik"}"#;
        let article = parse_article(line, Path::new("f"), 1).unwrap();
        assert_eq!(article.id, "a1");
        assert_eq!(article.published_at, Some(Timestamp::from_seconds(1_733_331_378)));
        assert_eq!(article.category.as_deref(), Some("Politik"));
        assert_eq!(article.story, None);
    }

    #[test]
    fn malformed_line_names_file_line_and_field() {
        let (_dir, path) = write_temp(
            "in.jsonl",
            "{\"id\":\"a\",\"title\":\"x\"}\n\n{\"id\":\"b\",\"title\":7}\n",
        );
        let err = read_files(std::slice::from_ref(&path), IngestOptions::default()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("in.jsonl:3"), "{message}");
        assert!(message.contains("\"title\""), "{message}");
    }

    #[test]
    fn bad_timestamp_is_named() {
        let err = parse_article(
            r#"{"id":"a","title":"x","published_at":"yesterday"}"#,
            Path::new("f"),
            9,
        )
        .unwrap_err();
        assert!(err.to_string().contains("published_at"), "{err}");
    }

    #[test]
    fn skip_malformed_counts_and_keeps_the_rest() {
        let (_dir, path) = write_temp(
            "in.jsonl",
            "{\"id\":\"a\",\"title\":\"x\"}\nnot json\n[1]\n{\"id\":\"b\",\"body\":\"y\"}\n",
        );
        let corpus = read_files(&[path], IngestOptions { skip_malformed: true }).unwrap();
        assert_eq!(corpus.articles.len(), 2);
        assert_eq!(corpus.malformed_skipped, 2);
        assert_eq!(corpus.malformed_examples.len(), 2);
    }

    #[test]
    fn duplicate_ids_last_wins_and_empty_articles_are_rejected() {
        let (_dir, path) = write_temp(
            "in.jsonl",
            "{\"id\":\"a\",\"title\":\"first\"}\n{\"id\":\"e\",\"title\":\" \",\"body\":\"\"}\n{\"id\":\"a\",\"title\":\"second\"}\n",
        );
        let corpus = read_files(&[path], IngestOptions::default()).unwrap();
        assert_eq!(corpus.articles.len(), 1);
        assert_eq!(corpus.articles[0].title, "second");
        assert_eq!(corpus.duplicates_replaced, 1);
        assert_eq!(
            corpus.rejected,
            vec![Rejection {
                id: "e".into(),
                reason: "empty title and body".into()
            }]
        );
    }

    #[test]
    fn reads_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl.gz");
        let mut encoder = flate2::write::GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        writeln!(encoder, "{{\"id\":\"a\",\"title\":\"x\"}}").unwrap();
        encoder.finish().unwrap();
        let corpus = read_files(&[path], IngestOptions::default()).unwrap();
        assert_eq!(corpus.articles.len(), 1);
    }

    #[test]
    fn timestamps_in_three_forms() {
        let at = |seconds| Some(Timestamp::from_seconds(seconds));
        assert_eq!(parse_timestamp("1970-01-02"), at(86_400));
        assert_eq!(parse_timestamp("1970-01-01 00:01:00"), at(60));
        assert_eq!(parse_timestamp("1970-01-01T00:00:10Z"), at(10));
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:10.25+00:00"),
            Some(Timestamp::new(10, 250_000_000).unwrap()),
            "fractional seconds are kept"
        );
        assert_eq!(parse_timestamp("04.12.2024"), None);
    }

    /// Fuzz cases per property below; together with the analysis and pipeline properties this is the
    /// "cases run" figure quoted in the README.
    const FUZZ_CASES: u32 = 2_000;

    fn read_bytes(bytes: &[u8], gzip: bool, options: IngestOptions) -> Result<Corpus> {
        let mut reader = CorpusReader::default();
        reader.read(bytes, gzip, Path::new("fuzz.jsonl"), options)?;
        Ok(reader.finish())
    }

    /// Lines that are mostly JSON objects in the schema, some broken, some not UTF-8.
    fn jsonl_lines() -> impl Strategy<Value = Vec<u8>> {
        let field = prop_oneof![
            Just("id"),
            Just("title"),
            Just("body"),
            Just("published_at"),
            Just("section"),
            Just("lang"),
            Just("story"),
        ];
        let value = prop_oneof![
            any::<String>().prop_map(Value::String),
            "[a-z0-9 -]{0,12}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
        ];
        let object = proptest::collection::btree_map(field, value, 0..7)
            .prop_map(|fields| serde_json::to_vec(&fields).expect("a map serialises"));
        let line = prop_oneof![
            4 => object,
            1 => proptest::collection::vec(any::<u8>(), 0..64),
            1 => any::<String>().prop_map(String::into_bytes),
        ];
        proptest::collection::vec(line, 0..20).prop_map(|lines| lines.join(&b'\n'))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(FUZZ_CASES))]

        #[test]
        fn arbitrary_input_never_panics_and_every_line_is_accounted_for(bytes in jsonl_lines()) {
            let lenient = read_bytes(&bytes, false, IngestOptions { skip_malformed: true }).unwrap();
            prop_assert_eq!(
                lenient.lines_read,
                lenient.articles.len() + lenient.duplicates_replaced + lenient.malformed_skipped
                    + lenient.rejected.len()
            );
            match read_bytes(&bytes, false, IngestOptions::default()) {
                Ok(strict) => prop_assert_eq!(strict.articles, lenient.articles),
                Err(Error::MalformedInput { line, .. }) => prop_assert!(line >= 1),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_plain_or_gzip(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let lenient = IngestOptions { skip_malformed: true };
            prop_assert!(read_bytes(&bytes, false, lenient).is_ok());
            let _ = read_bytes(&bytes, true, lenient);
        }

        #[test]
        fn every_accepted_article_keeps_its_fields(id in any::<String>(), title in any::<String>(), body in any::<String>()) {
            let line = serde_json::json!({ "id": id, "title": title, "body": body }).to_string();
            match parse_article(&line, Path::new("f"), 1) {
                Ok(article) => {
                    prop_assert_eq!(&article.id, &id);
                    prop_assert_eq!(&article.title, &title);
                    prop_assert_eq!(&article.body, &body);
                }
                Err(_) => prop_assert!(id.trim().is_empty()),
            }
        }
    }
}
