//! How does a sparse TF-IDF vector become a short dense one that the graph can search quickly? Latent
//! semantic analysis: a truncated SVD of the document-term matrix maps every vector onto its `dimensions`
//! strongest singular directions, and the graph's candidates are then re-ranked by the exact sparse cosine.
//!
//! The SVD is fitted by randomized range finding (Halko, Martinsson and Tropp, "Finding structure with
//! randomness", 2011, algorithms 4.4 and 5.1) on a seeded sample of at most [`ProjectionConfig::sample`]
//! articles, over the [`ProjectionConfig::max_terms`] terms most frequent in that sample (a term in a single
//! sampled article cannot shape a direction). Its cost is a few sparse-times-dense products of the sample
//! and eigendecompositions of `l × l` matrices (`l` = dimensions + 16), so it does not grow with the
//! archive; projecting every article is one sparse-times-dense product. The same vectors, settings and seed
//! give the same projection.
//!
//! **Why LSA and not a random projection.** Measured on 2026-12-01 (`benches/scale/README.md`): a seeded
//! sparse random projection to 256 dimensions kept only 0.73 of the exact top 10 on gnad10k within 200
//! re-ranked candidates, the same as a brute-force scan of the projections, because its error
//! (≈ 1/√256 ≈ 0.06) is a third of a typical top-1 cosine (≈ 0.18); 1,024 dimensions were needed for 0.94,
//! which is the whole memory budget of an article. LSA's directions follow the corpus, so the same
//! dimensions keep far more of the neighbourhood (scikit-learn's TruncatedSVD: 0.884 against 0.629 for the
//! random projection at 10,000 generated articles).

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::parallel::prelude::*;
use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::flat_file::{FlatArray, Residency};
use crate::sparse::{SparseRef, SparseVector, TermId};
use crate::vector_table::VectorTable;

/// Default [`ProjectionConfig::dimensions`]. On the generated 100,000-article archive, 128 dimensions kept
/// recall@10 at 0.969 against 0.970 for 256 (both after re-ranking, graph `ef_construction` 40) while the fit
/// took 11 s instead of 20 s, the graph 35 s instead of 44 s, and the dense table half the bytes.
pub const DEFAULT_DIMENSIONS: usize = 128;
/// Default [`ProjectionConfig::sample`].
pub const DEFAULT_SAMPLE: usize = 50_000;
/// Default [`ProjectionConfig::max_terms`].
pub const DEFAULT_MAX_TERMS: usize = 131_072;
/// Default [`ProjectionConfig::power_iterations`].
pub const DEFAULT_POWER_ITERATIONS: usize = 2;
/// Default [`ProjectionConfig::seed`].
pub const DEFAULT_SEED: u64 = 0x4c53_4100_5745_4954;

/// Directions sampled beyond `dimensions`, so that the strongest `dimensions` are found accurately.
const OVERSAMPLING: usize = 16;

/// Marks a term that has no row in the projection.
const NO_ROW: u32 = u32::MAX;

/// Largest `dimensions` accepted.
const MAX_DIMENSIONS: usize = 4_096;

/// How the projection is fitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionConfig {
    dimensions: usize,
    sample: usize,
    max_terms: usize,
    power_iterations: usize,
    seed: u64,
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        Self {
            dimensions: DEFAULT_DIMENSIONS,
            sample: DEFAULT_SAMPLE,
            max_terms: DEFAULT_MAX_TERMS,
            power_iterations: DEFAULT_POWER_ITERATIONS,
            seed: DEFAULT_SEED,
        }
    }
}

