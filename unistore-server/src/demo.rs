//! What a fresh controller offers a newcomer: the embedded demo database (created on first use)
//! and a ready-made template for its table, so that a benchmark can be run from the browser
//! without reading any code.

use chrono::Utc;
use unistore_adapters::ResultsStore;
use unistore_core::{Result, StoredTemplate, Template};

/// Id of the ready-made template.
pub const DEMO_TEMPLATE_ID: &str = "demo";

/// The ready-made template for the demo table at `url`: mostly point lookups with some range
/// scans, 4 connections, 3 s of warmup and 20 s of measurement. Read-only, so it can run again
/// and again on the same data.
pub fn demo_template(url: &str, table: &str) -> Result<Template> {
    let toml = format!(
        r#"
name = "Demo: lookups on {table}"
table = "{table}"

[mix]
POINT_LOOKUP = 80
RANGE_SCAN = 20

[load]
mode = "CONCURRENCY"
connections = 4

[phases]
warmup = "3s"
measurement = "20s"
"#
    );
    let mut template = Template::from_toml(&toml)?;
    // Set here, not in the text: a path may hold characters TOML would need escaped.
    template.target = Some(url.to_string());
    template.validate()?;
    Ok(template)
}

/// The demo database in the data directory, created when it is missing (well under a second
/// in a release build; off the async threads).
pub(crate) async fn ensure_demo() -> Result<unistore_adapters::sqlite::demo::DemoDatabase> {
    ensure_demo_at(unistore_adapters::sqlite::demo::default_demo_path()).await
}

/// [`ensure_demo`] at a given path (the built-in connection's file).
pub(crate) async fn ensure_demo_at(
    path: std::path::PathBuf,
) -> Result<unistore_adapters::sqlite::demo::DemoDatabase> {
    tokio::task::spawn_blocking(move || unistore_adapters::sqlite::demo::ensure_demo_database(&path))
        .await
        .map_err(|e| {
            unistore_core::Error::invalid(format!("creating the demo database did not finish: {e}"))
        })?
}

/// Creates the demo database if needed and stores the demo template when the store holds no
/// template at all (a fresh start; a user who has templates and deleted the demo one does not
/// get it back). Returns the id stored, if any.
pub async fn seed_demo(results: &ResultsStore) -> Result<Option<&'static str>> {
    if !results.reader.templates().await?.is_empty() {
        return Ok(None);
    }
    let path = unistore_adapters::sqlite::demo::default_demo_path();
    let demo =
        tokio::task::spawn_blocking(move || unistore_adapters::sqlite::demo::ensure_demo_database(&path))
            .await
            .map_err(|e| {
                unistore_core::Error::invalid(format!("creating the demo database stopped: {e}"))
            })??;
    let template = demo_template(&demo.url(), demo.table)?;
    results
        .sink
        .save_template(&StoredTemplate {
            template_id: DEMO_TEMPLATE_ID.to_string(),
            template,
            version: 0,
            updated_at: Utc::now(),
        })
        .await?;
    Ok(Some(DEMO_TEMPLATE_ID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_template_is_valid_and_read_only() {
        let t = demo_template("sqlite:///tmp/demo.db", "demo_orders").unwrap();
        t.validate().unwrap();
        assert_eq!(t.table, "demo_orders");
        assert_eq!(t.target.as_deref(), Some("sqlite:///tmp/demo.db"));
        assert!(!t.allow_writes);
        assert_eq!(t.mix.values().sum::<u32>(), 100);
    }
}
