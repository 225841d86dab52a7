//! Passwords and TLS against a throwaway cluster with `scram-sha-256` authentication and a
//! self-signed certificate (one cluster for the whole file): the password from the URL,
//! `PGPASSWORD` or a password file, libpq's environment for what the URL leaves out, and
//! `sslmode` as libpq means it. The environment is passed to the parser as a lookup function,
//! so these tests never touch the process environment.
#![cfg(feature = "postgres")]

mod postgres_support;

use std::collections::HashMap;
use std::path::Path;

use postgres_support::cluster::{AuthTlsCluster, PASSWORD};
use postgres_support::pg_url;
use unistore_adapters::postgres::{PasswordSource, PostgresConfig, SslMode};
use unistore_core::{Error, ErrorKind};

fn parse(url: &str, vars: &[(&str, &str)]) -> PostgresConfig {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    PostgresConfig::parse_with_env(url, &|k| vars.get(k).cloned()).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// An empty home directory: no `~/.pgpass`, no `~/.postgresql/root.crt`.
fn empty_home(name: &str) -> String {
    let home = AuthTlsCluster::shared().scratch.join(name);
    std::fs::create_dir_all(&home).expect("home directory");
    home.to_string_lossy().into_owned()
}

/// Whether this connection is encrypted, from the server's own view (`pg_stat_ssl`).
async fn encrypted(config: &PostgresConfig) -> Result<bool, Error> {
    let client = config.connect("unistore-test").await?;
    let row = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .expect("pg_stat_ssl");
    Ok(row.get(0))
}

fn assert_no_secret(what: &str) {
    for secret in [PASSWORD, "pw-Scr4m", "wrong-password-123"] {
        assert!(!what.contains(secret), "a password leaked: {what}");
    }
}

fn write_private(path: &Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test]
async fn a_password_in_the_url_logs_in_with_scram() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("url");
    let config = parse(&cluster.url("127.0.0.1", Some(PASSWORD), "sslmode=disable"), &[("HOME", &home)]);
    assert_eq!(config.password_source(), &PasswordSource::Url);
    assert_no_secret(&format!("{config:?}"));
    let client = config.connect("unistore-test").await.expect("login with the URL's password");
    let method: String = client
        .query_one("SELECT split_part(rolpassword, '$', 1) FROM pg_authid WHERE rolname = current_user", &[])
        .await
        .expect("pg_authid")
        .get(0);
    assert_eq!(method, "SCRAM-SHA-256", "the server really asks for a SCRAM password");
}

#[tokio::test]
async fn pgpassword_supplies_the_password() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("pgpassword");
    let config = parse(
        &cluster.url("127.0.0.1", None, "sslmode=disable"),
        &[("PGPASSWORD", PASSWORD), ("HOME", &home)],
    );
    assert_eq!(config.password_source(), &PasswordSource::Environment);
    assert_no_secret(&format!("{config:?}"));
    let client = config.connect("unistore-test").await.expect("login with PGPASSWORD");
    let user: String = client.query_one("SELECT current_user::text", &[]).await.expect("query").get(0);
    assert_eq!(user, "postgres");
}

#[tokio::test]
async fn a_password_file_supplies_the_password_as_libpq_reads_it() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("pgpassfile");
    // The password holds `:` and `\`, escaped in the file; an earlier line for another
    // database must not match, a later one must not win.
    let escaped = PASSWORD.replace('\\', "\\\\").replace(':', "\\:");
    let file = cluster.scratch.join("pgpass-named");
    let contents = format!(
        "# test password file\n127.0.0.1:{port}:otherdb:postgres:not-this-one\n\
         127.0.0.1:{port}:*:postgres:{escaped}\n*:*:*:*:not-this-either\n",
        port = cluster.port
    );
    write_private(&file, &contents, 0o600);
    let passfile = file.to_string_lossy().into_owned();
    let url = cluster.url("127.0.0.1", None, "sslmode=disable");
    let config = parse(&url, &[("PGPASSFILE", &passfile), ("HOME", &home)]);
    assert_eq!(config.password_source(), &PasswordSource::File(file.clone()));
    config.connect("unistore-test").await.expect("login with the PGPASSFILE line");

    // ~/.pgpass, when nothing names another file; `localhost` matches the Unix socket's
    // default directories only, so this line uses a wildcard host.
    let home_dir = empty_home("with-pgpass");
    write_private(
        &Path::new(&home_dir).join(".pgpass"),
        &format!("*:{}:postgres:postgres:{escaped}\n", cluster.port),
        0o600,
    );
    let config = parse(&url, &[("HOME", &home_dir)]);
    config.connect("unistore-test").await.expect("login with ~/.pgpass");

    // A file that others may read is refused, as libpq refuses it, and the login failure says so.
    let loose = cluster.scratch.join("pgpass-loose");
    write_private(&loose, &format!("*:*:*:*:{escaped}\n"), 0o644);
    let config = parse(&url, &[("PGPASSFILE", &loose.to_string_lossy()), ("HOME", &home)]);
    assert_eq!(config.password_source(), &PasswordSource::None);
    let e = config.connect("unistore-test").await.expect_err("world-readable password file");
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    let text = e.to_string();
    assert!(text.contains("group or world access") && text.contains("chmod 0600"), "{text}");
    assert!(text.contains(&loose.display().to_string()), "{text}");
    assert_no_secret(&text);
    assert_no_secret(&format!("{e:?}"));
}

