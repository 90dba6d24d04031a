//! Generates the plugin's permission files (`allow-request`, `allow-lists-keys`, ...) and
//! hands their location to the app's build through `links`.

const COMMANDS: &[&str] = &["request", "lists_keys"];

fn main() {
    tauri_plugin::Builder::new(COMMANDS).build();
}
