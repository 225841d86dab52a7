//! The rate controller of a multi-worker open-loop (`QPS`) run under `AUTO` or `BOUNDED`
//! scaling. Once a second it compares each worker's achieved rate with its share of the
//! target and moves the worker's connections: up by a bounded step when the worker falls
//! short with operations waiting, down (slowly, past a dead band) when it holds far more than
//! Little's law needs. When every worker is at its cap and the run stays short for
//! [`SHORT_TICKS_TO_ADD`] ticks, it adds a worker within the scaling bounds; when more
//! connections stop raising the rate, the database is the limit and it says so rather than
//! grow further. Pure: the driver feeds it the workers' latest snapshots and carries out what
//! it decides.

use std::collections::VecDeque;

/// How far below its share a worker (or the run below its target) may fall before the
/// controller reacts: 2 %.
pub const DEAD_BAND: f64 = 0.02;
/// Consecutive short ticks, with every worker at its cap, before a worker is added.
pub const SHORT_TICKS_TO_ADD: u32 = 2;
/// Connections kept over what Little's law needs at a worker's share of the rate.
const HEADROOM: f64 = 1.25;
/// Ticks over which more connections must raise the rate, or the database is the limit.
const SATURATION_WINDOW: usize = 3;

/// What the controller may do.
#[derive(Debug, Clone, PartialEq)]
pub struct QpsBounds {
    /// The run's target rate (operations per second, all workers together).
    pub target_qps: f64,
    /// Fewest connections a worker keeps (its share of the template's connections).
    pub floor: u32,
    /// Most connections a worker may have.
    pub cap: u32,
    /// Most workers the scaling allows.
    pub max_workers: u32,
    /// The bound, for messages ("scaling BOUNDED (max_workers 3 × 4 connections)").
    pub bound: String,
}

/// One worker's latest second, as the controller reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRate {
    /// The worker.
    pub worker_id: String,
    /// Connections it was asked for.
    pub connections: u32,
    /// Its share of the rate, as it runs now.
    pub target_qps: f64,
    /// What it achieved in its latest second.
    pub achieved_qps: f64,
    /// Mean service time in that second, in milliseconds (0 when nothing completed).
    pub service_ms: f64,
    /// Operations that started late or were still waiting at the end of the second.
    pub waiting: u64,
}

/// What the controller decided.
#[derive(Debug, Clone, PartialEq)]
pub enum QpsAction {
    /// Give a worker these connections and this share of the rate.
    Set {
        /// The worker.
        worker_id: String,
        /// Its connections.
        connections: u32,
        /// Its rate.
        target_qps: f64,
    },
    /// Start another worker with these connections and this share of the rate (the others
    /// keep theirs until it reports, then the rate is split again).
    AddWorker {
        /// Its connections.
        connections: u32,
        /// Its rate.
        target_qps: f64,
    },
    /// Something the run's summary should say (stored with the run's notes).
    Note(String),
}

/// The controller's state across ticks.
#[derive(Debug, Clone)]
pub struct QpsLoop {
    bounds: QpsBounds,
    short_ticks: u32,
    /// (connections of all workers, achieved rate) of the latest ticks, newest last.
    history: VecDeque<(u32, f64)>,
    saturated: bool,
    capped_noted: bool,
}

impl QpsLoop {
    /// A controller within `bounds`.
    pub fn new(bounds: QpsBounds) -> Self {
        QpsLoop { bounds, short_ticks: 0, history: VecDeque::new(), saturated: false, capped_noted: false }
    }

    /// Its bounds.
    pub fn bounds(&self) -> &QpsBounds {
        &self.bounds
    }

    /// Whether more connections stopped raising the rate (the database is the limit).
    pub fn saturated(&self) -> bool {
        self.saturated
    }

