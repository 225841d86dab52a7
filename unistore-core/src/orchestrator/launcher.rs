//! Starting worker processes. The orchestrator asks a [`Launcher`] for workers and keeps what
//! it returns to stop them; [`LocalLauncher`] starts `unistore-worker join` processes on this
//! host. A cluster scheduler (Kubernetes Jobs) implements the same trait; a worker started by
//! hand elsewhere with the same `join` arguments joins the same run.

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::model::RunId;

/// What a worker needs to join a run: the arguments of `unistore-worker join`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The run.
    pub run_id: RunId,
    /// The worker's id within the run.
    pub worker_id: String,
    /// Its index, for sharding keys and values.
    pub index: u32,
    /// Workers in the run.
    pub count: u32,
    /// The control store's URL (no secrets: they come from the environment).
    pub control_url: String,
    /// The results store's URL, when it is not the control store's default.
    pub results_url: Option<String>,
    /// The controller's base URL for live metrics (`POST /api/runs/{id}/metrics/live`).
    pub controller_url: Option<String>,
    /// Environment variables of this run's workers that hold secrets (`PGPASSWORD` of a stored
    /// connection): set in the worker's environment only, never on its command line.
    pub env: Vec<(String, Secret)>,
}

/// A secret (a password) on its way to a worker's environment. It is kept in memory only;
/// `Debug` prints `***`, and it has no `Serialize`, so it cannot reach a log, a store or a
/// response by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must hand it on.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Whether a store URL carries a secret (a password in its user part, or a password, token or
/// key in its query). Such a URL never goes on a command line or into the control store:
/// workers get it through their environment.
pub fn url_has_secret(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let user_secret = authority.rsplit_once('@').is_some_and(|(user, _)| user.contains(':'));
    let query = rest.split_once('?').map_or("", |(_, q)| q).to_ascii_lowercase();
    let query_secret = query.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or("");
        ["password", "token", "secret", "private_key", "passphrase"].iter().any(|s| key.contains(s))
    });
    user_secret || query_secret
}

impl LaunchSpec {
    /// The `unistore-worker` arguments that join this run. Store URLs with secrets are left
    /// out (the worker reads them from `UNISTORE_CONTROL` / `UNISTORE_RESULTS`).
    pub fn join_args(&self) -> Vec<String> {
        let mut args = vec![
            "join".to_string(),
            "--run-id".into(),
            self.run_id.to_string(),
            "--worker-id".into(),
            self.worker_id.clone(),
            "--worker-index".into(),
            self.index.to_string(),
            "--worker-count".into(),
            self.count.to_string(),
        ];
        if !url_has_secret(&self.control_url) {
            args.extend(["--control".to_string(), self.control_url.clone()]);
        }
        if let Some(r) = self.results_url.as_ref().filter(|r| !url_has_secret(r)) {
            args.extend(["--results".to_string(), r.clone()]);
        }
        if let Some(c) = &self.controller_url {
            args.extend(["--controller".to_string(), c.clone()]);
        }
        args
    }
}

/// How a worker process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerExit {
    /// Exit code, if it exited (not killed by a signal).
    pub code: Option<i32>,
    /// What to print: "exit code 0", "killed by signal 9".
    pub description: String,
}

impl WorkerExit {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A started worker, as the orchestrator holds it.
#[async_trait]
pub trait WorkerProcess: Send + Sync {
    /// A short description for messages ("pid 4242").
    fn describe(&self) -> String;
    /// How it ended, if it has (does not wait).
    fn try_exit(&mut self) -> Result<Option<WorkerExit>>;
    /// Asks it to stop (SIGTERM): it stops its load and writes its summary.
    fn terminate(&mut self) -> Result<()>;
    /// Ends it at once (SIGKILL).
    async fn kill(&mut self) -> Result<()>;
}

/// Starts workers.
#[async_trait]
pub trait Launcher: Send + Sync + 'static {
    /// Starts one worker that joins the run described by `spec`.
    async fn launch(&self, spec: &LaunchSpec) -> Result<Box<dyn WorkerProcess>>;
}

/// Starts `unistore-worker join` processes on this host. Each worker's output goes to
/// `<log_dir>/<run id>/<worker id>.log` when a log directory is set (otherwise it is discarded).
#[derive(Debug, Clone)]
pub struct LocalLauncher {
    program: PathBuf,
    /// Arguments before `join` (the controller carries the worker's commands under `worker`).
    leading_args: Vec<String>,
    log_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl LocalLauncher {
    /// Launches `program` (the `unistore-worker` binary).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        LocalLauncher { program: program.into(), leading_args: Vec::new(), log_dir: None, env: Vec::new() }
    }

