//! `unistore-server`: the controller binary. Thin: flags, results store, signals, serve.
//!
//! Exit codes: `0` stopped by SIGINT/SIGTERM after the grace period at most, `1` the store or the
//! listen address failed, `2` bad flags, `130` a second signal cut the grace period short.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser};
use unistore_adapters::{open_results, redact_url};
use unistore_core::orchestrator::{LocalLauncher, Orchestrator, OrchestratorSettings};
use unistore_server::{
    bind_listener, parse_byte_size, parse_duration, protect, router, serve, Access, AppState, ServerLimits,
};

// Every argument that reads the environment hides its value in `--help`: `UNISTORE_RESULTS` may
// carry a password, and a help screen is often pasted into tickets.
const WORKER_HELP: &str = "\
The controller also carries the worker's commands: `unistore-server worker bench …`,
`unistore-server worker join …`, `unistore-server worker runs`, … (see `unistore-server worker --help`).
Runs started from the UI or the API use them unless --worker-bin names another program.";

#[derive(Debug, Parser)]
#[command(name = "unistore-server", version, about = "Unistore Bench controller", after_help = WORKER_HELP)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", env = "UNISTORE_LISTEN", hide_env_values = true)]
    listen: String,
    /// Results store URL (default: embedded SQLite file in the data directory).
    #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
    results: Option<String>,
    /// Do not create the demo database and its ready-made template on a fresh start.
    #[arg(long, env = "UNISTORE_NO_DEMO")]
    no_demo: bool,
    #[command(flatten)]
    runs: RunArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Runs")]
struct RunArgs {
    /// Control store (default: the results store when it is SQLite, else the embedded SQLite
    /// file). Workers open it with the same URL: give a URL they can reach.
    #[arg(long, env = "UNISTORE_CONTROL", hide_env_values = true)]
    control: Option<String>,
    /// The unistore-worker program to start workers with (default: this program, which carries
    /// the worker's commands as `unistore-server worker …`).
    #[arg(long, env = "UNISTORE_WORKER_BIN")]
    worker_bin: Option<std::path::PathBuf>,
    /// What happens when a worker stops responding: fail, replace, or replace:N.
    #[arg(long, default_value = "fail")]
    on_worker_loss: unistore_core::orchestrator::LossPolicy,
    /// A worker silent for this long is lost.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    heartbeat_timeout: Duration,
    /// Workers' output goes to DIR/<run id>/<worker id>.log (default: the data directory's
    /// worker-logs).
    #[arg(long, value_name = "DIR")]
    worker_logs: Option<std::path::PathBuf>,
}

/// The defaults here must equal `ServerLimits::default()`; a test checks it.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits against slow, stalled or greedy clients")]
struct LimitArgs {
    /// Close a connection that has not sent a complete request head within this time; also how
    /// long an idle keep-alive connection is kept.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration,
          env = "UNISTORE_HEADER_TIMEOUT", hide_env_values = true)]
    header_timeout: Duration,
    /// Answer 503 when a request (its body included) has not been answered within this time.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration,
          env = "UNISTORE_REQUEST_TIMEOUT", hide_env_values = true)]
    request_timeout: Duration,
    /// Disconnect a client that accepts no response bytes for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration,
          env = "UNISTORE_WRITE_TIMEOUT", hide_env_values = true)]
    write_timeout: Duration,
    /// Open connections at most (WebSockets included). When all are taken, one quiet for 1 s
    /// (half-sent head, idle keep-alive) is closed to make room, else new ones wait in the listen
    /// backlog. Lowered automatically to fit the open-file limit (`ulimit -n`).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1024,
        env = "UNISTORE_MAX_CONNECTIONS",
        hide_env_values = true
    )]
    max_connections: usize,
    /// Largest request body (e.g. 1MiB, 512KiB); larger ones get 413.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_byte_size,
          env = "UNISTORE_MAX_BODY", hide_env_values = true)]
    max_body: usize,
    /// Largest request head (request line and headers); larger ones get 431.
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse_byte_size,
          env = "UNISTORE_MAX_HEADER_SIZE", hide_env_values = true)]
    max_header_size: usize,
    /// Connections the kernel may queue while the connection limit is reached.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1024,
        env = "UNISTORE_LISTEN_BACKLOG",
        hide_env_values = true
    )]
    listen_backlog: u32,
    /// On SIGINT/SIGTERM, how long requests in flight may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration,
          env = "UNISTORE_SHUTDOWN_GRACE", hide_env_values = true)]
    shutdown_grace: Duration,
}