impl ProjectionConfig {
    /// `dimensions`: length of the dense vectors. More keep more of the exact neighbourhood and cost
    /// 4 bytes per article each; 1 to 4,096.
    pub fn dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = dimensions;
        self
    }

    /// `sample`: at most this many articles, drawn with the seed, are used to fit the SVD.
    pub fn sample(mut self, sample: usize) -> Self {
        self.sample = sample;
        self
    }

    /// `max_terms`: at most this many terms (those in the most sampled articles) get a row; other terms
    /// still count in the exact re-ranking, just not in the dense vector.
    pub fn max_terms(mut self, max_terms: usize) -> Self {
        self.max_terms = max_terms;
        self
    }

    /// `power_iterations`: passes that sharpen the range finder when singular values decay slowly, as
    /// they do for text; each costs two sparse products of the sample.
    pub fn power_iterations(mut self, power_iterations: usize) -> Self {
        self.power_iterations = power_iterations;
        self
    }

    /// `seed`: picks the sample and the random test matrix.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the settings, naming the first that does not make sense.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_DIMENSIONS).contains(&self.dimensions) {
            return Err(Error::invalid(
                "dimensions",
                format!("must be in 1..={MAX_DIMENSIONS}, got {}", self.dimensions),
            ));
        }
        if self.sample == 0 {
            return Err(Error::invalid("sample", "must be at least 1"));
        }
        if self.max_terms == 0 {
            return Err(Error::invalid("max_terms", "must be at least 1"));
        }
        Ok(())
    }
}

/// A fitted projection: for each term with a row, its coordinates on the singular directions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    config: ProjectionConfig,
    dimensions: usize,
    /// For each term id, its row in `components`, or [`NO_ROW`].
    rows: Vec<u32>,
    /// `rows × dimensions`, row-major: the right singular vectors, one column per direction.
    components: Vec<f32>,
}

impl Projection {
    /// Fits the projection on (a sample of) `vectors`, whose term ids are below `term_count`.
    pub fn fit(vectors: &VectorTable, term_count: usize, config: &ProjectionConfig) -> Result<Self> {
        config.validate()?;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut sample: Vec<usize> = (0..vectors.len()).collect();
        sample.shuffle(&mut rng);
        sample.truncate(config.sample);
        sample.sort_unstable();

        let kept = frequent_terms(
            sample.iter().map(|&slot| vectors.get(slot)),
            term_count,
            config.max_terms,
        );
        let mut rows = vec![NO_ROW; term_count];
        for (row, &term) in kept.iter().enumerate() {
            rows[term as usize] = row as u32;
        }
        let matrix = Csr::from_rows(
            sample.iter().map(|&slot| project_terms(vectors.get(slot), &rows)),
            kept.len(),
        );
        let dimensions = config.dimensions;
        let mut components = vec![0.0f32; kept.len() * dimensions];
        let width = (dimensions + OVERSAMPLING).min(sample.len()).min(kept.len());
        if width > 0 {
            let directions = right_singular_vectors(&matrix, width, config.power_iterations, &mut rng);
            for (column, direction) in directions.axis_iter(Axis(1)).take(dimensions).enumerate() {
                for (row, value) in direction.iter().enumerate() {
                    components[row * dimensions + column] = *value;
                }
            }
        }
        Ok(Self {
            config: config.clone(),
            dimensions,
            rows,
            components,
        })
    }

    /// The settings it was fitted with.
    pub fn config(&self) -> &ProjectionConfig {
        &self.config
    }

    /// Length of the dense vectors.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Terms that have a row.
    pub fn term_count(&self) -> usize {
        self.components.len() / self.dimensions.max(1)
    }

    /// Writes the L2-normalised projection of `vector` into `out` (of length [`Projection::dimensions`]);
    /// all zeros when none of its terms has a row. Terms beyond the fitted vocabulary are ignored.
    pub fn project_into(&self, vector: SparseRef<'_>, out: &mut [f32]) {
        out.fill(0.0);
        for (row, weight) in project_terms(vector, &self.rows) {
            let start = row as usize * self.dimensions;
            for (value, component) in out.iter_mut().zip(&self.components[start..start + self.dimensions]) {
                *value += weight * component;
            }
        }
        normalize(out);
    }

    /// The projection of `vector`.
    pub fn project(&self, vector: &SparseVector) -> Vec<f32> {
        let mut out = vec![0.0; self.dimensions];
        self.project_into(vector.view(), &mut out);
        out
    }