#[tokio::test]
async fn a_missing_or_wrong_password_is_a_clear_error_without_the_password() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("missing");
    let url = cluster.url("127.0.0.1", None, "sslmode=disable");
    let e = parse(&url, &[("HOME", &home)]).connect("unistore-test").await.expect_err("no password");
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    let text = e.to_string();
    assert!(text.contains("asks for a password and none was given"), "{text}");
    assert!(text.contains("PGPASSWORD") && text.contains("~/.pgpass"), "{text}");

    let config = parse(&url, &[("PGPASSWORD", "wrong-password-123"), ("HOME", &home)]);
    let e = config.connect("unistore-test").await.expect_err("wrong password");
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    let text = e.to_string();
    assert!(text.contains("SQLSTATE 28P01"), "{text}");
    assert!(text.contains("the password in PGPASSWORD was used"), "{text}");
    assert!(text.contains("PGPASSWORD") && text.contains("~/.pgpass"), "{text}");
    for shown in [text, format!("{e:?}"), format!("{config:?}")] {
        assert_no_secret(&shown);
    }
    let config =
        parse(&cluster.url("127.0.0.1", Some("wrong-password-123"), "sslmode=disable"), &[("HOME", &home)]);
    let e = config.connect("unistore-test").await.expect_err("wrong password in the URL");
    assert!(e.to_string().contains("the password in the URL was used"), "{e}");
    assert!(e.to_string().contains("postgres:***@127.0.0.1"), "{e}");
    assert_no_secret(&format!("{e} {e:?} {config:?}"));
}

#[tokio::test]
async fn libpq_environment_fills_host_port_user_and_database() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("environment");
    let port = cluster.port.to_string();
    let env = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "postgres"),
        ("PGDATABASE", "template1"),
        ("PGPASSWORD", PASSWORD),
        ("PGSSLMODE", "disable"),
        ("HOME", home.as_str()),
    ];
    let config = parse("postgres://", &env);
    assert_eq!(config.endpoint(), format!("127.0.0.1:{port}"));
    let client = config.connect("unistore-test").await.expect("everything from the environment");
    let row = client
        .query_one("SELECT current_database()::text, current_user::text, inet_server_port()", &[])
        .await
        .expect("query");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, i32>(2)),
        ("template1".into(), "postgres".into(), i32::from(cluster.port))
    );
    // What the URL says wins over the environment.
    let config = parse(&format!("postgres://127.0.0.1:{port}/postgres"), &env);
    let client = config.connect("unistore-test").await.expect("URL and environment");
    let db: String = client.query_one("SELECT current_database()::text", &[]).await.expect("query").get(0);
    assert_eq!(db, "postgres");
}

#[tokio::test]
async fn require_encrypts_without_verifying_the_certificate() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("require");
    // The certificate is self-signed and names `localhost`, not 127.0.0.1: neither matters.
    let config = parse(&cluster.url("127.0.0.1", Some(PASSWORD), "sslmode=require"), &[("HOME", &home)]);
    assert_eq!(config.ssl_mode(), SslMode::Require);
    assert!(encrypted(&config).await.expect("sslmode=require connects"), "pg_stat_ssl says not encrypted");
    // Over the Unix socket the server offers no TLS: require refuses to go on in plain.
    let socket = parse(
        &format!(
            "postgres:///postgres?user=postgres&host={}&port={}&sslmode=require",
            cluster.socket_dir.display(),
            cluster.port
        ),
        &[("HOME", &home)],
    );
    let e = socket.connect("unistore-test").await.expect_err("no TLS on a socket");
    assert!(e.to_string().contains("does not offer TLS"), "{e}");
}