    /// One tick over the reporting workers' latest seconds. `pending`: workers started but
    /// not reporting yet (no rate is split and no worker added until they report).
    pub fn tick(&mut self, workers: &[WorkerRate], pending: u32) -> Vec<QpsAction> {
        let mut actions = Vec::new();
        if workers.is_empty() {
            return actions;
        }
        let b = self.bounds.clone();
        let count = u32::try_from(workers.len()).unwrap_or(u32::MAX);
        let share = if pending == 0 { b.target_qps / f64::from(count) } else { f64::NAN };
        let achieved: f64 = workers.iter().map(|w| w.achieved_qps).sum();
        let short = achieved < b.target_qps * (1.0 - DEAD_BAND);
        let connections: u32 = workers.iter().map(|w| w.connections).sum();
        self.history.push_back((connections, achieved));
        while self.history.len() > SATURATION_WINDOW + 1 {
            self.history.pop_front();
        }
        if short && !self.saturated && self.history.len() > SATURATION_WINDOW {
            let (c0, r0) = self.history[0];
            let grew = connections >= c0.saturating_add(2) && f64::from(connections) >= f64::from(c0) * 1.3;
            if grew && achieved < r0 * (1.0 + DEAD_BAND) {
                self.saturated = true;
                actions.push(QpsAction::Note(format!(
                    "QPS controller: {c0} → {connections} connections did not raise the rate ({r0:.1} → \
                     {achieved:.1} of {:.1} ops/s): the database is the limit; connections are held",
                    b.target_qps
                )));
            }
        }
        for w in workers {
            let rate = if share.is_nan() { w.target_qps } else { share };
            let c = w.connections;
            let mut next = c;
            if w.service_ms > 0.0 && w.achieved_qps > 0.0 {
                let needed = rate * w.service_ms / 1e3;
                let mut desired = clamp_u32((needed * HEADROOM).ceil() + 1.0, b.floor, b.cap);
                let behind = w.achieved_qps < w.target_qps * (1.0 - DEAD_BAND) && w.waiting > 0;
                if behind {
                    desired = desired.max(c.saturating_add(1)).min(b.cap);
                }
                next = if desired > c && !self.saturated {
                    desired.min(c.saturating_add((c / 2).max(2)))
                } else if f64::from(desired) < f64::from(c) * 0.75 {
                    desired.max(c.saturating_sub((c / 4).max(1)))
                } else {
                    c
                };
            }
            let rebalance = (rate - w.target_qps).abs() > rate * 1e-3;
            if next != c || rebalance {
                actions.push(QpsAction::Set {
                    worker_id: w.worker_id.clone(),
                    connections: next,
                    target_qps: rate,
                });
            }
        }
        let all_capped = workers.iter().all(|w| w.connections >= b.cap);
        self.short_ticks = if short && all_capped { self.short_ticks + 1 } else { 0 };
        if self.short_ticks >= SHORT_TICKS_TO_ADD && pending == 0 && !self.saturated {
            if count < b.max_workers {
                actions.push(QpsAction::AddWorker {
                    connections: b.floor,
                    target_qps: b.target_qps / f64::from(count + 1),
                });
                self.short_ticks = 0;
            } else if !self.capped_noted {
                self.capped_noted = true;
                actions.push(QpsAction::Note(format!(
                    "QPS controller: all {count} workers are at their cap of {} connections and the rate is \
                     {achieved:.1} of {:.1} ops/s: {} limits this run, not the database",
                    b.cap, b.target_qps, b.bound
                )));
            }
        }
        actions
    }
}

