//! The regression gate of `bench` (`--baseline RUN_ID --max-regression 5%`, or `[gate]` in a
//! template): checked before the load (the baseline must exist and have finished), judged when
//! the run has finished, printed, and stored with the run.

use std::sync::Arc;

use clap::Args;
use unistore_core::analysis::{self, CompareOptions, GateReport, Metric, RunData};
use unistore_core::metrics::{RunSummary, Verdict};
use unistore_core::template::{parse_percent, Gate};
use unistore_core::{Error, ResultsReader, ResultsSink, Template};

use crate::history::parse_run_id;

/// The gate's flags (they win over the template's `[gate]`).
#[derive(Debug, Clone, Default, Args)]
pub struct GateArgs {
    /// Compare the run with this stored run when it finishes, and exit 1 when it is worse by
    /// more than --max-regression and the difference is significant.
    #[arg(long, value_name = "RUN_ID")]
    pub baseline: Option<String>,
    /// The allowance of the gate: how much worse a figure may be (default 5%).
    #[arg(long, value_name = "PERCENT")]
    pub max_regression: Option<String>,
    /// The figures the gate judges, comma-separated (default throughput,p99): throughput,
    /// error_rate, p50, p95, p99, p999.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub gate_metrics: Option<Vec<String>>,
}

fn metric(name: &str) -> Result<Metric, Error> {
    let n = name.trim().to_ascii_lowercase();
    let n = match n.as_str() {
        "qps" | "ops/s" => "throughput",
        "p99.9" => "p999",
        other => other,
    };
    serde_json::from_value(serde_json::Value::String(n.to_string())).map_err(|_| {
        Error::invalid(format!(
            "--gate-metrics `{name}` is not a figure the gate can judge: use throughput, error_rate, p50, p95, \
             p99 or p999"
        ))
    })
}

/// Puts the flags over the template's gate. `--max-regression` or `--gate-metrics` without a
/// baseline (here or in the template) is an error.
pub fn apply_flags(template: &mut Template, args: &GateArgs) -> Result<(), Error> {
    if let Some(b) = &args.baseline {
        let baseline = parse_run_id(b)?;
        match template.gate.as_mut() {
            Some(g) => g.baseline = baseline,
            None => template.gate = Some(Gate::new(baseline)),
        }
    }
    let Some(gate) = template.gate.as_mut() else {
        if args.max_regression.is_some() || args.gate_metrics.is_some() {
            return Err(Error::invalid(
                "--max-regression and --gate-metrics need a baseline: add --baseline RUN_ID (list runs with \
                 `unistore-worker runs`)",
            ));
        }
        return Ok(());
    };
    if let Some(m) = &args.max_regression {
        gate.max_regression_pct = parse_percent(m)?;
    }
    if let Some(list) = &args.gate_metrics {
        gate.metrics = list.iter().map(|m| metric(m)).collect::<Result<_, _>>()?;
    }
    gate.validate()
}

/// The baseline, read before the load: it must exist and have finished.
pub async fn baseline(reader: &dyn ResultsReader, gate: &Gate, store: &str) -> Result<RunData, Error> {
    let id = gate.baseline;
    unistore_core::sink::read_finished_run(reader, id).await?.ok_or_else(|| {
        Error::invalid(format!(
            "the baseline run {id} is not in the results store {store}: list runs with `unistore-worker runs`"
        ))
    })
}

/// Judges the finished run against the baseline, stores the judgement with the run (and the
/// verdict `REGRESSED` when it failed), and returns it. `stored`: whether all of the run's
/// results reached the store (the comparison reads its snapshots from there).
pub async fn judge(
    reader: &dyn ResultsReader,
    sink: &Arc<dyn ResultsSink>,
    summary: &mut RunSummary,
    baseline: RunData,
    gate: &Gate,
    stored: bool,
) -> GateReport {
    let report = if stored {
        let run = RunData {
            summary: summary.clone(),
            record: reader.run_record(summary.run_id, summary.worker_id.as_deref()).await.ok().flatten(),
            snapshots: reader.snapshots(summary.run_id).await.unwrap_or_default(),
        };
        let options = CompareOptions { confidence: gate.confidence, ..CompareOptions::default() };
        match analysis::compare(&[baseline, run], &options) {
            Ok(comparison) => {
                let mut report = analysis::judge_gate(&comparison, gate);
                report.lines.extend(comparison.warnings.iter().map(|w| format!("warning: {w}")));
                report
            }
            Err(e) => undecided(gate, format!("the runs could not be compared: {e}")),
        }
    } else {
        undecided(
            gate,
            "the run's results are not all in the store yet (spooled): flush them and compare".into(),
        )
    };
    if !report.passed && summary.verdict() == Verdict::Passed {
        summary.verdict = Some(Verdict::Regressed);
    }
    summary.gate = Some(report.clone());
    if stored {
        if let Err(e) = sink.write_summary(summary).await {
            eprintln!("warning: the gate's judgement could not be stored with the run: {e}");
        }
    }
    report
}

fn undecided(gate: &Gate, why: String) -> GateReport {
    GateReport {
        baseline: gate.baseline,
        max_regression_pct: gate.max_regression_pct,
        metrics: gate.metrics.clone(),
        passed: false,
        lines: vec![format!("UNDECIDED: {why}")],
    }
}

/// The gate's lines, on stdout after the summary.
pub fn print(report: &GateReport) {
    println!(
        "regression gate against {} (allowance {:.1} %): {}",
        report.baseline,
        report.max_regression_pct,
        if report.passed { "passed" } else { "FAILED" }
    );
    for line in &report.lines {
        println!("  {line}");
    }
}
