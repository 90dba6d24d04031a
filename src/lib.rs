//! tokencache facade (work in progress).
pub use tokencache_core::*;
