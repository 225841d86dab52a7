//! Embed Unistore Bench: build an SQLite target, run a 5-second point-lookup workload against
//! the demo table, print the summary.
//!
//! `cargo run --release --example quickstart`

use std::time::Duration;

use unistore::adapters::sqlite::demo::{default_demo_path, ensure_demo_database};
use unistore::adapters::{open_target, TargetOptions};
use unistore::core::runner::PreparedRun;
use unistore::core::template::{parse_mix, LoadMode};
use unistore::{RunId, Template, WorkerIdentity};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // The demo database is the only table the tool ever creates.
    let demo = ensure_demo_database(&default_demo_path())?;
    let mut template = Template::new(demo.table.to_string(), parse_mix("point_lookup=90,range_scan=10")?);
    template.name = "quickstart".into();
    template.load = LoadMode::Concurrency { connections: 4 };
    template.phases.warmup = Duration::from_secs(1);
    template.phases.measurement = Duration::from_secs(5);

    let run_id = RunId::new();
    let options = TargetOptions::new(run_id, template.table_ref()?, None);
    let target = open_target(&format!("sqlite://{}", demo.path.display()), &options).await?;
    let prepared =
        PreparedRun::prepare(template, run_id, WorkerIdentity::solo(), target.pool, target.manager.as_ref())
            .await?;
    // Connect every session, then start the load (no results store here: pass one to keep
    // the run), printing each one-second snapshot.
    let finished = prepared
        .connect()
        .await?
        .start(None)
        .await
        .finish(|s| {
            println!(
                "{:>5.1} s  {:>9.1} ops/s  p99 {:.3} ms",
                s.elapsed_s, s.total.qps, s.total.latency_ms.p99
            )
        })
        .await;
    let s = &finished.summary;
    println!("\n{} operations in {:.3} s: {:.1} ops/s", s.total.ops, s.duration_s, s.total.qps);
    for (kind, k) in &s.by_kind {
        println!(
            "{kind:<13} {:>8} ops  p50 {:.3} ms  p99 {:.3} ms",
            k.ops, k.latency_ms.p50, k.latency_ms.p99
        );
    }
    Ok(())
}
