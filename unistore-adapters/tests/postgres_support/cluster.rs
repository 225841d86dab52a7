//! A throwaway PostgreSQL cluster configured unlike the machine's server: `scram-sha-256`
//! password authentication over TCP and TLS with a self-signed certificate for `localhost`.
//! One per test binary (initdb costs seconds), started on first use and stopped when the test
//! process exits, by a small watcher process (statics are never dropped, and a panicking test
//! must not leave a server behind).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The superuser's password in the cluster.
pub const PASSWORD: &str = "pw-Scr4m:with\\escapes";

/// A running throwaway cluster.
#[derive(Debug)]
pub struct AuthTlsCluster {
    /// Loopback TCP port.
    pub port: u16,
    /// Directory of the Unix socket (TLS is never offered on a Unix socket).
    pub socket_dir: PathBuf,
    /// The server's self-signed certificate (PEM), usable as `sslrootcert`.
    pub certificate: PathBuf,
    /// A scratch directory for the tests' own files (password files).
    pub scratch: PathBuf,
}

impl AuthTlsCluster {
    /// The cluster of this test binary, started on first use.
    pub fn shared() -> &'static AuthTlsCluster {
        static CLUSTER: OnceLock<AuthTlsCluster> = OnceLock::new();
        CLUSTER.get_or_init(start)
    }

    /// `postgres://postgres[:password]@HOST:PORT/postgres?params`.
    pub fn url(&self, host: &str, password: Option<&str>, params: &str) -> String {
        let user = match password {
            Some(p) => format!("postgres:{}", percent_encode(p)),
            None => "postgres".to_string(),
        };
        let query = if params.is_empty() { String::new() } else { format!("?{params}") };
        format!("postgres://{user}@{host}:{}/postgres{query}", self.port)
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn bindir() -> PathBuf {
    let out =
        Command::new("pg_config").arg("--bindir").output().expect("pg_config (PostgreSQL server binaries)");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a server binary as the `postgres` user when we are root (the server refuses root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start() -> AuthTlsCluster {
    let dir =
        tempfile::Builder::new().prefix("unistore-pgauth-").tempdir().expect("temporary directory").keep();
    let data = dir.join("data");
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let certificate = dir.join("server.crt");
    let key = dir.join("server.key");
    let mut openssl = Command::new("openssl");
    openssl
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3",
        ])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate);
    run(openssl, "openssl req (self-signed certificate)");
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("password file for initdb");
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.args(["-R", "postgres:"]).arg(&dir);
                c
            },
            "chown",
        );
    }
    run(
        {
            let mut c = Command::new("chmod");
            c.arg("0600").arg(&key);
            c
        },
        "chmod server.key",
    );
    let bin = bindir();
    let mut initdb = as_postgres(&bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()));
    run(initdb, "initdb");
    let _ = std::fs::remove_file(&pwfile);

    // A watcher stops the cluster and removes its directory once this test process is gone.
    let pg_ctl = bin.join("pg_ctl");
    let stop = if is_root() {
        format!("runuser -u postgres -- {} -D {} -m immediate stop", pg_ctl.display(), data.display())
    } else {
        format!("{} -D {} -m immediate stop", pg_ctl.display(), data.display())
    };
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Started in the background by a shell that exits at once, so nothing waits on it.
    let status = Command::new("sh")
        .args(["-c", &format!("( {watcher} ) </dev/null >/dev/null 2>&1 &")])
        .status()
        .expect("starting the cluster's watcher");
    assert!(status.success(), "starting the cluster's watcher: {status}");

    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port();
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={cert} \
             -c ssl_key_file={key} -c fsync=off -c password_encryption=scram-sha-256",
            dir = dir.display(),
            cert = certificate.display(),
            key = key.display()
        );
        let mut start = as_postgres(&pg_ctl);
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "30", "-o", &options, "start"]);
        let out = start.output().expect("pg_ctl start");
        if out.status.success() {
            return AuthTlsCluster { port, socket_dir: dir.clone(), certificate, scratch };
        }
        last_error = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    }
    panic!("the throwaway cluster did not start: {last_error}");
}
