//! `GET /ws/test/{test_id}`: a run's live figures over WebSocket, one message a second.
//!
//! Each run has one ticker while anybody watches it: once a second it reads the run's view
//! (status, phase, elapsed, workers with their last heartbeat, the exact merge of the workers'
//! latest snapshots, notes) and broadcasts the same text to every socket, so the work is one
//! computation per run per second whatever the number of browsers. A run this controller
//! started is followed from its start even while nobody watches, keeping each second's chart
//! point: a socket opened later first gets `{"history": [...]}` (those points), then the latest
//! message at once. When the run has ended, the last message (`"final": true`)
//! carries the stored summary's figures, and the sockets are closed. A run this controller does
//! not drive (it was restarted, or the run ended long ago) is answered from the results store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use unistore_core::orchestrator::{plan, Orchestrator, RunView};
use unistore_core::{KindStats, QueryKind, RunId, Template};

use crate::AppState;

/// The tickers of the runs being watched.
#[derive(Debug, Default)]
pub struct LiveHub {
    runs: Mutex<HashMap<RunId, Watched>>,
}

#[derive(Debug)]
struct Watched {
    tx: broadcast::Sender<Tick>,
    latest: Option<Tick>,
    /// The chart points of the seconds seen so far (at most [`HISTORY_POINTS`]), sent to a
    /// socket that opens mid-run so that its charts show the run from the start.
    history: std::collections::VecDeque<Value>,
    /// Followed while the run goes even with nobody watching (runs this controller started),
    /// so that the history covers the whole run.
    pinned: bool,
}

/// Chart points kept per run: a quarter of an hour at one a second.
const HISTORY_POINTS: usize = 900;

/// The chart point of one message (its second's figures), if it has live figures.
fn chart_point(message: &Value) -> Option<Value> {
    let l = message.get("live").filter(|l| l.is_object())?;
    l.get("taken_at").filter(|t| t.is_string())?;
    let mut point = serde_json::Map::new();
    for key in
        ["taken_at", "interval_s", "qps", "errors", "p50_ms", "p95_ms", "p99_ms", "connections", "in_flight"]
    {
        point.insert(key.to_string(), l.get(key).cloned().unwrap_or(Value::Null));
    }
    Some(Value::Object(point))
}

/// One second's message of a run, and whether it is the run's last.
#[derive(Debug, Clone)]
struct Tick {
    text: Arc<str>,
    last: bool,
}

impl LiveHub {
    /// Subscribes to a run's messages, starting its ticker if nobody watched it yet. Returns
    /// the history of the seconds seen so far (as one message, if there are any), the latest
    /// message (if any) and the receiver.
    fn subscribe(
        self: &Arc<Self>,
        run_id: RunId,
        source: Source,
    ) -> (Option<Arc<str>>, Option<Tick>, broadcast::Receiver<Tick>) {
        let mut runs = self.runs.lock();
        if let Some(w) = runs.get(&run_id) {
            let history = (!w.history.is_empty())
                .then(|| Arc::from(json!({ "run_id": run_id, "history": w.history }).to_string()));
            return (history, w.latest.clone(), w.tx.subscribe());
        }
        let rx = self.start(&mut runs, run_id, source, false);
        (None, None, rx)
    }

    /// Follows a run from its start whether or not anybody watches, so that a page opened
    /// mid-run gets the whole run's chart points (the ticker ends with the run).
    pub(crate) fn follow(self: &Arc<Self>, state: &AppState, run_id: RunId) {
        let mut runs = self.runs.lock();
        match runs.get_mut(&run_id) {
            Some(w) => w.pinned = true,
            None => {
                let _ = self.start(&mut runs, run_id, Source::of(state), true);
            }
        }
    }

    fn start(
        self: &Arc<Self>,
        runs: &mut HashMap<RunId, Watched>,
        run_id: RunId,
        source: Source,
        pinned: bool,
    ) -> broadcast::Receiver<Tick> {
        let (tx, rx) = broadcast::channel(16);
        let history = std::collections::VecDeque::new();
        runs.insert(run_id, Watched { tx: tx.clone(), latest: None, history, pinned });
        tokio::spawn(self.clone().tick(run_id, source, tx));
        rx
    }