impl From<LimitArgs> for ServerLimits {
    fn from(args: LimitArgs) -> Self {
        ServerLimits {
            header_timeout: args.header_timeout,
            request_timeout: args.request_timeout,
            write_timeout: args.write_timeout,
            max_connections: args.max_connections,
            max_body_bytes: args.max_body,
            max_header_bytes: args.max_header_size,
            listen_backlog: args.listen_backlog,
            shutdown_grace: args.shutdown_grace,
        }
    }
}

fn main() -> ExitCode {
    // `unistore-server worker COMMAND …`: the worker's commands, carried by the controller so
    // that it can start its own run workers when no `--worker-bin` is given. Dispatched before
    // any runtime starts: the worker's commands build their own.
    if std::env::args_os().nth(1).is_some_and(|a| a == "worker") {
        return unistore_worker::main(&["worker"]);
    }
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(controller()),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn controller() -> ExitCode {
    // stdout carries only the "listening on" line that scripts read.
    unistore_worker::init_logging("info");
    let cli = Cli::parse();
    let mut limits = ServerLimits::from(cli.limits);
    if let Err(e) = limits.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // Installed before the address is printed, so a supervisor's SIGTERM is never the default
    // (immediate) death.
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: cannot install the SIGINT/SIGTERM handlers: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(message) = limits.fit_to_descriptor_limit() {
        tracing::warn!("{message}");
    }
    let url = cli.results.unwrap_or_else(unistore_adapters::sqlite::demo::default_results_url);
    let results = match open_results(&url).await {
        Ok(results) => results,
        Err(e) => {
            eprintln!("error: cannot open the results store {}: {e}", redact_url(&url));
            return ExitCode::from(1);
        }
    };
    match if cli.no_demo { Ok(None) } else { unistore_server::seed_demo(&results).await } {
        Ok(Some(id)) => tracing::info!("stored the ready-made template `{id}` for the demo table"),
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot prepare the demo database and its template: {e}"),
    }
    let kind = url.split("://").next().unwrap_or("unknown").to_string();
    let data_dir = unistore_adapters::sqlite::demo::default_data_dir();
    let connections = match unistore_server::connections::ConnectionStore::open(&data_dir) {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) => {
            eprintln!("error: cannot open the stored connections in {}: {e}", data_dir.display());
            return ExitCode::from(1);
        }
    };
    let listener = match bind_listener(&cli.listen, &limits).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("error: the listening socket has no local address: {e}");
            return ExitCode::from(1);
        }
    };
    let access = match Access::for_listen_addr(&addr, std::env::var("UNISTORE_TOKEN").ok().as_deref()) {
        Ok(access) => access,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Printed on stdout so scripts (and tests) can read the chosen port.
    println!("listening on http://{addr}");
    tracing::info!(results = %redact_url(&url), ?limits, "unistore-server started");
    let controller_url = listener.local_addr().ok().map(|a| format!("http://{a}"));
    let orchestrator = match orchestrator(&cli.runs, &url, &results, controller_url).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match orchestrator.recover(true).await {
        Ok(lines) => lines.iter().for_each(|l| tracing::info!("{l}")),
        Err(e) => tracing::warn!("cannot recover the runs of the control store: {e}"),
    }
    // Runs whose controller went silent (this one before a restart, or another one sharing
    // the store) are only recognisable once their last beat is older than the heartbeat
    // timeout: look again every timeout.
    let recovering = orchestrator.clone();
    let every = cli.runs.heartbeat_timeout.max(Duration::from_secs(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match recovering.recover(true).await {
                Ok(lines) => lines.iter().for_each(|l| tracing::info!("{l}")),
                Err(e) => tracing::warn!("cannot recover the runs of the control store: {e}"),
            }
        }
    });

    let grace = limits.shutdown_grace;
    let shutdown = async move {
        let name = signals.next().await;
        tracing::info!(
            signal = name,
            grace = %humantime::format_duration(grace),
            "shutting down: no new connections, requests in flight may finish (send it again to stop at once)"
        );
        tokio::spawn(async move {
            let name = signals.next().await;
            eprintln!("{name} again: stopping without waiting for requests in flight");
            std::process::exit(130);
        });
    };
    let app = router(AppState {
        results,
        results_kind: kind,
        orchestrator: Some(orchestrator),
        live: Default::default(),
        connections,
    });
    match serve(listener, protect(app, access), limits, shutdown).await {
        Ok(report) => {
            tracing::info!(
                connections_accepted = report.connections_accepted,
                closed_by_header_timeout = report.closed_by_header_timeout,
                closed_to_make_room = report.closed_to_make_room,
                open_at_shutdown = report.open_at_shutdown,
                cut_after_grace = report.cut_after_grace,
                "unistore-server stopped"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// SIGINT and SIGTERM, registered once at start-up.
/// The orchestrator over the control store, starting local worker processes (this program's
/// `worker join`, or `--worker-bin`'s `join`).
async fn orchestrator(
    args: &RunArgs,
    results_url: &str,
    results: &unistore_adapters::ResultsStore,
    controller_url: Option<String>,
) -> Result<std::sync::Arc<Orchestrator>, String> {
    let control_url = args.control.clone().unwrap_or_else(|| {
        if results_url.starts_with("sqlite://") {
            results_url.to_string()
        } else {
            unistore_adapters::sqlite::demo::default_results_url()
        }
    });
    let control = unistore_adapters::open_control(&control_url)
        .await
        .map_err(|e| format!("cannot open the control store {}: {e}", redact_url(&control_url)))?;
    let launcher = match &args.worker_bin {
        Some(p) => LocalLauncher::new(p),
        None => LocalLauncher::new(
            std::env::current_exe()
                .map_err(|e| format!("cannot find this program to start workers with: {e}"))?,
        )
        .with_leading_args(["worker"]),
    };
    let logs = args
        .worker_logs
        .clone()
        .unwrap_or_else(|| unistore_adapters::sqlite::demo::default_data_dir().join("worker-logs"));
    let launcher = launcher.with_log_dir(logs);
    let mut settings = OrchestratorSettings::new(control_url);
    settings.results_url = Some(results_url.to_string());
    settings.controller_url = controller_url;
    settings.on_worker_loss = args.on_worker_loss;
    settings.heartbeat_timeout = args.heartbeat_timeout;
    Ok(Orchestrator::new(
        control,
        results.sink.clone(),
        results.reader.clone(),
        std::sync::Arc::new(launcher),
        settings,
    ))
}

struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Waits for the next signal and names it.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_defaults_equal_the_library_defaults() {
        let cli = Cli::try_parse_from(["unistore-server"]).expect("no flags parse");
        assert_eq!(ServerLimits::from(cli.limits), ServerLimits::default());
    }

    #[test]
    fn limit_flags_reach_the_limits() {
        let cli = Cli::try_parse_from([
            "unistore-server",
            "--header-timeout",
            "750ms",
            "--max-connections",
            "16",
            "--max-body",
            "2KiB",
        ])
        .expect("flags parse");
        let limits = ServerLimits::from(cli.limits);
        assert_eq!(limits.header_timeout, Duration::from_millis(750));
        assert_eq!(limits.max_connections, 16);
        assert_eq!(limits.max_body_bytes, 2048);
        let bad = Cli::try_parse_from(["unistore-server", "--max-body", "lots"]).expect_err("rejected");
        assert!(bad.to_string().contains("not a size"), "{bad}");
    }
}