    /// Puts `args` before the `join` command line: `unistore-server` carries the worker's
    /// commands under `worker`, so a controller starts its own program with `["worker"]`.
    pub fn with_leading_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.leading_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps each worker's output in a log file under `dir`.
    pub fn with_log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// Sets an environment variable for the workers (beside the inherited environment).
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The worker log of `worker_id` in run `run_id`, when logs are kept.
    pub fn log_path(&self, run_id: RunId, worker_id: &str) -> Option<PathBuf> {
        self.log_dir.as_ref().map(|d| d.join(run_id.to_string()).join(format!("{worker_id}.log")))
    }
}

struct LocalWorker {
    child: std::process::Child,
}

impl LocalWorker {
    /// The child's pid as nix takes it (`None` past `i32::MAX`, which no kernel hands out).
    fn pid(&self) -> Option<nix::unistd::Pid> {
        i32::try_from(self.child.id()).ok().map(nix::unistd::Pid::from_raw)
    }

    /// Sends `sig` to the child; one that has already gone is not an error.
    fn signal(&self, sig: nix::sys::signal::Signal) -> Result<()> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        match nix::sys::signal::kill(pid, sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::backend(ErrorKind::Other, format!("cannot signal worker pid {pid}: {e}"))),
        }
    }
}

impl Drop for LocalWorker {
    /// A worker still running when the controller lets go of it is killed and reaped (on a
    /// thread of its own: a process in uninterruptible sleep must not hold up a runtime).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = self.child.kill();
        let Some(pid) = self.pid() else { return };
        let reaper = std::thread::Builder::new()
            .name("unistore-reaper".into())
            .spawn(move || nix::sys::wait::waitpid(pid, None));
        if let Err(e) = reaper {
            tracing::warn!("cannot start a thread to reap a killed worker process: {e}");
        }
    }
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::backend(ErrorKind::Other, format!("{what}: {e}"))
}

#[async_trait]
impl WorkerProcess for LocalWorker {
    fn describe(&self) -> String {
        format!("pid {}", self.child.id())
    }

    fn try_exit(&mut self) -> Result<Option<WorkerExit>> {
        let status = self.child.try_wait().map_err(|e| io_error("cannot check a worker process", e))?;
        Ok(status.map(|s| {
            use std::os::unix::process::ExitStatusExt;
            WorkerExit {
                code: s.code(),
                description: match (s.code(), s.signal()) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    _ => "ended".to_string(),
                },
            }
        }))
    }

    fn terminate(&mut self) -> Result<()> {
        if self.child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        self.signal(nix::sys::signal::Signal::SIGTERM)
    }

    async fn kill(&mut self) -> Result<()> {
        let pid = self.describe();
        let child = &mut self.child;
        child.kill().map_err(|e| io_error("cannot kill a worker process", e))?;
        // SIGKILL ends it at once, unless it is in uninterruptible sleep: reap it, waiting a
        // little, never blocking the runtime.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if child.try_wait().map_err(|e| io_error("cannot reap a killed worker process", e))?.is_some() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::backend(
                    ErrorKind::Other,
                    format!("the worker process ({pid}) did not end within 10 s of SIGKILL"),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

#[async_trait]
impl Launcher for LocalLauncher {
    async fn launch(&self, spec: &LaunchSpec) -> Result<Box<dyn WorkerProcess>> {
        // Killed when dropped (see `LocalWorker`'s Drop).
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.leading_args).args(spec.join_args()).stdin(Stdio::null());
        // Through the environment, not the command line (which any user of the host can
        // read): the store URLs may carry a password.
        cmd.env("UNISTORE_CONTROL", &spec.control_url);
        if let Some(r) = &spec.results_url {
            cmd.env("UNISTORE_RESULTS", r);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in &spec.env {
            cmd.env(k, v.expose());
        }
        match self.log_path(spec.run_id, &spec.worker_id) {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        io_error(&format!("cannot create the worker log directory {}", dir.display()), e)
                    })?;
                }
                let file = std::fs::File::create(&path)
                    .map_err(|e| io_error(&format!("cannot create the worker log {}", path.display()), e))?;
                let err = file.try_clone().map_err(|e| io_error("cannot open the worker log", e))?;
                cmd.stdout(Stdio::from(file)).stderr(Stdio::from(err));
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd.spawn().map_err(|e| {
            io_error(
                &format!(
                    "cannot start the worker program {} (on the controller, --worker-bin or \
                     UNISTORE_WORKER_BIN names it; unset, the controller starts its own `worker join`)",
                    self.program.display()
                ),
                e,
            )
        })?;
        Ok(Box::new(LocalWorker { child }))
    }
}