    /// Projects every vector, on all cores.
    pub fn project_all(&self, vectors: &VectorTable) -> DenseVectors {
        let mut values = vec![0.0f32; vectors.len() * self.dimensions];
        if self.dimensions > 0 {
            values
                .par_chunks_mut(self.dimensions)
                .enumerate()
                .for_each(|(slot, out)| self.project_into(vectors.get(slot), out));
        }
        DenseVectors {
            dimensions: self.dimensions,
            values: values.into(),
        }
    }
}

/// Dense vectors of one length in one flat array (on the heap, or mapped from the snapshot); row `i`
/// belongs to slot `i`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DenseVectors {
    dimensions: usize,
    values: FlatArray<f32>,
}

impl DenseVectors {
    /// Wraps `values`, `dimensions` per vector (`values.len()` must be a multiple of it).
    pub fn from_flat(dimensions: usize, values: impl Into<FlatArray<f32>>) -> Result<Self> {
        let values = values.into();
        if dimensions == 0 || values.len() % dimensions != 0 {
            return Err(Error::Index(format!(
                "{} values do not make vectors of {dimensions} dimensions",
                values.len()
            )));
        }
        Ok(Self { dimensions, values })
    }

    /// Hands the pages of mapped vectors back, or maps them all ([`Residency`]).
    pub fn set_residency(&self, residency: Residency) -> std::io::Result<()> {
        self.values.set_residency(residency)
    }

    /// Length of each vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.values.len() / self.dimensions.max(1)
    }

    /// True when there is no vector.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The vector of `slot`.
    pub fn row(&self, slot: usize) -> &[f32] {
        &self.values[slot * self.dimensions..(slot + 1) * self.dimensions]
    }

    /// All values, vector after vector.
    pub fn as_flat(&self) -> &[f32] {
        &self.values
    }
}

/// The terms in at least two of `vectors`, at most `max_terms` of them (the most frequent, ties to the
/// lower id), in id order.
fn frequent_terms<'a>(
    vectors: impl Iterator<Item = SparseRef<'a>>,
    term_count: usize,
    max_terms: usize,
) -> Vec<TermId> {
    let mut document_frequency = vec![0u32; term_count];
    for vector in vectors {
        for (term, _) in vector.iter() {
            document_frequency[term as usize] += 1;
        }
    }
    let mut kept: Vec<TermId> = (0..term_count as TermId)
        .filter(|&term| document_frequency[term as usize] >= 2)
        .collect();
    if kept.len() > max_terms {
        kept.sort_by(|&a, &b| {
            document_frequency[b as usize]
                .cmp(&document_frequency[a as usize])
                .then(a.cmp(&b))
        });
        kept.truncate(max_terms);
        kept.sort_unstable();
    }
    kept
}

/// The entries of `vector` whose terms have a row, as (row, weight).
fn project_terms<'a>(vector: SparseRef<'a>, rows: &'a [u32]) -> impl Iterator<Item = (u32, f32)> + 'a {
    vector.iter().filter_map(|(term, weight)| {
        rows.get(term as usize)
            .filter(|&&row| row != NO_ROW)
            .map(|&row| (row, weight))
    })
}

/// Scales `values` to unit L2 norm, unless they are all zero.
fn normalize(values: &mut [f32]) {
    let norm = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 {
        for value in values {
            *value /= norm;
        }
    }
}

/// The first `width` right singular vectors of `matrix` (columns of a `terms × width` matrix, strongest
/// first), by a randomized range finder with `power_iterations` re-orthonormalised power passes.
fn right_singular_vectors(matrix: &Csr, width: usize, power_iterations: usize, rng: &mut StdRng) -> Array2<f32> {
    let transposed = matrix.transpose();
    let test = Array2::from_shape_simple_fn((matrix.columns, width), || rng.random_range(-1.0f32..1.0));
    let mut range = orthonormalize(matrix.times(&test));
    for _ in 0..power_iterations {
        let back = orthonormalize(transposed.times(&range));
        range = orthonormalize(matrix.times(&back));
    }
    // B = Qᵀ·X, held as its transpose Xᵀ·Q. B·Bᵀ = Ũ·Σ²·Ũᵀ gives V = Bᵀ·Ũ·Σ⁻¹.
    let projected = transposed.times(&range);
    let (values, vectors) = symmetric_eigen(&projected.t().dot(&projected));
    let mut scale = Array2::<f32>::zeros((width, width));
    for (column, &value) in values.iter().enumerate() {
        if value > 0.0 {
            scale
                .column_mut(column)
                .assign(&(&vectors.column(column) / value.sqrt() as f32));
        }
    }
    projected.dot(&scale)
}

