//! How a run's load is spread over workers: how many workers (the scaling bounds), and each
//! worker's share of the connections and of the rate.

use crate::error::{Error, Result};
use crate::template::limits::MAX_CONNECTIONS_PER_WORKER;
use crate::template::{LoadMode, Scaling, Template};

use super::qps::QpsBounds;

/// Connections one worker is given before `AUTO` scaling adds another.
pub const AUTO_CONNECTIONS_PER_WORKER: u32 = 64;
/// Memory a worker process is budgeted when `AUTO` scaling counts what the host can hold.
pub const AUTO_MEMORY_PER_WORKER: u64 = 256 * 1024 * 1024;

/// What the host offers to `AUTO` scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapacity {
    /// CPU cores.
    pub cores: u32,
    /// Available memory in bytes (`None`: unknown, not a limit).
    pub memory_bytes: Option<u64>,
}

impl HostCapacity {
    /// This host: its cores, and its available memory where the OS says (Linux
    /// `/proc/meminfo`).
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1));
        let memory_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
            text.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| {
                l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).map(|kb| kb * 1024)
            })
        });
        HostCapacity { cores, memory_bytes }
    }

    /// Workers this host can hold: one per core, within the memory budget.
    pub fn max_workers(&self) -> u32 {
        let by_memory = self
            .memory_bytes
            .map_or(u32::MAX, |m| u32::try_from(m / AUTO_MEMORY_PER_WORKER).unwrap_or(u32::MAX).max(1));
        self.cores.max(1).min(by_memory)
    }
}

/// The workers of a run and the load they share.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerPlan {
    /// Worker processes to start.
    pub workers: u32,
    /// Connections of all workers together.
    pub connections: u32,
    /// Open-loop rate of all workers together.
    pub target_qps: Option<f64>,
    /// Set when the scaling bounds, not the template's load, decided the size of the run
    /// (stored with the run and printed).
    pub bound_note: Option<String>,
    /// Worker slots: the most workers the run may have. Keys and values are sharded over the
    /// slots, so that a worker added during the run has its own. Equal to `workers` except for
    /// an open-loop run under `AUTO` or `BOUNDED`, whose rate controller may add workers.
    pub max_workers: u32,
    /// The rate controller's bounds: an open-loop (`QPS`) run under `AUTO` or `BOUNDED`
    /// scaling. `FIXED` runs exactly the workers and connections it names.
    pub qps_bounds: Option<QpsBounds>,
}

/// `total` split over `count` workers: the share of worker `index` (the remainder goes one
/// each to the first workers), so that the shares add up to `total`.
pub fn share(total: u32, index: u32, count: u32) -> u32 {
    let count = count.max(1);
    total / count + u32::from(index % count < total % count)
}

/// `rate` split evenly over `count` workers.
pub fn rate_share(rate: f64, count: u32) -> f64 {
    rate / f64::from(count.max(1))
}

fn div_ceil(a: u32, b: u32) -> u32 {
    a.div_ceil(b.max(1))
}

