//! `unistore-server`: the controller binary. Thin: flags, results store, serve.

use clap::Parser;
use unistore_adapters::{open_results, redact_url};
use unistore_server::AppState;

#[derive(Debug, Parser)]
#[command(name = "unistore-server", version, about = "Unistore Bench controller")]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", env = "UNISTORE_LISTEN")]
    listen: String,
    /// Results store URL (default: embedded SQLite file in the data directory).
    #[arg(long, env = "UNISTORE_RESULTS")]
    results: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UNISTORE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let url = cli.results.unwrap_or_else(unistore_adapters::sqlite::demo::default_results_url);
    let results = open_results(&url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the results store {}: {e}", redact_url(&url)))?;
    let kind = url.split("://").next().unwrap_or("unknown").to_string();
    let listener = tokio::net::TcpListener::bind(&cli.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cli.listen))?;
    // Printed on stdout so scripts (and tests) can read the chosen port.
    println!("listening on http://{}", listener.local_addr()?);
    tracing::info!(results = %redact_url(&url), "unistore-server started");
    unistore_server::serve(listener, AppState { results, results_kind: kind }).await?;
    Ok(())
}
