//! SIGINT and SIGTERM: the first stops the load cleanly (in-flight operations get their
//! deadline, statements still running are cancelled on the server, the summary is written), a
//! second one stops at once (statements are cancelled first, then abandoned), a third exits.
//!
//! An orchestrator stops workers with SIGTERM and reads their exit code and stored rows, so
//! SIGTERM behaves exactly like Ctrl-C; only the exit code differs (130 for SIGINT, 143 for
//! SIGTERM: 128 + the signal number, as shells report).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;
use unistore_core::{EngineControl, StopReason};

/// How long a forced stop may take before the process exits anyway.
const FORCED_EXIT_AFTER: Duration = Duration::from_secs(5);

/// Which signal stopped the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// `kill`, an orchestrator, a container runtime.
    Terminate,
}

impl Signal {
    /// The exit code a shell reports for a process ended by this signal.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C (SIGINT)",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The reason stored with a run this signal stopped.
    pub fn reason(self) -> String {
        format!("interrupted by {}", self.name())
    }
}

#[derive(Default)]
struct State {
    first: AtomicU8,
    count: AtomicUsize,
    notify: Notify,
    control: Mutex<Option<EngineControl>>,
}

/// The process's signal handling. Installed once, at the start of a command.
#[derive(Clone)]
pub struct Interrupts {
    state: Arc<State>,
}

impl std::fmt::Debug for Interrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupts").field("first", &self.first()).finish()
    }
}

fn decode(v: u8) -> Option<Signal> {
    match v {
        1 => Some(Signal::Interrupt),
        2 => Some(Signal::Terminate),
        _ => None,
    }
}

impl Interrupts {
    /// Takes over SIGINT and SIGTERM for the rest of the process. Must run inside a runtime.
    pub fn install() -> std::io::Result<Self> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let state = Arc::new(State::default());
        let s = state.clone();
        tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    Some(()) = int.recv() => Signal::Interrupt,
                    Some(()) = term.recv() => Signal::Terminate,
                    else => return,
                };
                handle(&s, sig);
            }
        });
        Ok(Interrupts { state })
    }

    /// The first signal received, if any.
    pub fn first(&self) -> Option<Signal> {
        decode(self.state.first.load(Ordering::SeqCst))
    }

    /// Waits for the first signal.
    pub async fn wait(&self) -> Signal {
        loop {
            let notified = self.state.notify.notified();
            if let Some(s) = self.first() {
                return s;
            }
            notified.await;
        }
    }

    /// From now on a signal stops this engine. A signal that arrived before stops it at once.
    pub fn attach(&self, control: EngineControl) {
        *self.state.control.lock() = Some(control.clone());
        if let Some(sig) = self.first() {
            control.stop(StopReason::Requested(sig.reason()));
        }
    }
}

fn handle(state: &State, sig: Signal) {
    let n = state.count.fetch_add(1, Ordering::SeqCst) + 1;
    let code = match sig {
        Signal::Interrupt => 1,
        Signal::Terminate => 2,
    };
    let _ = state.first.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    state.notify.notify_waiters();
    let first = decode(state.first.load(Ordering::SeqCst)).unwrap_or(sig);
    let control = state.control.lock().clone();
    match n {
        1 => {
            eprintln!(
                "\n{}: stopping; in-flight operations get 5 s, then are cancelled on the server \
                 (send it again to stop at once)",
                sig.name()
            );
            if let Some(c) = control {
                c.stop(StopReason::Requested(sig.reason()));
            }
        }
        2 => {
            eprintln!("\n{} again: cancelling statements still running and stopping now", sig.name());
            if let Some(c) = control {
                c.force_stop(StopReason::Requested(first.reason()));
            }
            // If the forced stop itself hangs (a store that does not answer), leave anyway.
            std::thread::spawn(move || {
                std::thread::sleep(FORCED_EXIT_AFTER);
                eprintln!(
                    "error: the forced stop took longer than {} s; exiting",
                    FORCED_EXIT_AFTER.as_secs()
                );
                std::process::exit(i32::from(first.exit_code()));
            });
        }
        _ => std::process::exit(i32::from(first.exit_code())),
    }
}
