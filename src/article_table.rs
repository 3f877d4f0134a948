//! Where do the base articles' metadata live? In columns: ids, titles and URLs each in one
//! [`StringTable`], sections, languages and labels as a small table of distinct values with one index per
//! article, publication times in one array. A million articles as `Article` structs were five or more heap
//! blocks each, allocated one by one at every open; as columns they are a dozen allocations, decoded from
//! the snapshot's corpus file in one pass. Bodies are not here: they stay on disk ([`crate::bodies`]).

use serde::{Deserialize, Serialize};

use crate::article::{Article, Timestamp};
use crate::string_table::{PositionIndex, StringTable};

/// One article's metadata, borrowed from an [`ArticleTable`] or an [`Article`]: every field but the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArticleRef<'a> {
    /// See [`Article::id`].
    pub id: &'a str,
    /// See [`Article::title`].
    pub title: &'a str,
    /// See [`Article::published_at`].
    pub published_at: Option<Timestamp>,
    /// See [`Article::section`].
    pub section: &'a str,
    /// See [`Article::lang`].
    pub lang: &'a str,
    /// See [`Article::url`].
    pub url: &'a str,
    /// See [`Article::story`].
    pub story: Option<&'a str>,
    /// See [`Article::category`].
    pub category: Option<&'a str>,
}

impl ArticleRef<'_> {
    /// An owned article with these fields and `body`.
    pub fn to_article(self, body: String) -> Article {
        Article {
            id: self.id.to_owned(),
            title: self.title.to_owned(),
            body,
            published_at: self.published_at,
            section: self.section.to_owned(),
            lang: self.lang.to_owned(),
            url: self.url.to_owned(),
            story: self.story.map(str::to_owned),
            category: self.category.map(str::to_owned),
        }
    }
}

impl Article {
    /// This article's metadata (everything but the body), borrowed.
    pub fn metadata(&self) -> ArticleRef<'_> {
        ArticleRef {
            id: &self.id,
            title: &self.title,
            published_at: self.published_at,
            section: &self.section,
            lang: &self.lang,
            url: &self.url,
            story: self.story.as_deref(),
            category: self.category.as_deref(),
        }
    }
}

/// The metadata of the base articles, slot order; row `i` belongs to slot `i`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(try_from = "StoredColumns")]
pub struct ArticleTable {
    columns: StoredColumns,
    section_index: PositionIndex,
    lang_index: PositionIndex,
    story_index: PositionIndex,
    category_index: PositionIndex,
}

/// The columns as the corpus file stores them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StoredColumns {
    ids: StringTable,
    titles: StringTable,
    urls: StringTable,
    published_at: Vec<Option<Timestamp>>,
    sections: Labels,
    langs: Labels,
    stories: Labels,
    categories: Labels,
}

/// A column of few distinct values: each value once, and per article the position of its value
/// ([`Labels::NONE`] for an absent optional one).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Labels {
    values: StringTable,
    of: Vec<u32>,
}

impl Labels {
    const NONE: u32 = u32::MAX;

    fn get(&self, row: usize) -> Option<&str> {
        match self.of[row] {
            Self::NONE => None,
            position => Some(self.values.get(position as usize)),
        }
    }

    fn push(&mut self, index: &mut PositionIndex, value: Option<&str>) {
        let position = value.map_or(Self::NONE, |value| {
            let found = index.find(value, |position| self.values.get(position));
            let position = found.unwrap_or_else(|| {
                let position = self.values.push(value);
                index.insert(position, |position| self.values.get(position));
                position
            });
            position as u32
        });
        self.of.push(position);
    }

    fn index(&self) -> PositionIndex {
        PositionIndex::build(self.values.len(), |position| self.values.get(position))
    }

    /// What is wrong with this column of `rows` rows, if anything.
    fn shape_error(&self, rows: usize) -> Option<String> {
        if self.of.len() != rows {
            return Some(format!("{} values for {rows} articles", self.of.len()));
        }
        let beyond = self
            .of
            .iter()
            .find(|&&position| position != Self::NONE && position as usize >= self.values.len());
        beyond.map(|position| format!("an article names value {position} of {}", self.values.len()))
    }
}

impl TryFrom<StoredColumns> for ArticleTable {
    type Error = String;

