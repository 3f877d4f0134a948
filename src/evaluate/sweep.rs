//! What does recall cost? Sweeps HNSW `ef_search` over the evaluation sources, measuring recall@k against
//! exact search and per-query latency at each value, and draws the trade-off as an SVG chart.

use std::path::Path;
use std::time::Instant;

use plotters::prelude::*;
use serde::Serialize;

use super::metrics::percentile;
use super::overlap;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::{NeighborIndex, Slot};

/// `ef_search` values swept when the caller names none.
pub const DEFAULT_EF_VALUES: [usize; 7] = [10, 16, 32, 64, 128, 256, 512];

/// Recall and latency at one `ef_search`.
#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    /// The `ef_search` used.
    pub ef_search: usize,
    /// Mean share of the exact top k found.
    pub ann_recall_at_k: f64,
    /// Median graph search latency in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile graph search latency in milliseconds.
    pub latency_p99_ms: f64,
}

/// Measures every `ef_values` entry on the stored vectors of `sources`, each source excluded from its own
/// results.
pub fn ef_sweep(engine: &Engine, sources: &[Slot], k: usize, ef_values: &[usize]) -> Vec<SweepPoint> {
    let truths: Vec<_> = sources
        .iter()
        .map(|&source| {
            let not_source = |slot: Slot| slot != source;
            let query = engine.vectors().get(source as usize).to_vector();
            engine.exact().search(&query, k, &not_source)
        })
        .collect();
    ef_values
        .iter()
        .map(|&ef_search| {
            let mut recall = 0.0;
            let mut latencies_ms = Vec::with_capacity(sources.len());
            for (&source, truth) in sources.iter().zip(&truths) {
                let not_source = |slot: Slot| slot != source;
                let query = engine.vectors().get(source as usize).to_vector();
                let started = Instant::now();
                let found = engine.approximate().search_with_ef(&query, k, ef_search, &not_source);
                latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                recall += overlap(truth, &found);
            }
            latencies_ms.sort_by(f64::total_cmp);
            SweepPoint {
                ef_search,
                ann_recall_at_k: recall / sources.len().max(1) as f64,
                latency_p50_ms: percentile(&latencies_ms, 0.50),
                latency_p99_ms: percentile(&latencies_ms, 0.99),
            }
        })
        .collect()
}

/// Draws ANN recall (y) against median latency (x), one labelled point per `ef_search`, as an SVG file.
pub fn write_chart(points: &[SweepPoint], k: usize, path: &Path) -> Result<()> {
    draw(points, k, path).map_err(|err| Error::io(path, std::io::Error::other(err.to_string())))
}

fn draw(points: &[SweepPoint], k: usize, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let max_latency = points.iter().map(|point| point.latency_p50_ms).fold(0.0, f64::max) * 1.15;
    let min_recall = points.iter().map(|point| point.ann_recall_at_k).fold(1.0, f64::min);
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("HNSW recall@{k} vs. latency over ef_search"),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_latency.max(1e-3), (min_recall - 0.02).max(0.0)..1.005)?;
    chart
        .configure_mesh()
        .x_desc("median query latency (ms)")
        .y_desc(format!("recall@{k} vs. exact"))
        .draw()?;
    let series: Vec<(f64, f64)> = points
        .iter()
        .map(|point| (point.latency_p50_ms, point.ann_recall_at_k))
        .collect();
    chart.draw_series(LineSeries::new(series.clone(), &BLUE))?;
    chart.draw_series(series.iter().zip(points).map(|(&(x, y), point)| {
        EmptyElement::at((x, y))
            + Circle::new((0, 0), 4, BLUE.filled())
            + Text::new(format!("ef={}", point.ef_search), (6, 6), ("sans-serif", 13))
    }))?;
    root.present()?;
    Ok(())
}
