//! Terminal output: the header (what will run), progress lines (like `pgbench -P`) and the
//! summary. Everything but the summary goes to stderr, so `--json` and pipes stay clean.

use unistore_core::metrics::{KindStats, MetricSnapshot, RunSummary};
use unistore_core::runner::PreparedRun;
use unistore_core::template::{mix_to_string, LoadMode};
use unistore_core::{RunPhase, RunStatus};

fn duration(d: std::time::Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// What will run: target, table, load, phases, the SQL of each kind, where keys come from,
/// what writes touch, and warnings.
pub fn print_header(run: &PreparedRun, target: &str) {
    let t = &run.template;
    let load = match &t.load {
        LoadMode::Concurrency { connections } => format!("closed loop with {connections} connections"),
        LoadMode::Qps { target_qps, connections } => {
            format!("open loop at {target_qps} ops/s with up to {connections} connections")
        }
        LoadMode::FindMaxConcurrency {
            start_connections,
            step_connections,
            step_duration,
            max_connections,
            qps_drop_pct,
            p95_growth_pct,
            max_error_rate,
        } => format!(
            "step search for the maximum concurrency: {start_connections} connections, +{step_connections} every \
             {}, up to {max_connections}; stops when throughput falls {qps_drop_pct}% below the best step, p95 grows \
             {p95_growth_pct}% over the first, or errors pass {}%",
            duration(*step_duration),
            max_error_rate * 100.0
        ),
    };
    eprintln!("run {}", run.run_id);
    eprintln!(
        "target {target} ({}), table {} ({}, ~{} rows)",
        run.target_kind, run.profile.table, run.profile.table_type, run.profile.row_estimate
    );
    eprintln!("mix {}, {load}", mix_to_string(&t.mix));
    let measured = match t.load {
        LoadMode::FindMaxConcurrency { .. } => format!("search up to {}", duration(run.config.measurement)),
        _ => format!("measurement {}", duration(run.config.measurement)),
    };
    let cooldown = if t.phases.cooldown.is_zero() {
        String::new()
    } else {
        format!(", cooldown {}", duration(t.phases.cooldown))
    };
    eprintln!("warmup {}, {measured}{cooldown}, seed {}", duration(t.phases.warmup), run.config.seed);
    if !t.stages.is_empty() {
        let stages: Vec<String> = t
            .stages
            .iter()
            .map(|s| match (s.target_qps, s.connections) {
                (Some(q), Some(c)) => format!("{} at {q} ops/s ({c} connections)", duration(s.duration)),
                (Some(q), None) => format!("{} at {q} ops/s", duration(s.duration)),
                (None, Some(c)) => format!("{} at {c} connections", duration(s.duration)),
                (None, None) => duration(s.duration),
            })
            .collect();
        eprintln!("stages: {}", stages.join(", then "));
    }
    for fact in &run.notes.facts {
        eprintln!("  {fact}");
    }
    for w in &run.notes.warnings {
        eprintln!("warning: {w}");
    }
}

/// Prints one progress line every `every` snapshots (seconds), each line the exact merge of
/// the snapshots since the last one; `every` 0 prints none.
#[derive(Debug)]
pub struct Progress {
    every: usize,
    cooldown: bool,
    pending: Vec<MetricSnapshot>,
}

impl Progress {
    pub fn new(every: u64, run: &PreparedRun) -> Self {
        Progress {
            every: usize::try_from(every).unwrap_or(usize::MAX),
            cooldown: !run.template.phases.cooldown.is_zero(),
            pending: Vec::new(),
        }
    }

    pub fn observe(&mut self, s: &MetricSnapshot) {
        // Without a cooldown, the last partial second holds only operations that were in
        // flight when the window closed: stored, not worth a line of its own.
        if self.every == 0 || (s.phase == RunPhase::Cooldown && !self.cooldown) {
            return;
        }
        if self.pending.last().is_some_and(|p| p.phase != s.phase) {
            self.flush();
        }
        self.pending.push(s.clone());
        if self.pending.len() >= self.every {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(last) = self.pending.last() else {
            return;
        };
        let window: f64 = self.pending.iter().map(|s| s.interval_s).sum();
        let parts: Vec<&KindStats> = self.pending.iter().map(|s| &s.total).collect();
        let total = KindStats::merge_exact(&parts, window).unwrap_or_else(|_| last.total.clone());
        let late: u64 = self.pending.iter().map(|s| s.late_starts).sum();
        let l = &total.latency_ms;
        let mut line = format!(
            "progress: {:>6.1} s, {:>10.1} ok ops/s, p50 {:.3} ms, p99 {:.3} ms, errors {}, conns {}",
            last.elapsed_s, total.qps, l.p50, l.p99, total.errors, last.active_connections
        );
        if let Some(target) = last.target_qps {
            line.push_str(&format!(", target {target} ops/s"));
            if last.backlog > 0 {
                line.push_str(&format!(", behind by {} ops", last.backlog));
            }
        }
        if late > 0 {
            line.push_str(&format!(", late starts {late}"));
        }
        line.push_str(&format!(" [{}]", last.phase));
        eprintln!("{line}");
        self.pending.clear();
    }

    /// Prints what is left at the end.
    pub fn finish(&mut self) {
        self.flush();
    }
}

fn row(name: &str, k: &KindStats) -> String {
    let l = &k.latency_ms;
    format!(
        "{name:<13} {:>10} {:>7} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        k.ops, k.errors, k.qps, l.mean, l.p50, l.p95, l.p99, l.p999, l.max
    )
}

fn steps(s: &RunSummary) {
    println!("{:>11} {:>11} {:>9} {:>9} {:>10}", "connections", "ok ops/s", "p95 ms", "p99 ms", "error rate");
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
        Some(b) => println!(
            "best sustainable concurrency: {} connections at {:.1} ok ops/s (p95 {:.3} ms, p99 {:.3} ms)",
            b.connections, b.qps, b.p95_ms, b.p99_ms
        ),
        None => println!("no step stayed within the latency and error bounds"),
    }
}

/// The summary, on stdout. `stored` says whether the run went to a results store.
pub fn print_summary(s: &RunSummary, stored: bool) {
    println!();
    println!(
        "run {} {}: {} over {:.3} s measured (warmup {:.3} s excluded)",
        s.run_id, s.status, s.mode, s.duration_s, s.warmup_s
    );
    match (&s.reason, s.status) {
        (Some(reason), RunStatus::Failed) => println!("failed: {reason}"),
        (Some(reason), _) => println!("stopped early: {reason}"),
        (None, _) => {}
    }
    if s.steps.is_empty() {
        println!(
            "{:<13} {:>10} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "kind",
            "ok ops",
            "errors",
            "ok ops/s",
            "mean ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for (kind, k) in &s.by_kind {
            println!("{}", row(kind.as_str(), k));
            // Named custom statements, each on its own row under CUSTOM_SQL.
            let prefix = format!("{kind}:");
            for (label, k) in s.by_statement.iter().filter(|(l, _)| l.starts_with(&prefix)) {
                println!("{}", row(&format!("  {}", &label[prefix.len()..]), k));
            }
        }
        println!("{}", row("TOTAL", &s.total));
    } else {
        // A search's steps ran at different concurrencies: one figure over all of them would
        // describe none of them.
        steps(s);
    }
    if !s.stages.is_empty() {
        println!(
            "{:>5} {:>9} {:>11} {:>12} {:>11} {:>9} {:>9} {:>9}",
            "stage", "length", "connections", "target ops/s", "ok ops/s", "p50 ms", "p99 ms", "errors"
        );
        for st in &s.stages {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            println!(
                "{:>5} {:>8.1}s {:>11} {:>12} {:>11.1} {:>9.3} {:>9.3} {:>9}",
                st.index + 1,
                st.duration_s,
                opt(st.connections.map(|c| c.to_string())),
                opt(st.target_qps.map(|q| format!("{q:.1}"))),
                st.total.qps,
                st.total.latency_ms.p50,
                st.total.latency_ms.p99,
                st.total.errors
            );
        }
    }
    if let (Some(target), true) = (s.target_qps, s.stages.is_empty()) {
        let achieved = s.total.qps;
        println!(
            "open loop: target {target:.1} ops/s, achieved {achieved:.1} ok ops/s ({:.1}%), {} due operations never started{}",
            if target > 0.0 { achieved / target * 100.0 } else { 0.0 },
            s.unissued_ops,
            match s.target_reached {
                Some(false) => " -> target not reached",
                _ => "",
            }
        );
    }
    if !s.stages.is_empty() && s.target_reached == Some(false) {
        println!("open loop: a stage fell short of its target rate -> target not reached");
    }
    if let Some(svc) = &s.total.service_time_ms {
        println!(
            "service time (from actual start): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; late starts {}, max start lag {:.3} ms",
            svc.p50, svc.p99, svc.max, s.late_starts, s.max_start_lag_ms
        );
    }
    if s.unreachable_s > 0.0 {
        println!(
            "target unreachable for {:.1} s of the window (nothing succeeded; connections lost)",
            s.unreachable_s
        );
    }
    for (kind, msg) in &s.error_examples {
        println!("first {kind} error: {msg}");
    }
    if s.samples_dropped > 0 {
        println!("sampled executions dropped (results store too slow): {}", s.samples_dropped);
    }
    for w in &s.warnings {
        println!("warning: {w}");
    }
    if let (Some(stats), true) = (&s.server_stats, stored) {
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

/// Writes the summary as JSON to `path` (`--json`); says so and returns false when it cannot.
pub fn write_json(path: &std::path::Path, summary: &RunSummary) -> bool {
    let written = serde_json::to_string_pretty(summary)
        .map_err(|e| e.to_string())
        .and_then(|text| std::fs::write(path, text + "\n").map_err(|e| e.to_string()));
    match written {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            false
        }
    }
}