fn clamp_u32(x: f64, lo: u32, hi: u32) -> u32 {
    let hi = hi.max(lo);
    if x.is_nan() || x <= f64::from(lo) {
        lo
    } else if x >= f64::from(hi) {
        hi
    } else {
        // In range, so the cast is exact for the integer part.
        x as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(target: f64, floor: u32, cap: u32, max_workers: u32) -> QpsBounds {
        QpsBounds { target_qps: target, floor, cap, max_workers, bound: "scaling BOUNDED".into() }
    }

    /// A simulated worker: `c` connections, each completing one operation per `svc_ms`,
    /// open loop at `rate`. It achieves the smaller of its rate and what its connections can
    /// serve (or what the database can, `db_max` across all workers).
    fn simulate(
        ctl: &mut QpsLoop,
        workers: &mut Vec<(String, u32, f64)>,
        svc_ms: f64,
        db_max: f64,
        ticks: usize,
    ) -> (Vec<QpsAction>, f64) {
        let mut all = Vec::new();
        let mut achieved_total = 0.0;
        for _ in 0..ticks {
            let capacity: f64 = workers.iter().map(|(_, c, _)| f64::from(*c) * 1e3 / svc_ms).sum();
            let scale = (db_max / capacity).min(1.0);
            let rates: Vec<WorkerRate> = workers
                .iter()
                .map(|(id, c, rate)| {
                    let served = (f64::from(*c) * 1e3 / svc_ms * scale).min(*rate);
                    WorkerRate {
                        worker_id: id.clone(),
                        connections: *c,
                        target_qps: *rate,
                        achieved_qps: served,
                        service_ms: svc_ms,
                        waiting: u64::from(served < *rate * 0.999) * 10,
                    }
                })
                .collect();
            achieved_total = rates.iter().map(|r| r.achieved_qps).sum();
            let actions = ctl.tick(&rates, 0);
            for a in &actions {
                match a {
                    QpsAction::Set { worker_id, connections, target_qps } => {
                        let w = workers.iter_mut().find(|w| &w.0 == worker_id).expect("known worker");
                        w.1 = *connections;
                        w.2 = *target_qps;
                    }
                    QpsAction::AddWorker { connections, target_qps } => {
                        workers.push((format!("worker-{}", workers.len()), *connections, *target_qps));
                    }
                    QpsAction::Note(_) => {}
                }
            }
            all.extend(actions);
        }
        (all, achieved_total)
    }

    #[test]
    fn grows_connections_by_bounded_steps_until_the_rate_holds() {
        // 10 ms per operation: 400 ops/s need 4 in flight; one worker starts with 1.
        let mut ctl = QpsLoop::new(bounds(400.0, 1, 16, 1));
        let mut workers = vec![("worker-0".to_string(), 1, 400.0)];
        let mut seen = vec![1];
        for _ in 0..8 {
            simulate(&mut ctl, &mut workers, 10.0, f64::INFINITY, 1);
            seen.push(workers[0].1);
        }
        for pair in seen.windows(2) {
            assert!(pair[1] <= pair[0] + (pair[0] / 2).max(2), "step bounded: {seen:?}");
        }
        let last = *seen.last().expect("ticks");
        assert!((5..=7).contains(&last), "needs 4 in flight, holds 4 × 1.25 + 1 = 6: {seen:?}");
        // Within the dead band, nothing moves.
        let (actions, achieved) = simulate(&mut ctl, &mut workers, 10.0, f64::INFINITY, 3);
        assert!(actions.is_empty(), "{actions:?}");
        assert!((achieved - 400.0).abs() < 1e-6);
    }

    #[test]
    fn adds_a_worker_when_all_are_capped_and_short_for_two_ticks() {
        // 10 ms per operation, cap 2 per worker: one worker serves 200 ops/s, 500 needs 3.
        let mut ctl = QpsLoop::new(bounds(500.0, 1, 2, 4));
        let mut workers = vec![("worker-0".to_string(), 1, 500.0)];
        let (actions, achieved) = simulate(&mut ctl, &mut workers, 10.0, f64::INFINITY, 20);
        let added = actions.iter().filter(|a| matches!(a, QpsAction::AddWorker { .. })).count();
        assert_eq!(added, 2, "{actions:?}");
        assert_eq!(workers.len(), 3);
        assert!(workers.iter().all(|w| w.1 <= 2), "{workers:?}");
        assert!(
            (workers.iter().map(|w| w.2).sum::<f64>() - 500.0).abs() < 1e-6,
            "shares add up: {workers:?}"
        );
        assert!(achieved >= 500.0 * 0.98, "{achieved}");
        // Each addition came after two short ticks with every worker at its cap.
        let first_add = actions.iter().position(|a| matches!(a, QpsAction::AddWorker { .. }));
        assert!(first_add.is_some_and(|i| i >= 1), "{actions:?}");
    }

    #[test]
    fn the_bound_is_named_when_no_worker_may_be_added() {
        let mut ctl = QpsLoop::new(bounds(1000.0, 1, 2, 2));
        let mut workers = vec![("worker-0".to_string(), 2, 500.0), ("worker-1".to_string(), 2, 500.0)];
        let (actions, achieved) = simulate(&mut ctl, &mut workers, 10.0, f64::INFINITY, 6);
        let notes: Vec<&String> =
            actions.iter().filter_map(|a| if let QpsAction::Note(n) = a { Some(n) } else { None }).collect();
        assert_eq!(notes.len(), 1, "{actions:?}");
        assert!(notes[0].contains("scaling BOUNDED limits this run, not the database"), "{}", notes[0]);
        assert!((achieved - 400.0).abs() < 1e-6);
    }

    #[test]
    fn a_saturated_database_is_reported_and_connections_are_held() {
        // The database serves 300 ops/s whatever the connections; the target is 600.
        let mut ctl = QpsLoop::new(bounds(600.0, 2, 64, 1));
        let mut workers = vec![("worker-0".to_string(), 2, 600.0)];
        let (actions, achieved) = simulate(&mut ctl, &mut workers, 5.0, 300.0, 15);
        assert!(ctl.saturated());
        let notes: Vec<&QpsAction> = actions.iter().filter(|a| matches!(a, QpsAction::Note(_))).collect();
        assert_eq!(notes.len(), 1, "{actions:?}");
        assert!(format!("{notes:?}").contains("the database is the limit"), "{notes:?}");
        let held = workers[0].1;
        simulate(&mut ctl, &mut workers, 5.0, 300.0, 5);
        assert_eq!(workers[0].1, held, "no growth once saturated");
        assert!(held < 64, "stopped well before the cap: {held}");
        assert!((achieved - 300.0).abs() < 1e-6);
    }

    #[test]
    fn far_more_connections_than_needed_shrink_past_the_dead_band_not_below_the_floor() {
        let mut ctl = QpsLoop::new(bounds(100.0, 2, 64, 1));
        let mut workers = vec![("worker-0".to_string(), 40, 100.0)];
        let mut seen = vec![40];
        for _ in 0..12 {
            simulate(&mut ctl, &mut workers, 1.0, f64::INFINITY, 1);
            seen.push(workers[0].1);
        }
        for pair in seen.windows(2) {
            assert!(pair[0] - pair[1] <= (pair[0] / 4).max(1), "step bounded: {seen:?}");
        }
        assert_eq!(workers[0].1, 2, "needs 0.1 in flight; the floor is 2: {seen:?}");
    }

    #[test]
    fn no_split_while_a_new_worker_has_not_reported() {
        let mut ctl = QpsLoop::new(bounds(400.0, 2, 2, 3));
        let w = |id: &str, rate: f64| WorkerRate {
            worker_id: id.into(),
            connections: 2,
            target_qps: rate,
            achieved_qps: rate * 0.5,
            service_ms: 10.0,
            waiting: 5,
        };
        for _ in 0..4 {
            let actions = ctl.tick(&[w("worker-0", 200.0), w("worker-1", 200.0)], 1);
            assert!(actions.iter().all(|a| !matches!(a, QpsAction::AddWorker { .. })), "{actions:?}");
            assert!(
                actions
                    .iter()
                    .all(|a| !matches!(a, QpsAction::Set { target_qps, .. } if *target_qps != 200.0)),
                "{actions:?}"
            );
        }
    }
}
