//! `tokencache migrate`: copies every value of one cache into another, all or nothing.
//!
//! Every value is read (and so decrypted and authenticated) before the first write: a
//! wrong key or a tampered value stops the migration with the destination untouched. A
//! new SQLite destination is written as a temporary file beside the target and renamed
//! into place once complete. Any other destination is written value by value; when a
//! write fails, the values written so far are put back as they were.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokencache::{Cache, CacheLocation, Cacheable, Clock, Error, Result, SystemClock};

use crate::inspect::keys;

/// Why a key was not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Listed, then gone before it was read (expired, or removed meanwhile).
    Gone,
    /// A token entry whose access token expired and which has no refresh token: useless
    /// to anyone, and every backend treats it as a miss.
    Expired,
}

impl SkipReason {
    /// The reason in words.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::Gone => "gone before they were read",
            SkipReason::Expired => "expired without a refresh token",
        }
    }
}

/// What a migration did.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Values written to the destination.
    pub copied: usize,
    /// Keys not copied, with the reason.
    pub skipped: Vec<(String, SkipReason)>,
}

impl Outcome {
    /// `copied N values; skipped M (K expired ..., J gone ...)`.
    pub fn summary(&self) -> String {
        let text = format!("copied {} values", self.copied);
        if self.skipped.is_empty() {
            return text + "; skipped none";
        }
        let mut reasons: Vec<SkipReason> = self.skipped.iter().map(|(_, r)| *r).collect();
        reasons.sort_unstable();
        reasons.dedup();
        let parts: Vec<String> = reasons
            .iter()
            .map(|r| {
                let n = self.skipped.iter().filter(|(_, s)| s == r).count();
                format!("{n} {}", r.describe())
            })
            .collect();
        text + &format!("; skipped {} ({})", self.skipped.len(), parts.join(", "))
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal (and not `quiet`).
pub fn progress(quiet: bool, len: u64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Reads (and so decrypts and authenticates) every value of `from`: the values to copy,
/// and the keys skipped.
pub async fn collect(
    from: &dyn Cache,
    bar: &ProgressBar,
    now_s: i64,
) -> Result<(Vec<(String, Cacheable)>, Outcome)> {
    let mut values = Vec::new();
    let mut outcome = Outcome::default();
    for key in keys(from).await? {
        bar.set_message("reading");
        match from.get(&key).await? {
            None => outcome.skipped.push((key, SkipReason::Gone)),
            Some(v) if v.expires_at().is_some_and(|at| at < now_s) && !v.has_refresh_token() => {
                outcome.skipped.push((key, SkipReason::Expired))
            }
            Some(v) => values.push((key, v)),
        }
        bar.inc(1);
    }
    Ok((values, outcome))
}

/// Migrates `from` into `to`; see the module docs.
pub async fn migrate(from: &CacheLocation, to: &CacheLocation, quiet: bool) -> Result<Outcome> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let src = crate::target::open_existing(from)
        .await
        .map_err(|f| f.error)?;
    let listed = src.all_keys().await?.map_or(0, |k| k.len());
    let bar = progress(quiet, 2 * listed as u64);
    let (values, mut outcome) = collect(&*src, &bar, clock.now_ms().div_euclid(1000)).await?;
    bar.set_length((listed + values.len()) as u64);
    tracing::info!(
        values = values.len(),
        skipped = outcome.skipped.len(),
        "source read"
    );

    let written = write_all(to, &values, &bar).await;
    bar.finish_and_clear();
    outcome.copied = written?;
    Ok(outcome)
}

/// Writes `values` into `to`, all or nothing: a new SQLite file appears complete or not
/// at all; any other destination gets back what it held when a write fails.
pub async fn write_all(
    to: &CacheLocation,
    values: &[(String, Cacheable)],
    bar: &ProgressBar,
) -> Result<usize> {
    match new_sqlite_file(to) {
        Some(path) => write_new_file(to, &path, values, bar).await,
        None => {
            let dst = to.open(Arc::new(SystemClock)).await?;
            write_undoable(&*dst, values, bar).await
        }
    }
}

/// The path of an SQLite destination that does not exist yet.
fn new_sqlite_file(to: &CacheLocation) -> Option<PathBuf> {
    match to {
        CacheLocation::Sqlite { path, .. } if !path.exists() => Some(path.clone()),
        _ => None,
    }
}

/// Writes `values` into a temporary SQLite file beside `path`, then renames it into
/// place; on any failure the temporary file is removed and `path` never appears.
async fn write_new_file(
    to: &CacheLocation,
    path: &Path,
    values: &[(String, Cacheable)],
    bar: &ProgressBar,
) -> Result<usize> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".tokencache-migrate-")
        .tempdir_in(dir)
        .map_err(|e| {
            Error::unavailable(format!("cannot write in {}", dir.display())).with_source(e)
        })?;
    let tmp_path = tmp.path().join("new.db");
    let CacheLocation::Sqlite {
        namespace, keys, ..
    } = to
    else {
        return Err(Error::unexpected("not an sqlite location"));
    };
    let staging = CacheLocation::Sqlite {
        path: tmp_path.clone(),
        namespace: namespace.clone(),
        keys: keys.clone(),
    };
    {
        let cache = staging.open(Arc::new(SystemClock)).await?;
        for (key, value) in values {
            bar.set_message("writing");
            cache.set(key, value.clone()).await?;
            bar.inc(1);
        }
        // Closing the last connection checkpoints the WAL into the file.
    }
    // The cache's threads drop their last handles (and close their connections) just
    // after answering: wait for SQLite to fold the WAL into the file and remove it.
    let wal = PathBuf::from(format!("{}-wal", tmp_path.display()));
    let mut waited = Duration::ZERO;
    while wal.exists() {
        if waited >= Duration::from_secs(5) {
            return Err(Error::unavailable(format!(
                "the new database was not closed cleanly; nothing was written to {}",
                path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    if path.exists() {
        return Err(Error::unavailable(format!(
            "{} appeared during the migration; nothing was written to it",
            path.display()
        )));
    }
    std::fs::rename(&tmp_path, path).map_err(|e| {
        Error::unavailable(format!(
            "cannot move the new database to {}",
            path.display()
        ))
        .with_source(e)
    })?;
    Ok(values.len())
}

/// Writes `values` one by one; when a write fails, restores what it overwrote (or
/// removes what was new) and returns the error.
async fn write_undoable(
    dst: &dyn Cache,
    values: &[(String, Cacheable)],
    bar: &ProgressBar,
) -> Result<usize> {
    let mut undo: Vec<(&str, Option<Cacheable>)> = Vec::with_capacity(values.len());
    for (key, value) in values {
        bar.set_message("writing");
        let result = async {
            let previous = dst.get(key).await?;
            undo.push((key, previous));
            dst.set(key, value.clone()).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(
                written = undo.len(),
                "write failed; putting the destination back"
            );
            for (key, previous) in undo.into_iter().rev() {
                let restored = match previous {
                    Some(v) => dst.set(key, v).await,
                    None => dst.remove(key).await,
                };
                if let Err(undo_error) = restored {
                    tracing::error!(error = %undo_error, "could not put a value back");
                }
            }
            return Err(e);
        }
        bar.inc(1);
    }
    Ok(values.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokencache::{async_trait, KeyManifestEntry};
    use tokencache_conformance::MapCache;

    /// A map whose writes to `broken` fail, as a store that goes away half-way would.
    #[derive(Default)]
    struct FailsAt {
        map: MapCache,
        broken: &'static str,
    }

    #[async_trait]
    impl Cache for FailsAt {
        async fn get(&self, key: &str) -> Result<Option<Cacheable>> {
            self.map.get(key).await
        }
        async fn set(&self, key: &str, value: Cacheable) -> Result<()> {
            if key == self.broken {
                return Err(Error::unavailable("the store went away"));
            }
            self.map.set(key, value).await
        }
        async fn remove(&self, key: &str) -> Result<()> {
            self.map.remove(key).await
        }
    }

    fn manifest(keys: &[&str]) -> Cacheable {
        Cacheable::from(KeyManifestEntry {
            keys: keys.iter().map(|k| k.to_string()).collect(),
        })
    }

    #[tokio::test]
    async fn a_failed_write_puts_the_destination_back() {
        let dst = FailsAt {
            broken: "k3",
            ..FailsAt::default()
        };
        dst.set("k1", manifest(&["old"])).await.unwrap();
        let values: Vec<(String, Cacheable)> = ["k1", "k2", "k3"]
            .iter()
            .map(|k| (k.to_string(), manifest(&["new"])))
            .collect();
        let e = write_undoable(&dst, &values, &ProgressBar::hidden())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), tokencache::ErrorKind::Unavailable);
        assert_eq!(dst.get("k1").await.unwrap(), Some(manifest(&["old"])));
        assert_eq!(dst.get("k2").await.unwrap(), None);

        let dst = FailsAt {
            broken: "none",
            ..FailsAt::default()
        };
        let n = write_undoable(&dst, &values, &ProgressBar::hidden())
            .await
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(dst.get("k3").await.unwrap(), Some(manifest(&["new"])));
    }

    #[test]
    fn summary_counts_each_reason() {
        let mut o = Outcome {
            copied: 3,
            ..Outcome::default()
        };
        assert_eq!(o.summary(), "copied 3 values; skipped none");
        o.skipped = vec![
            ("a".into(), SkipReason::Expired),
            ("b".into(), SkipReason::Gone),
            ("c".into(), SkipReason::Expired),
        ];
        assert_eq!(
            o.summary(),
            "copied 3 values; skipped 3 (1 gone before they were read, 2 expired without a refresh token)"
        );
    }
}
