//! Integration tests, in one binary to save link time on small machines.

/// Shared fixtures: engines built from the sample shipped in `data/`.
mod common;
/// `kill -9` and SIGTERM of a real server process while it takes writes.
mod crash;
/// A real gRPC server on an ephemeral port, called through the generated tonic client.
mod grpc;
/// JSON over HTTP: every route with a real HTTP client, errors and tokens.
mod http;
/// Live upserts and deletes: visibility, tokens, restart, rebuild, concurrency.
mod live;
/// Prometheus metrics scraped from a real server after real calls.
mod metrics;
/// Batch related links and offline evaluation over the sample.
mod offline;
/// Property tests: arbitrary articles through analysis, the live delta and search.
mod properties;
/// Relevance: copies by text (site suffixes too) against paraphrases, and the time prior.
mod relevance;
/// Hostile-client probes: tokens, lost change logs, a full disk, unbounded requests, timestamps, TLS keys.
mod reliability;
/// Snapshot round trips and damaged snapshots.
mod snapshot;
/// TLS, message and batch size limits, deadlines and client-streaming imports.
mod transport;
