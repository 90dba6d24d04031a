//! [`Builder`] and [`init`]: the plugin's configuration and setup.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Manager, Runtime};
use tokencache_bridge::{BridgeHandler, BridgeHandlerBuilder};
use tokencache_core::{Cache, Error, Result};
use tokencache_crypto::EncryptedCodec;
use tokencache_sqlite::SqliteCache;

use crate::{commands, KeySource, TokenCache};

/// The plugin's name: its commands are `plugin:tokencache|<command>` and its permissions
/// `tokencache:<permission>`.
pub const PLUGIN_NAME: &str = "tokencache";
/// The file name of the encrypted SQLite store in the app's data directory.
pub const DEFAULT_FILE_NAME: &str = "tokencache.db";
/// The namespace the stored values are bound to (see [`EncryptedCodec::new`]).
pub const DEFAULT_NAMESPACE: &str = "tauri-plugin-tokencache";

type BridgeOptions = Box<dyn FnOnce(BridgeHandlerBuilder) -> BridgeHandlerBuilder + Send>;

/// The plugin over an encrypted SQLite store at `<app data dir>/tokencache.db`, its key
/// from `key`. The same as `Builder::new(key).build()`.
///
/// ```no_run
/// use tauri_plugin_tokencache::KeySource;
///
/// fn app<R: tauri::Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
///     builder.plugin(tauri_plugin_tokencache::init(KeySource::env("MYAPP_TOKENCACHE_KEY")))
/// }
/// ```
pub fn init<R: Runtime>(key: KeySource) -> TauriPlugin<R> {
    Builder::new(key).build()
}

/// Configures the plugin: where tokens are stored and how the bridge confines the page.
///
/// ```no_run
/// use std::sync::Arc;
/// use tauri_plugin_tokencache::{Builder, KeySource};
/// use tokencache_memory::MemoryCache;
///
/// fn app<R: tauri::Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
///     // Encrypted SQLite in a file of the app's choosing, at most 100 keys:
///     let plugin = Builder::new(KeySource::env("MYAPP_TOKENCACHE_KEY"))
///         .database_path("/var/lib/myapp/tokens.db")
///         .bridge(|b| b.max_keys(100))
///         .build();
///     // Or any tokencache Cache the app builds itself (here: in memory only):
///     let _other = Builder::with_cache(Arc::new(MemoryCache::new())).build::<R>();
///     builder.plugin(plugin)
/// }
/// ```
pub struct Builder {
    store: Store,
    database_path: Option<PathBuf>,
    namespace: Option<String>,
    bridge: Option<BridgeOptions>,
}

enum Store {
    EncryptedSqlite(KeySource),
    Cache(Arc<dyn Cache>),
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Builder");
        match &self.store {
            Store::EncryptedSqlite(key) => d.field("key", key),
            Store::Cache(_) => d.field("cache", &format_args!("<app cache>")),
        };
        d.field("database_path", &self.database_path)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Encrypted SQLite (AES-256-GCM, [`EncryptedCodec`]) at
    /// `<app data dir>/`[`DEFAULT_FILE_NAME`], its key from `key`.
    pub fn new(key: KeySource) -> Self {
        Builder {
            store: Store::EncryptedSqlite(key),
            database_path: None,
            namespace: None,
            bridge: None,
        }
    }

    /// Any [`Cache`] the app passes (its own SQLite or Redis store, an encrypted layer over
    /// one, memory). The app keeps its own handle to read and write the same tokens.
    pub fn with_cache(cache: Arc<dyn Cache>) -> Self {
        Builder {
            store: Store::Cache(cache),
            database_path: None,
            namespace: None,
            bridge: None,
        }
    }

    /// The SQLite file, instead of `<app data dir>/tokencache.db`; its directory is created
    /// when missing. Encrypted SQLite only: with [`Builder::with_cache`], setup fails.
    pub fn database_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.database_path = Some(path.into());
        self
    }

    /// The namespace the encrypted values are bound to (default
    /// [`DEFAULT_NAMESPACE`]): values written under one do not decrypt under another.
    /// Encrypted SQLite only: with [`Builder::with_cache`], setup fails.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Adjusts the [`BridgeHandler`]: another prefix (default `@@auth0spajs@@`), other
    /// limits. An invalid setting makes setup fail.
    pub fn bridge(
        mut self,
        f: impl FnOnce(BridgeHandlerBuilder) -> BridgeHandlerBuilder + Send + 'static,
    ) -> Self {
        self.bridge = Some(Box::new(f));
        self
    }

    /// The plugin. During the app's setup it opens the store (creating the data directory
    /// and the database when missing) and builds the handler; any failure there (no key,
    /// an unusable path, a bad setting) stops the app from starting.
    pub fn build<R: Runtime>(self) -> TauriPlugin<R> {
        tauri::plugin::Builder::new(PLUGIN_NAME)
            .invoke_handler(tauri::generate_handler![
                commands::request,
                commands::lists_keys
            ])
            .setup(move |app, _api| {
                let state = self.open(app)?;
                app.manage(state);
                Ok(())
            })
            .build()
    }

    fn open<R: Runtime>(self, app: &AppHandle<R>) -> Result<TokenCache> {
        let cache: Arc<dyn Cache> = match self.store {
            Store::Cache(cache) => {
                if self.database_path.is_some() || self.namespace.is_some() {
                    return Err(Error::config(
                        "database_path and namespace apply to the plugin's encrypted SQLite store, \
                         not to a cache the app passes",
                    ));
                }
                cache
            }
            Store::EncryptedSqlite(key) => {
                let path = match self.database_path {
                    Some(path) => path,
                    None => app
                        .path()
                        .app_data_dir()
                        .map_err(|e| Error::config("the app has no data directory").with_source(e))?
                        .join(DEFAULT_FILE_NAME),
                };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::unavailable(format!("cannot create {}", dir.display()))
                            .with_source(e)
                    })?;
                }
                let keys = key.resolve()?;
                let namespace = self
                    .namespace
                    .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
                let codec = Arc::new(EncryptedCodec::new(keys, namespace));
                // Setup is synchronous; the store's work runs on its own threads, so any
                // executor can wait for it (this one also works inside a Tokio runtime).
                let cache = futures::executor::block_on(SqliteCache::open(&path, codec))?;
                tracing::debug!(path = %path.display(), "tokencache plugin: encrypted SQLite store open");
                Arc::new(cache)
            }
        };
        let mut handler = BridgeHandler::builder(cache.clone());
        if let Some(f) = self.bridge {
            handler = f(handler);
        }
        Ok(TokenCache {
            handler: handler.build()?,
            cache,
        })
    }
}