    async fn tick(self: Arc<Self>, run_id: RunId, source: Source, tx: broadcast::Sender<Tick>) {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = 0u64;
        loop {
            interval.tick().await;
            seq += 1;
            let (mut message, done) = source.message(run_id).await;
            message["seq"] = json!(seq);
            let text = Tick { text: Arc::from(message.to_string()), last: done };
            {
                let mut runs = self.runs.lock();
                let mut pinned = false;
                if let Some(w) = runs.get_mut(&run_id) {
                    w.latest = Some(text.clone());
                    pinned = w.pinned;
                    if let Some(point) = chart_point(&message) {
                        if w.history.back().and_then(|p| p.get("taken_at")) != point.get("taken_at") {
                            if w.history.len() == HISTORY_POINTS {
                                w.history.pop_front();
                            }
                            w.history.push_back(point);
                        }
                    }
                }
                // Nobody watches any more (and the run is not followed), or the run has ended:
                // the ticker stops. The removal happens under the lock, so a socket that
                // subscribes now starts a new ticker.
                if (tx.receiver_count() == 0 && !pinned) || done {
                    let _ = tx.send(text);
                    runs.remove(&run_id);
                    return;
                }
            }
            let _ = tx.send(text);
        }
    }
}

/// Where a run's figures come from.
#[derive(Clone)]
struct Source {
    orchestrator: Option<Arc<Orchestrator>>,
    results: Arc<dyn unistore_core::ResultsReader>,
}

impl Source {
    fn of(state: &AppState) -> Source {
        Source { orchestrator: state.orchestrator.clone(), results: state.results.reader.clone() }
    }

    /// One message, and whether the run has ended (the message is its last).
    async fn message(&self, run_id: RunId) -> (Value, bool) {
        if let Some(o) = &self.orchestrator {
            match o.view(run_id).await {
                Ok(view) if !view.record.status.is_terminal() => return (running(&view), false),
                Ok(view) => return (self.ended(run_id, Some(&view)).await, true),
                Err(e) if e.kind() == unistore_core::ErrorKind::NotFound => {}
                Err(e) => {
                    // A control store that does not answer this second: say so, keep trying.
                    return (
                        json!({ "run_id": run_id, "error": format!("cannot read the run: {e}") }),
                        false,
                    );
                }
            }
        }
        (self.ended(run_id, None).await, true)
    }

    /// The last message of a run: its row and the stored summary's figures.
    async fn ended(&self, run_id: RunId, view: Option<&RunView>) -> Value {
        let summary = match self.results.summary(run_id, None).await {
            Ok(s) => s,
            Err(e) => {
                return json!({ "run_id": run_id, "final": true, "error": format!("cannot read the run: {e}") })
            }
        };
        if view.is_none() && summary.is_none() {
            return json!({ "run_id": run_id, "final": true, "error": format!("no run {run_id}") });
        }
        let mut message = view.map_or_else(|| json!({ "run_id": run_id }), running);
        if let Some(s) = summary {
            message["status"] = json!(s.status);
            message["reason"] = json!(s.reason);
            message["verdict"] = json!(s.verdict());
            message["summary"] = json!({
                "ops": s.total.ops,
                "errors": s.total.errors,
                "qps": s.total.qps,
                "latency_ms": s.total.latency_ms,
                "connections": s.connections,
                "duration_s": s.duration_s,
                "p50_ms": s.total.latency_ms.p50,
                "p95_ms": s.total.latency_ms.p95,
                "p99_ms": s.total.latency_ms.p99,
                "error_rate": s.total.error_rate(),
                "kinds": kinds(&s.by_kind),
                "slo": s.slo,
                "steps": s.steps,
                "best_step": s.best_step,
                "warnings": s.warnings,
            });
        }
        message["final"] = json!(true);
        message
    }
}

