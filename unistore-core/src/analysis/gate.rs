//! The regression gate: a finished run against its baseline. It fails when a chosen figure is
//! worse by more than the allowance *and* the difference is significant; a run too short to
//! tell fails too (a gate that cannot see must not pass).

use serde::{Deserialize, Serialize};

use super::{Comparison, Metric, Significance};
use crate::model::RunId;
use crate::template::Gate;

/// What the gate decided, stored with the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// The baseline run.
    pub baseline: RunId,
    /// The allowance, percent.
    pub max_regression_pct: f64,
    /// The figures judged.
    pub metrics: Vec<Metric>,
    /// Whether the run passed.
    pub passed: bool,
    /// One line per figure: what it was, against what, and why it passed or failed.
    pub lines: Vec<String>,
}

impl GateReport {
    /// The lines that failed the gate.
    pub fn failures(&self) -> impl Iterator<Item = &String> {
        self.lines.iter().filter(|l| l.starts_with("REGRESSED") || l.starts_with("UNDECIDED"))
    }
}

/// Judges the run (the comparison's second run) against the baseline (its first), on the
/// totals.
pub fn judge_gate(comparison: &Comparison, gate: &Gate) -> GateReport {
    let allowance = gate.max_regression_pct / 100.0;
    let mut lines = Vec::new();
    let mut passed = true;
    for metric in &gate.metrics {
        let Some(d) = comparison.row(None, *metric).and_then(|r| r.differences.first().cloned().flatten())
        else {
            passed = false;
            lines.push(format!("UNDECIDED {}: no value in one of the runs", metric.label()));
            continue;
        };
        let change = d.ratio.map(|r| (r - 1.0) * 100.0);
        let change_text = change.map_or_else(|| format!("{:+.3}", d.diff), |c| format!("{c:+.1} %"));
        let figures = format!("{:.3} against {:.3} ({change_text})", d.value, d.baseline);
        // How far worse, as a fraction of the baseline (positive: worse).
        let b = d.baseline;
        let worse_by = if b == 0.0 {
            match (d.value == 0.0, metric.higher_is_better()) {
                (true, _) => 0.0,
                (false, true) => -1.0,
                (false, false) => f64::INFINITY,
            }
        } else if metric.higher_is_better() {
            (b - d.value) / b
        } else {
            (d.value - b) / b
        };
        let line = match d.significance {
            Significance::NotEnoughData => {
                passed = false;
                format!(
                    "UNDECIDED {}: {figures}: not enough data to tell (run at least 10 s of measurement)",
                    metric.label()
                )
            }
            Significance::Significant if d.better == Some(false) && worse_by > allowance => {
                passed = false;
                format!(
                    "REGRESSED {}: {figures}: worse by more than {:.1} % and significant at {:.0} %",
                    metric.label(),
                    gate.max_regression_pct,
                    comparison.confidence * 100.0
                )
            }
            Significance::Significant if d.better == Some(false) => format!(
                "ok {}: {figures}: worse, but within the allowance of {:.1} %",
                metric.label(),
                gate.max_regression_pct
            ),
            Significance::Significant => format!("ok {}: {figures}: better", metric.label()),
            Significance::NotSignificant | Significance::NotTested => {
                format!("ok {}: {figures}: no significant difference", metric.label())
            }
        };
        lines.push(line);
    }
    GateReport {
        baseline: gate.baseline,
        max_regression_pct: gate.max_regression_pct,
        metrics: gate.metrics.clone(),
        passed,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{ComparisonRow, Difference};

    fn comparison(metric: Metric, baseline: f64, value: f64, significance: Significance) -> Comparison {
        let worse = if metric.higher_is_better() { value < baseline } else { value > baseline };
        Comparison {
            runs: vec![RunId::new(), RunId::new()],
            confidence: 0.95,
            method: String::new(),
            warnings: Vec::new(),
            rows: vec![ComparisonRow {
                kind: None,
                metric,
                values: vec![Some(baseline), Some(value)],
                differences: vec![Some(Difference {
                    baseline,
                    value,
                    diff: value - baseline,
                    ratio: Some(value / baseline),
                    interval: None,
                    significance,
                    better: (significance == Significance::Significant).then_some(!worse),
                })],
            }],
        }
    }

    fn gate(metric: Metric) -> Gate {
        Gate { metrics: vec![metric], ..Gate::new(RunId::new()) }
    }

    #[test]
    fn fails_only_when_worse_beyond_the_allowance_and_significant() {
        let g = gate(Metric::Throughput);
        let r = judge_gate(&comparison(Metric::Throughput, 1000.0, 900.0, Significance::Significant), &g);
        assert!(!r.passed, "{r:?}");
        assert!(r.lines[0].starts_with("REGRESSED ops/s") && r.lines[0].contains("-10.0 %"), "{:?}", r.lines);
        let r = judge_gate(&comparison(Metric::Throughput, 1000.0, 970.0, Significance::Significant), &g);
        assert!(r.passed, "3 % is within 5 %: {r:?}");
        let r = judge_gate(&comparison(Metric::Throughput, 1000.0, 900.0, Significance::NotSignificant), &g);
        assert!(r.passed, "not significant: {r:?}");
        let r = judge_gate(&comparison(Metric::Throughput, 1000.0, 1200.0, Significance::Significant), &g);
        assert!(r.passed && r.lines[0].contains("better"), "{r:?}");
        let g = gate(Metric::P99);
        let r = judge_gate(&comparison(Metric::P99, 2.0, 2.5, Significance::Significant), &g);
        assert!(!r.passed && r.lines[0].starts_with("REGRESSED p99"), "{r:?}");
        let r = judge_gate(&comparison(Metric::P99, 2.0, 1.5, Significance::Significant), &g);
        assert!(r.passed, "a lower p99 is better: {r:?}");
    }

    #[test]
    fn a_run_too_short_to_tell_does_not_pass() {
        let r = judge_gate(
            &comparison(Metric::Throughput, 1000.0, 1000.0, Significance::NotEnoughData),
            &gate(Metric::Throughput),
        );
        assert!(!r.passed);
        assert_eq!(r.failures().count(), 1);
        assert!(r.lines[0].contains("not enough data"), "{:?}", r.lines);
    }
}
