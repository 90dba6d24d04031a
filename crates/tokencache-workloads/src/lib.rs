#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod data;
mod measure;
mod refresh;
mod workload;

pub use data::{
    entry, exact_key, frozen_clock, manager, miss_key, other_audience, populate, set_key,
    subset_key, ABSENT_AUDIENCE, CLEAR_SIZE, CLIENT_ID, EXPIRES_IN, MISS_SCOPE, OTHER_SCOPE,
    SET_SCOPE, SMALL_SIZE, SUBSET_SCOPE, SUBSET_SIZES, TARGET_AUDIENCE, TARGET_SCOPE,
};
pub use measure::{run, run_refresh, throughput_ns, MeasuredOp, Measurement, RunConfig};
pub use refresh::{PreparedRefresh, RefreshOp};
pub use workload::{Op, Prepared, Workload};
