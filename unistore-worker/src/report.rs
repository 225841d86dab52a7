//! Terminal output: the header, per-second progress (like `pgbench -P 1`) and the summary table.

use unistore_core::metrics::{KindStats, MetricSnapshot, RunSummary};
use unistore_core::runner::PreparedRun;
use unistore_core::template::mix_to_string;

pub fn print_header(run: &PreparedRun, target: &str) {
    let t = &run.template;
    let load = match run.config.target_qps {
        Some(q) => format!("open loop at {q} ops/s with {} connections", run.config.connections),
        None => format!("closed loop with {} connections", run.config.connections),
    };
    eprintln!("run {}", run.run_id);
    eprintln!(
        "target {target} ({}), table {} ({}, ~{} rows)",
        run.target_kind, run.profile.table, run.profile.table_type, run.profile.row_estimate
    );
    eprintln!(
        "mix {}, {load}, warmup {:?}, measurement {:?}, seed {}",
        mix_to_string(&t.mix),
        t.phases.warmup,
        t.phases.measurement,
        run.config.seed
    );
}

/// Prints one line per interval snapshot.
pub fn print_progress(s: &MetricSnapshot) {
    {
        let l = &s.total.latency_ms;
        let mut line = format!(
            "progress: {:>6.1} s, {:>10.1} ops/s, p50 {:.3} ms, p99 {:.3} ms, errors {}, conns {}",
            s.elapsed_s, s.total.qps, l.p50, l.p99, s.total.errors, s.active_connections
        );
        if s.late_starts > 0 {
            line.push_str(&format!(", late starts {}", s.late_starts));
        }
        line.push_str(&format!(" [{}]", s.phase));
        eprintln!("{line}");
    }
}

fn row(name: &str, k: &KindStats) -> String {
    let l = &k.latency_ms;
    format!(
        "{name:<13} {:>10} {:>7} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        k.ops, k.errors, k.qps, l.mean, l.p50, l.p95, l.p99, l.p999, l.max
    )
}

pub fn print_summary(s: &RunSummary) {
    println!();
    println!(
        "run {} {}: {} over {:.3} s measured (warmup {:.3} s excluded)",
        s.run_id, s.status, s.mode, s.duration_s, s.warmup_s
    );
    match (&s.reason, s.status) {
        (Some(reason), unistore_core::RunStatus::Failed) => println!("failed: {reason}"),
        (Some(reason), _) => println!("stopped early: {reason}"),
        (None, _) => {}
    }
    println!(
        "{:<13} {:>10} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "kind", "ops", "errors", "ops/s", "mean ms", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for (kind, k) in &s.by_kind {
        println!("{}", row(kind.as_str(), k));
    }
    println!("{}", row("TOTAL", &s.total));
    if let Some(svc) = &s.total.service_time_ms {
        println!(
            "service time (from actual start): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; late starts {}, max start lag {:.3} ms",
            svc.p50, svc.p99, svc.max, s.late_starts, s.max_start_lag_ms
        );
    }
    for (kind, msg) in &s.error_examples {
        println!("first {kind} error: {msg}");
    }
    if s.samples_dropped > 0 {
        println!("sampled executions dropped (results store too slow): {}", s.samples_dropped);
    }
    if !s.steps.is_empty() {
        println!(
            "{:>11} {:>11} {:>9} {:>9} {:>10}",
            "connections", "ops/s", "p95 ms", "p99 ms", "error rate"
        );
        for step in &s.steps {
            let best = s.best_step.as_ref() == Some(step);
            println!(
                "{:>11} {:>11.1} {:>9.3} {:>9.3} {:>10.4}{}",
                step.connections,
                step.qps,
                step.p95_ms,
                step.p99_ms,
                step.error_rate,
                if best { "  <- best" } else { "" }
            );
        }
        match &s.best_step {
            Some(b) => {
                println!("best sustainable concurrency: {} connections at {:.1} ops/s", b.connections, b.qps)
            }
            None => println!("no step stayed within the latency and error bounds"),
        }
    }
    if let Some(stats) = &s.server_stats {
        println!("server-side statistics stored with the run ({} bytes of JSON)", stats.to_string().len());
    }
    if s.slo.passed {
        println!("SLO: passed");
    } else {
        println!("SLO: FAILED");
        for v in &s.slo.violations {
            println!("  {v}");
        }
    }
    match (s.verdict(), &s.reason) {
        (unistore_core::Verdict::Failed, Some(reason)) => println!("verdict: FAILED: {reason}"),
        (verdict, _) => println!("verdict: {verdict}"),
    }
}
