//! The behaviour checks, one `pub async fn` per behaviour.
//!
//! Each takes a [`Subject`]: a fresh, empty cache built with the subject's clock (see
//! [`new_clock`]), and panics, naming itself and the mode, when the behaviour does not
//! hold. A check adapts to the mode of the cache: a cache that lists its keys is checked
//! in listing mode, one that does not (or one wrapped in [`NoListing`](crate::NoListing))
//! in manifest mode. Checks of an improvement over auth0-spa-js have `improvement` in
//! their name.
//!
//! The checks of the raw [`Cache`](tokencache_core::Cache) contract (`raw_*`) write keys under
//! [`DEFAULT_PREFIX`](tokencache_core::DEFAULT_PREFIX) (and keys of other prefixes where
//! they test listing); the others use managers with the subject's prefix.
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::sync::Arc;
//! use tokencache_conformance::{checks, Capabilities, MapCache, NoListing, Subject};
//! use tokencache_core::Cache;
//!
//! let clock = checks::new_clock();
//! let cache: Arc<dyn Cache> = Arc::new(NoListing(MapCache::new()));
//! let subject = Subject::new(cache, clock, Capabilities::new()).with_prefix("@@my-app@@");
//! checks::improvement_clear_client_removes_exactly_its_keys(subject).await;
//! # });
//! ```

use std::sync::Arc;

use futures::future::LocalBoxFuture;
use tokencache_core::ManualClock;

use crate::Subject;

mod atomic;
mod cache_contract;
mod concurrency;
mod lease;
mod lookup;
mod manifest;
mod writes;

pub use atomic::*;
pub use cache_contract::*;
pub use concurrency::*;
pub use lease::*;
pub use lookup::*;
pub use manifest::*;
pub use writes::*;

/// Where the clock of every check starts: 2023-11-14T22:13:20.250Z, in milliseconds.
pub const START_MS: i64 = 1_700_000_000_250;

/// A fresh clock for one check, at [`START_MS`].
pub fn new_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(START_MS))
}

/// A check, run on a subject.
pub type CheckFn = fn(Subject) -> LocalBoxFuture<'static, ()>;

macro_rules! all_checks {
    ($($name:ident),* $(,)?) => {
        /// Every check, with its name, in the order [`Suite::run_all`](crate::Suite::run_all) runs them.
        pub fn all() -> Vec<(&'static str, CheckFn)> {
            vec![$((stringify!($name), (|s| Box::pin($name(s))) as CheckFn)),*]
        }
    };
}

all_checks!(
    raw_round_trip_of_every_kind,
    raw_overwrite_replaces_value,
    raw_remove_deletes_and_missing_key_is_ok,
    raw_remove_many_removes_exactly_those_keys,
    raw_listing_is_exact,
    raw_prefix_listing_respects_boundaries,
    raw_large_tokens_round_trip,
    raw_unicode_and_url_parts_round_trip,
    raw_unknown_fields_are_preserved,
    raw_physical_expiry_matches_capabilities,
    set_writes_auth0_spa_js_keys_and_json,
    get_exact_key,
    get_by_scope_subset,
    get_uncovered_scope_misses,
    get_never_matches_stored_empty_scope,
    expiry_boundary_is_strict,
    expiry_honours_leeway,
    expired_with_refresh_token_is_cut_down_where_found,
    expired_without_refresh_token_is_removed_with_its_manifest_line,
    mrrt_fallback_returns_a_refresh_token_of_the_client,
    mrrt_fallback_is_off_with_cache_only_or_without_use_mrrt,
    improvement_one_answer_with_or_without_physical_expiry,
    get_of_the_manifest_key_returns_none,
    id_token_round_trip,
    id_token_falls_back_to_the_entry,
    remove_deletes_the_key_and_its_manifest_line,
    remove_without_audience_and_scope_is_invalid_key,
    clear_all_removes_every_key_and_the_manifest,
    improvement_clear_client_removes_exactly_its_keys,
    clear_with_empty_client_is_invalid_key,
    improvement_clear_client_keeps_other_clients_manifest_lines,
    strip_refresh_token_keeps_the_rest,
    update_entry_replaces_refresh_tokens,
    refresh_tokens_by_audience_are_distinct_in_key_order,
    improvement_matching_is_order_independent,
    improvement_remove_keeps_the_manifest_true,
    improvement_no_lost_updates_under_concurrency,
    atomic_update_loses_no_increment,
    atomic_newer_refresh_token_survives_two_managers,
    lease_is_exclusive_until_released,
    lease_expires_and_a_stale_holder_changes_nothing,
    lease_fence_lost_writes_nothing,
    lease_is_not_an_entry,
    invalid_key_parts_are_rejected,
    manifest_is_deleted_when_empty,
    manager_over_non_listing_cache_needs_client_id,
);