/// A kind's (or the run's) figures as the page shows them.
fn figures(k: &KindStats) -> Value {
    json!({
        "ops": k.ops,
        "errors": k.errors,
        "error_rate": k.error_rate(),
        "qps": k.qps,
        "p50_ms": k.latency_ms.p50,
        "p95_ms": k.latency_ms.p95,
        "p99_ms": k.latency_ms.p99,
    })
}

/// Per-kind figures as a list (kind first), in the kinds' order.
fn kinds(by_kind: &std::collections::BTreeMap<QueryKind, KindStats>) -> Vec<Value> {
    by_kind
        .iter()
        .map(|(kind, k)| {
            let mut v = figures(k);
            v["kind"] = json!(kind);
            v
        })
        .collect()
}

/// The phases of a run with their lengths and the time left in each at `elapsed` seconds of
/// load; the current phase's remaining time is the first non-zero one.
fn phases(t: &Template, elapsed: f64) -> Vec<Value> {
    let mut start = 0.0;
    let mut out = Vec::new();
    for (name, d) in [
        ("WARMUP", t.phases.warmup),
        ("MEASUREMENT", plan::measurement_of(t)),
        ("COOLDOWN", t.phases.cooldown),
    ] {
        let length = d.as_secs_f64();
        let left = (start + length - elapsed).clamp(0.0, length);
        out.push(json!({
            "phase": name,
            "starts_at_s": start,
            "length_s": length,
            "elapsed_s": length - left,
            "remaining_s": left,
        }));
        start += length;
    }
    out
}

/// A running run's message: status, phase with the time left in each phase, the merged live
/// figures (totals, per kind, in flight), each worker's health and latest second, the step
/// search of a `FIND_MAX_CONCURRENCY` run, notes and the reason of a cancellation or failure.
fn running(view: &RunView) -> Value {
    let r = &view.record;
    let template: Option<Template> = r.template_json.as_deref().and_then(|j| serde_json::from_str(j).ok());
    let elapsed = view.elapsed_s.unwrap_or(0.0);
    let phases = template.as_ref().map(|t| phases(t, elapsed));
    let phase_remaining_s = phases.as_ref().and_then(|ps| {
        let name = serde_json::to_value(r.phase).ok()?;
        ps.iter().find(|p| p["phase"] == name).map(|p| p["remaining_s"].clone())
    });
    let live = view.live.as_ref().map(|l| {
        let mut v = figures(&l.total);
        v["connections"] = json!(l.active_connections);
        v["in_flight"] = json!(l.in_flight);
        v["backlog"] = json!(l.backlog);
        v["target_qps"] = json!(l.target_qps);
        v["workers"] = json!(l.workers);
        v["taken_at"] = json!(l.taken_at);
        v["interval_s"] = json!(l.interval_s);
        v["errors_by_kind"] = json!(l.total.errors_by_kind);
        v["kinds"] = json!(kinds(&l.by_kind));
        v
    });
    let workers: Vec<Value> = view
        .workers
        .iter()
        .map(|w| {
            let h = &w.heartbeat;
            let second = view.live.as_ref().and_then(|l| l.per_worker.get(&h.worker_id));
            json!({
                "worker_id": h.worker_id,
                "state": h.state,
                "phase": h.phase,
                "connections": second.map_or(h.connections, |s| s.connections),
                "ops": h.ops,
                "errors": h.errors,
                "last_error": h.last_error,
                "host": h.host,
                "beat_age_s": w.beat_age_s,
                "seq": second.map(|s| s.seq),
                "qps": second.map(|s| s.qps),
                "second_ops": second.map(|s| s.ops),
                "second_errors": second.map(|s| s.errors),
                "p95_ms": second.map(|s| s.p95_ms),
            })
        })
        .collect();
    json!({
        "run_id": r.run_id,
        "status": r.status,
        "phase": r.phase,
        "reason": r.reason,
        "elapsed_s": view.elapsed_s,
        "phases": phases,
        "phase_remaining_s": phase_remaining_s,
        "load_mode": template.as_ref().map(|t| t.load.name()),
        "target_connections": r.target_connections,
        "target_qps": r.target_qps,
        "live": live,
        "workers": workers,
        "steps": view.live.as_ref().and_then(|l| l.steps.as_ref()),
        "notes": view.notes,
        "final": false,
    })
}