/// Columns spanning the same space as `matrix`'s, orthonormal: `matrix · W · Λ^(-1/2)` for the
/// eigendecomposition `W·Λ·Wᵀ` of its Gram matrix. Directions with a negligible eigenvalue become zero.
fn orthonormalize(matrix: Array2<f32>) -> Array2<f32> {
    let (values, vectors) = symmetric_eigen(&matrix.t().dot(&matrix));
    let largest = values.first().copied().unwrap_or(0.0);
    let width = values.len();
    let mut transform = Array2::<f32>::zeros((width, width));
    for (column, &value) in values.iter().enumerate() {
        if value > largest * 1e-10 && value > 0.0 {
            transform
                .column_mut(column)
                .assign(&(&vectors.column(column) / value.sqrt() as f32));
        }
    }
    matrix.dot(&transform)
}

/// Eigenvalues (descending) and eigenvectors (one column each, same order) of a symmetric matrix,
/// computed in f64.
fn symmetric_eigen(matrix: &Array2<f32>) -> (Vec<f64>, Array2<f32>) {
    let size = matrix.nrows();
    let eigen = SymmetricEigen::new(DMatrix::from_fn(size, size, |i, j| f64::from(matrix[[i, j]])));
    let mut order: Vec<usize> = (0..size).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]).then(a.cmp(&b)));
    let values = order.iter().map(|&i| eigen.eigenvalues[i]).collect();
    let vectors = Array2::from_shape_fn((size, size), |(row, column)| {
        eigen.eigenvectors[(row, order[column])] as f32
    });
    (values, vectors)
}

/// A sparse matrix in compressed rows.
struct Csr {
    starts: Vec<usize>,
    columns_of: Vec<u32>,
    values: Vec<f32>,
    columns: usize,
}

impl Csr {
    fn from_rows(rows: impl Iterator<Item = impl Iterator<Item = (u32, f32)>>, columns: usize) -> Self {
        let mut matrix = Self {
            starts: vec![0],
            columns_of: Vec::new(),
            values: Vec::new(),
            columns,
        };
        for row in rows {
            for (column, value) in row {
                matrix.columns_of.push(column);
                matrix.values.push(value);
            }
            matrix.starts.push(matrix.values.len());
        }
        matrix
    }

    fn rows(&self) -> usize {
        self.starts.len() - 1
    }

    fn transpose(&self) -> Self {
        let mut counts = vec![0usize; self.columns + 1];
        for &column in &self.columns_of {
            counts[column as usize + 1] += 1;
        }
        for column in 0..self.columns {
            counts[column + 1] += counts[column];
        }
        let starts = counts.clone();
        let mut next = counts;
        let mut columns_of = vec![0u32; self.values.len()];
        let mut values = vec![0.0f32; self.values.len()];
        for row in 0..self.rows() {
            for entry in self.starts[row]..self.starts[row + 1] {
                let column = self.columns_of[entry] as usize;
                columns_of[next[column]] = row as u32;
                values[next[column]] = self.values[entry];
                next[column] += 1;
            }
        }
        Self {
            starts,
            columns_of,
            values,
            columns: self.rows(),
        }
    }