/// How many workers run `template` and with what load. Bad combinations (more workers than
/// connections, a search over several workers) are errors that name the fix.
pub fn plan_workers(template: &Template, host: HostCapacity) -> Result<WorkerPlan> {
    template.validate()?;
    let asked =
        template.stages.iter().filter_map(|s| s.connections).max().unwrap_or(0).max(match &template.load {
            LoadMode::FindMaxConcurrency { max_connections, .. } => *max_connections,
            other => other.initial_connections(),
        });
    let target_qps = template.load.target_qps();
    let mut connections = template.load.initial_connections();
    let mut bound_note = None;
    let workers = match &template.scaling {
        Scaling::Fixed { workers } => *workers,
        Scaling::Auto { max_workers } => {
            let needed = div_ceil(asked, AUTO_CONNECTIONS_PER_WORKER).max(1);
            let room = host.max_workers().min(*max_workers);
            if needed > room {
                bound_note = Some(format!(
                    "scaling AUTO: {asked} connections would need {needed} workers of {AUTO_CONNECTIONS_PER_WORKER}, \
                     but this host holds {room} (max_workers {max_workers}, {} cores)",
                    host.cores
                ));
            }
            needed.min(room).max(1)
        }
        Scaling::Bounded { min_workers, max_workers, max_connections_per_worker } => {
            let needed = div_ceil(asked, *max_connections_per_worker);
            let workers = needed.clamp(*min_workers, *max_workers);
            let most = workers.saturating_mul(*max_connections_per_worker);
            if asked > most {
                bound_note = Some(format!(
                    "scaling BOUNDED limits the run to {most} connections ({workers} workers × \
                     {max_connections_per_worker}); the template asked for {asked}: the bound, not the \
                     database, limits this run"
                ));
                connections = connections.min(most);
            }
            workers
        }
    };
    if workers > 1 && !template.stages.is_empty() {
        return Err(Error::invalid(format!(
            "staged runs ([[stages]]) run in one worker process in this version, and the scaling asks for \
             {workers}: use scaling FIXED with workers = 1"
        )));
    }
    if workers > connections {
        return Err(Error::invalid(format!(
            "{workers} workers for {connections} connections: every worker needs at least one connection; \
             use at most {connections} workers or at least {workers} connections"
        )));
    }
    let per_worker = div_ceil(connections, workers);
    if per_worker > MAX_CONNECTIONS_PER_WORKER {
        return Err(Error::invalid(format!(
            "{connections} connections over {workers} workers is {per_worker} per worker, more than the limit of \
             {MAX_CONNECTIONS_PER_WORKER}: use more workers"
        )));
    }
    let floor = (connections / workers).max(1);
    let qps_bounds = match (&template.scaling, target_qps) {
        (Scaling::Auto { max_workers }, Some(rate)) => {
            let room = host.max_workers().min(*max_workers).max(workers);
            let cap = AUTO_CONNECTIONS_PER_WORKER.max(per_worker);
            Some(QpsBounds {
                target_qps: rate,
                floor,
                cap,
                max_workers: room,
                bound: format!(
                    "scaling AUTO ({room} workers on this host, max_workers {max_workers}, × {cap} connections)"
                ),
            })
        }
        (Scaling::Bounded { max_workers, max_connections_per_worker, .. }, Some(rate)) => Some(QpsBounds {
            target_qps: rate,
            floor: floor.min(*max_connections_per_worker),
            cap: *max_connections_per_worker,
            max_workers: (*max_workers).max(workers),
            bound: format!(
                "scaling BOUNDED (max_workers {max_workers} × max_connections_per_worker {max_connections_per_worker})"
            ),
        }),
        _ => None,
    };
    let max_workers = qps_bounds.as_ref().map_or(workers, |b| b.max_workers);
    Ok(WorkerPlan { workers, connections, target_qps, bound_note, max_workers, qps_bounds })
}

/// How long the run's measurement lasts: the template's, or for a search the longest it may
/// take (every step up to `max_connections`).
pub fn measurement_of(template: &Template) -> std::time::Duration {
    crate::stepload::StepSearchParams::from_load(&template.load)
        .map_or_else(|| template.measurement(), |p| p.max_duration())
}

