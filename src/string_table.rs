//! Many short strings without a heap block each. A million-article snapshot holds about 1.5 million
//! vocabulary terms (a key and a surface form each) and a million article ids: as `String`s, and again as
//! the keys of a `HashMap`, they were millions of allocations to make at every open and tens of bytes of
//! allocator overhead apiece. [`StringTable`] appends strings to one buffer and records where each ends,
//! so it is two allocations and decodes from a snapshot in one pass; [`PositionIndex`] finds a string's
//! position by value through a hash table of positions, so no string is stored a second time as a key.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

/// Strings in one buffer, addressed by their position (the order they were pushed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredStrings")]
pub struct StringTable {
    text: String,
    /// `ends[i]` is where string `i` ends in `text` (it starts where string `i - 1` ends).
    ends: Vec<u64>,
}

/// [`StringTable`] as it is decoded, before its offsets are checked.
#[derive(Deserialize)]
struct StoredStrings {
    text: String,
    ends: Vec<u64>,
}

impl TryFrom<StoredStrings> for StringTable {
    type Error = String;

    fn try_from(stored: StoredStrings) -> Result<Self, String> {
        let mut start = 0;
        for (position, &end) in stored.ends.iter().enumerate() {
            let fits = end >= start && end <= stored.text.len() as u64 && stored.text.is_char_boundary(end as usize);
            if !fits {
                return Err(format!(
                    "string {position} ends at byte {end}, outside the text or inside a character"
                ));
            }
            start = end;
        }
        Ok(Self {
            text: stored.text,
            ends: stored.ends,
        })
    }
}

impl StringTable {
    /// Appends `string`; returns its position.
    pub fn push(&mut self, string: &str) -> usize {
        self.text.push_str(string);
        self.ends.push(self.text.len() as u64);
        self.ends.len() - 1
    }

    /// The string at `position`; panics beyond [`StringTable::len`].
    pub fn get(&self, position: usize) -> &str {
        let start = position.checked_sub(1).map_or(0, |before| self.ends[before] as usize);
        &self.text[start..self.ends[position] as usize]
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there is no string.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every string in position order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|position| self.get(position))
    }
}

impl<S: AsRef<str>> FromIterator<S> for StringTable {
    fn from_iter<I: IntoIterator<Item = S>>(strings: I) -> Self {
        let mut table = Self::default();
        for string in strings {
            table.push(string.as_ref());
        }
        table
    }
}

/// Finds positions by the string stored there, for strings that live elsewhere (a [`StringTable`], the
/// ids of a slice of articles): the table holds only positions, and every lookup is handed the function
/// that reads the string at a position.
#[derive(Clone, Debug, Default)]
pub struct PositionIndex {
    positions: HashTable<u32>,
}

impl PositionIndex {
    /// Indexes positions `0..count`, whose strings `key` reads. Of equal strings the first position is kept.
    pub fn build<'a>(count: usize, key: impl Fn(usize) -> &'a str) -> Self {
        let mut index = Self {
            positions: HashTable::with_capacity(count),
        };
        for position in 0..count {
            index.insert(position, &key);
        }
        index
    }

    /// Adds `position`, unless its string is already indexed.
    pub fn insert<'a>(&mut self, position: usize, key: impl Fn(usize) -> &'a str) {
        self.find_or_insert(key(position), position, key);
    }

    /// The position whose string `key` reads as `wanted`, and false; or, if there is none, `new_position`
    /// indexed for `wanted`, and true: the caller must then store `wanted` at `new_position` before
    /// `key` is called on it. One hash of `wanted` either way.
    pub fn find_or_insert<'a>(
        &mut self,
        wanted: &str,
        new_position: usize,
        key: impl Fn(usize) -> &'a str,
    ) -> (usize, bool) {
        let hash = FxBuildHasher.hash_one(wanted);
        match self.positions.entry(
            hash,
            |&position| key(position as usize) == wanted,
            |&other| FxBuildHasher.hash_one(key(other as usize)),
        ) {
            Entry::Occupied(found) => (*found.get() as usize, false),
            Entry::Vacant(vacant) => {
                vacant.insert(new_position as u32);
                (new_position, true)
            }
        }
    }

    /// The position whose string `key` reads as `wanted`.
    pub fn find<'a>(&self, wanted: &str, key: impl Fn(usize) -> &'a str) -> Option<usize> {
        self.positions
            .find(FxBuildHasher.hash_one(wanted), |&position| {
                key(position as usize) == wanted
            })
            .map(|&position| position as usize)
    }

    /// Number of positions indexed.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_come_back_by_position_and_by_value() {
        let table: StringTable = ["Bundestag", "", "Zürich", "Bundestag"].into_iter().collect();
        assert_eq!(table.len(), 4);
        assert_eq!(
            table.iter().collect::<Vec<_>>(),
            ["Bundestag", "", "Zürich", "Bundestag"]
        );
        let index = PositionIndex::build(table.len(), |position| table.get(position));
        assert_eq!(index.len(), 3, "the repeated string keeps its first position");
        assert_eq!(index.find("Zürich", |position| table.get(position)), Some(2));
        assert_eq!(index.find("Bundestag", |position| table.get(position)), Some(0));
        assert_eq!(index.find("", |position| table.get(position)), Some(1));
        assert_eq!(index.find("Zurich", |position| table.get(position)), None);
    }

    #[test]
    fn find_or_insert_indexes_each_string_once() {
        let mut table = StringTable::default();
        let mut index = PositionIndex::default();
        let mut positions = Vec::new();
        for word in ["Bund", "Land", "Bund", "", "Land", "Gemeinde"] {
            let (position, is_new) = index.find_or_insert(word, table.len(), |position| table.get(position));
            if is_new {
                assert_eq!(table.push(word), position);
            }
            positions.push(position);
        }
        assert_eq!(positions, [0, 1, 0, 2, 1, 3]);
        assert_eq!(index.len(), 4);
        assert_eq!(index.find("Gemeinde", |position| table.get(position)), Some(3));
    }

    #[test]
    fn round_trips_and_refuses_offsets_outside_the_text() {
        let table: StringTable = ["a", "bc", "ö"].into_iter().collect();
        let bytes = postcard::to_stdvec(&table).unwrap();
        assert_eq!(postcard::from_bytes::<StringTable>(&bytes).unwrap(), table);
        for ends in [vec![1, 9], vec![2, 1], vec![4, 4 + 1]] {
            let text = "abcö".to_owned();
            let damaged = postcard::to_stdvec(&(text, ends.clone())).unwrap();
            assert!(postcard::from_bytes::<StringTable>(&damaged).is_err(), "{ends:?}");
        }
    }
}
