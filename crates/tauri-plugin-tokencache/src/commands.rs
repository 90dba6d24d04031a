//! The plugin's commands: `plugin:tokencache|request` and `plugin:tokencache|lists_keys`.

use serde_json::Value;
use tauri::{ipc::Response, AppHandle, Manager, Runtime};
use tokencache_bridge::{BridgeError, Response as BridgeResponse};
use tokencache_core::ErrorKind;

use crate::TokenCache;

/// Answers one bridge request (the object `tauriTransport` sends as `request`) with the
/// bridge response object. Every failure, a malformed request included, is an error
/// response (`{"ok": false, "error": {...}}`), never a rejected `invoke`.
#[tauri::command]
pub(crate) async fn request<R: Runtime>(app: AppHandle<R>, request: Option<Value>) -> Response {
    let Some(state) = app.try_state::<TokenCache>() else {
        return Response::new(not_ready());
    };
    // The handler parses (and bounds) the text itself, so that a request that does not
    // follow the protocol gets the same typed answer as on every other transport. A
    // missing `request` is the empty text: a `serialization` error.
    let text = request.map(|r| r.to_string()).unwrap_or_default();
    Response::new(state.handler().handle_json(&text).await)
}

/// Whether `allKeys` is answered: `createBridgeCache(transport, { listsKeys })`.
#[tauri::command]
pub(crate) fn lists_keys<R: Runtime>(app: AppHandle<R>) -> bool {
    app.try_state::<TokenCache>()
        .is_some_and(|state| state.handler().lists_keys())
}

/// The answer when the plugin's state is missing (its setup did not run).
fn not_ready() -> String {
    BridgeResponse::error(
        None,
        BridgeError::new(ErrorKind::Config, "the tokencache plugin is not set up"),
    )
    .to_json()
}