/// The template one worker runs: its share of the connections and of the rate, and its part of
/// the scaling (one worker). With `controller_searches` (a `FIND_MAX_CONCURRENCY` run over
/// several workers), the controller runs the search on the merged figures and moves the
/// run's connections step by step, so a worker runs a plain closed loop at its share, for as
/// long as the search may last.
pub fn worker_template(
    template: &Template,
    connections: u32,
    target_qps: Option<f64>,
    controller_searches: bool,
) -> Template {
    let mut t = template.clone();
    if controller_searches && matches!(t.load, LoadMode::FindMaxConcurrency { .. }) {
        t.phases.measurement = measurement_of(template);
        t.load = LoadMode::Concurrency { connections: connections.max(1) };
    }
    match &mut t.load {
        LoadMode::Concurrency { connections: c } => *c = connections.max(1),
        LoadMode::Qps { target_qps: q, connections: c } => {
            *c = connections.max(1);
            if let Some(rate) = target_qps {
                *q = rate;
            }
        }
        LoadMode::FindMaxConcurrency { .. } => {}
    }
    t.scaling = Scaling::Fixed { workers: 1 };
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for total in [1u32, 2, 7, 10, 64, 101] {
            for count in 1..=total.min(9) {
                let shares: Vec<u32> = (0..count).map(|i| share(total, i, count)).collect();
                assert_eq!(shares.iter().sum::<u32>(), total, "{total} over {count}: {shares:?}");
                let (lo, hi) = (shares.iter().min().copied(), shares.iter().max().copied());
                assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= 1, "{shares:?}");
            }
        }
        assert_eq!((share(10, 0, 3), share(10, 1, 3), share(10, 2, 3)), (4, 3, 3));
    }

    fn template(load: LoadMode, scaling: Scaling) -> Template {
        let mut t =
            Template::new("public.t", [(crate::model::QueryKind::PointLookup, 100)].into_iter().collect());
        t.load = load;
        t.scaling = scaling;
        t
    }

    #[test]
    fn scaling_bounds() {
        let host = HostCapacity { cores: 2, memory_bytes: Some(8 << 30) };
        let fixed = plan_workers(
            &template(LoadMode::Concurrency { connections: 9 }, Scaling::Fixed { workers: 3 }),
            host,
        )
        .expect("plan");
        assert_eq!((fixed.workers, fixed.connections, fixed.bound_note.is_none()), (3, 9, true));
        let auto = plan_workers(
            &template(LoadMode::Concurrency { connections: 200 }, Scaling::Auto { max_workers: 8 }),
            host,
        )
        .expect("plan");
        assert_eq!(auto.workers, 2, "AUTO stays within the host's 2 cores");
        assert!(auto.bound_note.is_some());
        let bounded = plan_workers(
            &template(
                LoadMode::Concurrency { connections: 50 },
                Scaling::Bounded { min_workers: 1, max_workers: 2, max_connections_per_worker: 10 },
            ),
            host,
        )
        .expect("plan");
        assert_eq!((bounded.workers, bounded.connections), (2, 20));
        assert!(bounded.bound_note.as_deref().is_some_and(|n| n.contains("the bound, not the database")));
        assert_eq!(bounded.max_workers, 2, "a closed loop runs the workers it was planned with");
        assert!(bounded.qps_bounds.is_none() && fixed.qps_bounds.is_none());

        // Open loop under AUTO or BOUNDED: the rate controller may add workers up to the bound.
        let rate = LoadMode::Qps { target_qps: 900.0, connections: 4 };
        let p = plan_workers(
            &template(
                rate.clone(),
                Scaling::Bounded { min_workers: 1, max_workers: 5, max_connections_per_worker: 6 },
            ),
            host,
        )
        .expect("plan");
        let b = p.qps_bounds.clone().expect("a rate controller");
        assert_eq!((p.workers, p.max_workers, b.floor, b.cap, b.max_workers), (1, 5, 4, 6, 5));
        assert_eq!(b.target_qps, 900.0);
        let p = plan_workers(&template(rate.clone(), Scaling::Auto { max_workers: 8 }), host).expect("plan");
        let b = p.qps_bounds.clone().expect("a rate controller");
        assert_eq!(
            (p.workers, p.max_workers, b.cap),
            (1, 2, AUTO_CONNECTIONS_PER_WORKER),
            "the host's 2 cores"
        );
        let p = plan_workers(&template(rate, Scaling::Fixed { workers: 2 }), host).expect("plan");
        assert!(p.qps_bounds.is_none() && p.max_workers == 2, "FIXED runs exactly what it names");

        let err = plan_workers(
            &template(LoadMode::Concurrency { connections: 2 }, Scaling::Fixed { workers: 3 }),
            host,
        )
        .expect_err("more workers than connections");
        assert!(err.to_string().contains("3 workers for 2 connections"), "{err}");
    }
}