    fn try_from(columns: StoredColumns) -> Result<Self, String> {
        let rows = columns.ids.len();
        if columns.titles.len() != rows || columns.urls.len() != rows || columns.published_at.len() != rows {
            return Err(format!(
                "{rows} ids, {} titles, {} URLs and {} publication times",
                columns.titles.len(),
                columns.urls.len(),
                columns.published_at.len()
            ));
        }
        let labels = [
            ("sections", &columns.sections),
            ("languages", &columns.langs),
            ("stories", &columns.stories),
            ("categories", &columns.categories),
        ];
        for (name, labels) in labels {
            if let Some(reason) = labels.shape_error(rows) {
                return Err(format!("{name}: {reason}"));
            }
        }
        Ok(Self {
            section_index: columns.sections.index(),
            lang_index: columns.langs.index(),
            story_index: columns.stories.index(),
            category_index: columns.categories.index(),
            columns,
        })
    }
}

/// Writes the columns alone, by reference (serde's `into` would copy the whole table first).
impl Serialize for ArticleTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.columns.serialize(serializer)
    }
}

impl ArticleTable {
    /// Appends the metadata of `article` as the next row.
    pub fn push(&mut self, article: ArticleRef<'_>) {
        let columns = &mut self.columns;
        columns.ids.push(article.id);
        columns.titles.push(article.title);
        columns.urls.push(article.url);
        columns.published_at.push(article.published_at);
        columns.sections.push(&mut self.section_index, Some(article.section));
        columns.langs.push(&mut self.lang_index, Some(article.lang));
        columns.stories.push(&mut self.story_index, article.story);
        columns.categories.push(&mut self.category_index, article.category);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.columns.ids.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of `slot`; panics beyond [`ArticleTable::len`].
    pub fn id(&self, slot: usize) -> &str {
        self.columns.ids.get(slot)
    }

    /// The metadata of `slot`; panics beyond [`ArticleTable::len`].
    pub fn get(&self, slot: usize) -> ArticleRef<'_> {
        let columns = &self.columns;
        ArticleRef {
            id: columns.ids.get(slot),
            title: columns.titles.get(slot),
            published_at: columns.published_at[slot],
            section: columns.sections.get(slot).unwrap_or_default(),
            lang: columns.langs.get(slot).unwrap_or_default(),
            url: columns.urls.get(slot),
            story: columns.stories.get(slot),
            category: columns.categories.get(slot),
        }
    }

    /// Every row in slot order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ArticleRef<'_>> + '_ {
        (0..self.len()).map(|slot| self.get(slot))
    }
}

impl<'a> FromIterator<&'a Article> for ArticleTable {
    fn from_iter<I: IntoIterator<Item = &'a Article>>(articles: I) -> Self {
        let mut table = Self::default();
        for article in articles {
            table.push(article.metadata());
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn articles() -> Vec<Article> {
        let article = |id: &str, section: &str, story: Option<&str>| Article {
            id: id.into(),
            title: format!("Titel {id}"),
            body: "Text".into(),
            published_at: Some(Timestamp::from_seconds(id.len() as i64)),
            section: section.into(),
            lang: "de".into(),
            url: format!("https://example.org/{id}"),
            story: story.map(str::to_owned),
            category: None,
        };
        vec![
            article("a", "Sport", Some("s1")),
            article("bb", "Kultur", None),
            article("ccc", "Sport", Some("s1")),
        ]
    }

    #[test]
    fn rows_are_the_articles_pushed_without_their_bodies() {
        let articles = articles();
        let table: ArticleTable = articles.iter().collect();
        assert_eq!(table.len(), 3);
        for (row, article) in table.iter().zip(&articles) {
            assert_eq!(row, article.metadata());
            assert_eq!(row.to_article(article.body.clone()), *article);
        }
        assert_eq!(table.columns.sections.values.len(), 2, "each section is stored once");
        assert_eq!(table.id(2), "ccc");
    }

    #[test]
    fn round_trips_and_refuses_columns_of_other_lengths_or_values_beyond_the_labels() {
        let table: ArticleTable = articles().iter().collect();
        let bytes = postcard::to_stdvec(&table).unwrap();
        let read_back: ArticleTable = postcard::from_bytes(&bytes).unwrap();
        assert!(read_back.iter().eq(table.iter()));
        let mut pushed = read_back.clone();
        pushed.push(articles()[0].metadata());
        assert_eq!(
            pushed.columns.sections.values.len(),
            2,
            "the value index is rebuilt on decoding"
        );

        let mut short = table.columns.clone();
        short.titles = StringTable::default();
        assert!(ArticleTable::try_from(short).unwrap_err().contains("titles"));
        let mut beyond = table.columns.clone();
        beyond.sections.of[1] = 7;
        assert!(ArticleTable::try_from(beyond).unwrap_err().contains("sections"));
    }
}