/// A run's live figures over WebSocket.
///
/// Answers `101 Switching Protocols` and then sends one JSON text message a second, the same
/// to every socket watching the run (a socket opened later first gets `{"run_id", "history":
/// [...]}`, the chart points of the seconds so far: `taken_at`, `interval_s`, `qps`, `errors`,
/// `p50_ms`, `p95_ms`, `p99_ms`, `connections`, `in_flight`; then the latest message at once):
///
/// - while the run goes on: `run_id`, `seq`, `status`, `phase`, `reason`, `elapsed_s`,
///   `phases` (each with `phase`, `starts_at_s`, `length_s`, `elapsed_s`, `remaining_s`),
///   `phase_remaining_s`, `load_mode`, `target_connections`, `target_qps`, `live` (the merged
///   figures of the workers' latest second: `ops`, `errors`, `error_rate`, `qps`, `p50_ms`,
///   `p95_ms`, `p99_ms`, `connections`, `in_flight`, `backlog`, `target_qps`, `workers`,
///   `taken_at`, `interval_s`, `errors_by_kind`, `kinds`), `workers` (each worker's health and
///   latest second), `steps` (a `FIND_MAX_CONCURRENCY` run's search), `notes` and
///   `"final": false`;
/// - when the run has ended, the last message, `"final": true`, adds `verdict` and `summary`
///   (the stored summary's figures: `ops`, `errors`, `qps`, `latency_ms`, `connections`,
///   `duration_s`, percentiles, `error_rate`, `kinds`, `slo`, `steps`, `best_step`,
///   `warnings`), and the server closes the socket;
/// - on trouble, `{"run_id", "error", ...}`: a control store that does not answer this second
///   (the messages go on), or, with `"final": true` and the socket closed, an id that is not a
///   run id or a run that does not exist.
///
/// The client sends nothing but closes the socket when done.
#[utoipa::path(
    get,
    path = "/ws/test/{test_id}",
    operation_id = "watch_run",
    tag = "live",
    params(("test_id" = String, Path, description = "The run id (a UUID)")),
    responses(
        (status = 101, description = "Switching Protocols: a WebSocket carrying one JSON text message a second, as described above"),
        (status = 400, description = "Not a WebSocket upgrade request (answered by the upgrade extractor, in plain text)", content_type = "text/plain", body = String),
        (status = 426, description = "The connection cannot be upgraded (answered by the upgrade extractor, in plain text)", content_type = "text/plain", body = String),
    )
)]
pub(crate) async fn socket(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let parsed: Result<RunId, _> = id.parse();
    let hub = state.live.clone();
    let source = Source::of(&state);
    upgrade.on_upgrade(move |mut ws| async move {
        let Ok(run_id) = parsed else {
            let error = json!({ "error": format!("`{id}` is not a run id"), "final": true }).to_string();
            let _ = ws.send(Message::Text(error.into())).await;
            let _ = ws.send(Message::Close(None)).await;
            return;
        };
        let (history, latest, rx) = hub.subscribe(run_id, source);
        if let Some(history) = history {
            if ws.send(Message::Text(history.as_ref().into())).await.is_err() {
                return;
            }
        }
        forward(ws, latest, rx).await;
    })
}

/// Sends the run's messages to one socket until the run ends or the browser goes away.
async fn forward(mut ws: WebSocket, latest: Option<Tick>, mut rx: broadcast::Receiver<Tick>) {
    if let Some(tick) = latest {
        if ws.send(Message::Text(tick.text.as_ref().into())).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(tick) => {
                    if ws.send(Message::Text(tick.text.as_ref().into())).await.is_err() || tick.last {
                        break;
                    }
                }
                // A slow socket missed messages: the next one is the latest state anyway.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            incoming = ws.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = ws.send(Message::Close(None)).await;
}

/// The WebSocket route.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/ws/test/{test_id}", get(socket))
}
