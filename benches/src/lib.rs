//! Shared workloads of the criterion benchmarks.