#[tokio::test]
async fn verify_full_refuses_an_unknown_certificate_and_accepts_it_as_root() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("verify");
    let env = [("HOME", home.as_str())];
    for mode in ["verify-full", "verify-ca"] {
        let config = parse(&cluster.url("localhost", Some(PASSWORD), &format!("sslmode={mode}")), &env);
        let e = config.connect("unistore-test").await.expect_err("self-signed, not trusted");
        assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("not signed by a trusted root") && text.contains("sslrootcert="),
            "{mode}: {text}"
        );
        assert_no_secret(&text);
    }
    let root = format!("sslrootcert={}", cluster.certificate.display());
    let config =
        parse(&cluster.url("localhost", Some(PASSWORD), &format!("sslmode=verify-full&{root}")), &env);
    assert!(encrypted(&config).await.expect("trusted root and matching host"));
    // The certificate names `localhost`, not 127.0.0.1: verify-full refuses, verify-ca does not.
    let config =
        parse(&cluster.url("127.0.0.1", Some(PASSWORD), &format!("sslmode=verify-full&{root}")), &env);
    let e = config.connect("unistore-test").await.expect_err("host name mismatch");
    assert!(
        e.to_string().contains("not issued for the host name") && e.to_string().contains("verify-ca"),
        "{e}"
    );
    let config = parse(&cluster.url("127.0.0.1", Some(PASSWORD), &format!("sslmode=verify-ca&{root}")), &env);
    assert!(encrypted(&config).await.expect("verify-ca ignores the host name"));
    // libpq: with a root certificate at hand, require checks the chain too.
    let other_root = format!("sslrootcert={}", pem_of_another_certificate().display());
    let config =
        parse(&cluster.url("127.0.0.1", Some(PASSWORD), &format!("sslmode=require&{other_root}")), &env);
    let e = config.connect("unistore-test").await.expect_err("require with a root that did not sign it");
    assert!(e.to_string().contains("not signed by a trusted root"), "{e}");
}

/// A certificate that did not sign the server's.
fn pem_of_another_certificate() -> std::path::PathBuf {
    let dir = AuthTlsCluster::shared().scratch.join("other-ca");
    std::fs::create_dir_all(&dir).expect("directory");
    let cert = dir.join("other.crt");
    if !cert.exists() {
        let out = std::process::Command::new("openssl")
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
            .args(["-subj", "/CN=other-ca"])
            .arg("-keyout")
            .arg(dir.join("other.key"))
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    cert
}

#[tokio::test]
async fn prefer_uses_tls_when_offered_and_plain_otherwise() {
    let cluster = AuthTlsCluster::shared();
    let home = empty_home("prefer");
    let env = [("HOME", home.as_str())];
    let config = parse(&cluster.url("127.0.0.1", Some(PASSWORD), ""), &env);
    assert_eq!(config.ssl_mode(), SslMode::Prefer, "libpq's default");
    assert!(encrypted(&config).await.expect("prefer over TCP"), "the server offers TLS: prefer must use it");
    // The server answers `N` to TLS on its Unix socket: prefer goes on in plain.
    let socket = |mode: &str| {
        parse(
            &format!(
                "postgres:///postgres?user=postgres&host={}&port={}&sslmode={mode}",
                cluster.socket_dir.display(),
                cluster.port
            ),
            &env,
        )
    };
    assert!(!encrypted(&socket("prefer")).await.expect("prefer falls back to plain"));
    // Cancel requests go the same way (a socket has no host name for TLS to check).
    let on_socket = socket("prefer");
    let client = on_socket.connect("unistore-test").await.expect("prefer over the socket");
    on_socket.cancel(&client.cancel_token()).await.expect("a cancel request over the socket");
    for mode in ["disable", "allow"] {
        let config = parse(&cluster.url("127.0.0.1", Some(PASSWORD), &format!("sslmode={mode}")), &env);
        assert!(!encrypted(&config).await.expect("plain connection"), "sslmode={mode} must not encrypt");
    }
    // The machine's own server, whatever its `ssl` setting: prefer encrypts exactly when it offers TLS.
    let main = parse(&pg_url(), &env);
    let client = main.connect("unistore-test").await.expect("the machine's server");
    let ssl_on: String = client.query_one("SHOW ssl", &[]).await.expect("SHOW ssl").get(0);
    assert_eq!(encrypted(&main).await.expect("prefer"), ssl_on == "on", "ssl = {ssl_on}");
}