#[cfg(test)]
mod tests {
    use super::{url_has_secret, Secret};

    /// The spec of worker 0 of 1, with no secrets.
    fn worker_spec() -> super::LaunchSpec {
        super::LaunchSpec {
            run_id: crate::model::RunId::new(),
            worker_id: "worker-0".into(),
            index: 0,
            count: 1,
            control_url: "sqlite:///tmp/control.db".into(),
            results_url: None,
            controller_url: None,
            env: Vec::new(),
        }
    }

    /// Whether process `pid` still exists (a zombie not yet reaped does).
    fn exists(pid: i32) -> bool {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
    }

    async fn gone_within(pid: i32, seconds: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while exists(pid) {
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// A worker the controller kills, or lets go of while it runs, ends and is reaped: no
    /// process and no zombie is left behind.
    #[tokio::test]
    async fn killed_and_dropped_workers_end_and_are_reaped() {
        use super::{Launcher, LocalLauncher};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("sleepy-worker.sh");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let launcher = LocalLauncher::new(&script);

        let mut killed = launcher.launch(&worker_spec()).await.expect("launches");
        let pid: i32 = killed.describe().trim_start_matches("pid ").parse().expect("a pid");
        assert!(exists(pid) && killed.try_exit().expect("state").is_none(), "running");
        killed.kill().await.expect("kills");
        assert!(!exists(pid), "kill returns once the process is reaped");

        let dropped = launcher.launch(&worker_spec()).await.expect("launches");
        let pid: i32 = dropped.describe().trim_start_matches("pid ").parse().expect("a pid");
        assert!(exists(pid));
        drop(dropped);
        assert!(gone_within(pid, 10).await, "a dropped worker is killed and reaped");
    }

    /// The run's secrets reach the worker's environment and never its command line.
    #[tokio::test]
    async fn run_secrets_go_to_the_environment_not_the_arguments() {
        use super::{LaunchSpec, Launcher, LocalLauncher};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("fake-worker.sh");
        std::fs::write(&script, "#!/bin/sh\nenv > \"$OUT/env\"\necho \"$@\" > \"$OUT/args\"\n")
            .expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let launcher = LocalLauncher::new(&script)
            .with_leading_args(["worker"])
            .with_env("OUT", dir.path().display().to_string());
        let spec = LaunchSpec { env: vec![("PGPASSWORD".into(), Secret::new("s3cret-pw"))], ..worker_spec() };
        assert!(!format!("{spec:?}").contains("s3cret-pw"));
        let mut worker = launcher.launch(&spec).await.expect("launches");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while worker.try_exit().expect("state").is_none() {
            assert!(std::time::Instant::now() < deadline, "the fake worker did not end");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let env = std::fs::read_to_string(dir.path().join("env")).expect("env written");
        assert!(env.lines().any(|l| l == "PGPASSWORD=s3cret-pw"), "{env}");
        let args = std::fs::read_to_string(dir.path().join("args")).expect("args written");
        assert!(args.contains("--worker-id worker-0") && !args.contains("s3cret-pw"), "{args}");
        // The leading arguments come first: the controller starts itself as `worker join …`.
        assert!(args.starts_with("worker join --run-id "), "{args}");
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
        let env = vec![("PGPASSWORD".to_string(), s)];
        assert!(!format!("{env:?}").contains("hunter2"));
    }

    #[test]
    fn secrets_in_urls_are_recognised() {
        assert!(url_has_secret("postgres://bench:hunter2@db:5432/app"));
        assert!(url_has_secret("snowflake://acct/db?user=u&password=p"));
        assert!(url_has_secret("snowflake://acct/db?private_key_path=/k&private_key_passphrase=x"));
        assert!(!url_has_secret("postgres://bench@db:5432/app?schema=unistore"));
        assert!(!url_has_secret("sqlite:///tmp/x@y:z/results.db"));
    }
}