    /// `self · dense`, a row of the result per thread task.
    fn times(&self, dense: &Array2<f32>) -> Array2<f32> {
        let mut product = Array2::<f32>::zeros((self.rows(), dense.ncols()));
        product
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(row, mut out)| {
                for entry in self.starts[row]..self.starts[row + 1] {
                    out.scaled_add(self.values[entry], &dense.row(self.columns_of[entry] as usize));
                }
            });
        product
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Articles on `topics` topics: each uses its topic's 6 words heavily, a few shared words lightly and a
    /// word of its own.
    fn topical_vectors(count: u32, topics: u32) -> VectorTable {
        let vectors: Vec<SparseVector> = (0..count)
            .map(|i| {
                let topic = i % topics;
                let mut pairs: Vec<(TermId, f32)> =
                    (0..6).map(|w| (topic * 6 + w, 1.0 + ((i + w) % 3) as f32)).collect();
                pairs.push((topics * 6 + i % 5, 0.5));
                pairs.push((topics * 6 + 5 + i, 0.3));
                SparseVector::from_pairs(pairs)
            })
            .collect();
        vectors.iter().collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn articles_of_one_topic_land_close_and_others_far() {
        let vectors = topical_vectors(400, 8);
        let term_count = 8 * 6 + 5 + 400;
        let projection = Projection::fit(&vectors, term_count, &ProjectionConfig::default().dimensions(16)).unwrap();
        let dense = projection.project_all(&vectors);
        assert_eq!(dense.len(), 400);
        for i in 0..16 {
            let same = dot(dense.row(i), dense.row(i + 8));
            let other = dot(dense.row(i), dense.row(i + 1));
            let exact = vectors.get(i).dot(vectors.get(i + 8));
            assert!(
                same >= exact - 0.02,
                "article {i}: same-topic cosine {same}, exact {exact}"
            );
            assert!(other < 0.3, "article {i}: other-topic cosine {other}");
            let norm = dot(dense.row(i), dense.row(i));
            assert!((norm - 1.0).abs() < 1e-4, "article {i}: norm² {norm}");
        }
    }

    #[test]
    fn the_directions_are_orthonormal() {
        let vectors = topical_vectors(300, 12);
        let term_count = 12 * 6 + 5 + 300;
        let projection = Projection::fit(&vectors, term_count, &ProjectionConfig::default().dimensions(10)).unwrap();
        let (rows, dims) = (projection.term_count(), projection.dimensions());
        let components = Array2::from_shape_vec((rows, dims), projection.components.clone()).unwrap();
        let gram = components.t().dot(&components);
        for i in 0..dims {
            for j in 0..dims {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((gram[[i, j]] - expected).abs() < 1e-3, "({i}, {j}): {}", gram[[i, j]]);
            }
        }
    }

    #[test]
    fn same_seed_same_projection_and_another_seed_samples_differently() {
        let vectors = topical_vectors(200, 5);
        let config = ProjectionConfig::default().dimensions(8).sample(120);
        let first = Projection::fit(&vectors, 300, &config).unwrap();
        assert_eq!(Projection::fit(&vectors, 300, &config).unwrap(), first);
        assert_ne!(Projection::fit(&vectors, 300, &config.clone().seed(7)).unwrap(), first);
    }

    #[test]
    fn tiny_corpora_and_unknown_terms_give_zero_vectors_not_errors() {
        let single = SparseVector::from_pairs(vec![(0, 1.0), (1, 2.0)]);
        let table: VectorTable = [&single].into_iter().collect();
        let projection = Projection::fit(&table, 2, &ProjectionConfig::default().dimensions(4)).unwrap();
        assert_eq!(projection.term_count(), 0, "no term is in two articles");
        assert_eq!(projection.project(&single), vec![0.0; 4]);
        let beyond = SparseVector::from_pairs(vec![(99, 1.0)]);
        assert_eq!(projection.project(&beyond), vec![0.0; 4]);
        assert!(ProjectionConfig::default().dimensions(0).validate().is_err());
    }

    #[test]
    fn the_transpose_of_the_transpose_is_the_matrix() {
        let rows = [vec![(0u32, 1.0f32), (2, 2.0)], vec![], vec![(1, 3.0), (2, 4.0)]];
        let matrix = Csr::from_rows(rows.iter().map(|row| row.iter().copied()), 3);
        let back = matrix.transpose().transpose();
        assert_eq!(
            (back.starts, back.columns_of, back.values),
            (matrix.starts, matrix.columns_of, matrix.values)
        );
    }
}
