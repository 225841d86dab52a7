//! Snowflake credentials as the README documents them: `SNOWFLAKE_PASSWORD`, key files
//! (`private_key_path`, `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE` for an encrypted key), a clear error
//! naming the fix when neither is given, and no secret in any error, log or `Debug` output.
//!
//! One test function: it sets environment variables, which are process-wide.

#![cfg(feature = "snowflake")]

mod snowflake_support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use snowflake_support::emulator_url;
use snowflake_support::proxy::{upstream_of, with_host, CountingProxy};
use unistore_adapters::snowflake::{query_text, SnowflakeConfig, SnowflakeTargetPool};
use unistore_adapters::{open_target, TargetOptions};
use unistore_core::{ErrorKind, RunId, TableRef, TargetPool};

const PASSWORD: &str = "pw-from-env-7Qx";
const PASSPHRASE: &str = "key-passphrase-4Kz";
const WRONG_PASSPHRASE: &str = "wrong-passphrase-9Wd";
const NOT_A_KEY: &str = "not-a-key-secret-content-3Jr";

/// Log lines written while the test runs.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("openssl is needed to make test keys");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An unencrypted and an encrypted PKCS#8 RSA key.
fn make_keys(dir: &Path) -> (String, String) {
    let plain = dir.join("rsa_key.p8").display().to_string();
    let encrypted = dir.join("rsa_key_encrypted.p8").display().to_string();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &plain]);
    let pass = format!("pass:{PASSPHRASE}");
    openssl(&["pkcs8", "-topk8", "-in", &plain, "-v2", "aes-256-cbc", "-passout", &pass, "-out", &encrypted]);
    (plain, encrypted)
}

fn without_password(url: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("the emulator URL");
    parsed.set_password(None).expect("a URL with a user");
    parsed.to_string()
}

fn with_param(url: &str, param: &str) -> String {
    format!("{url}&{param}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_environment_and_key_files_and_never_show() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    std::env::remove_var("SNOWFLAKE_PASSWORD");
    std::env::remove_var("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (plain_key, encrypted_key) = make_keys(dir.path());
    let key_text = std::fs::read_to_string(&plain_key).expect("the key");
    let key_line = key_text.lines().nth(1).expect("a line of the key's body").to_string();
    let not_a_key = dir.path().join("not_a_key.p8");
    std::fs::write(&not_a_key, NOT_A_KEY).expect("writing a file");

    let emulator = emulator_url();
    let proxy = CountingProxy::start(upstream_of(&emulator)).await;
    let base = without_password(&with_host(&emulator, &proxy.base_url()));
    let mut shown: Vec<String> = Vec::new();

    // Neither a password nor a key: one error that names both fixes.
    let err = SnowflakeConfig::from_url(&base).expect_err("no credentials");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("SNOWFLAKE_PASSWORD") && message.contains("private_key_path"),
        "the error does not name the fixes: {message}"
    );
    shown.push(message);

    // The password from SNOWFLAKE_PASSWORD is the one sent at login.
    std::env::set_var("SNOWFLAKE_PASSWORD", PASSWORD);
    let config = SnowflakeConfig::from_url(&base).expect("a password from the environment");
    shown.push(format!("{config:?}"));
    let one = query_text(&base, "SELECT 1").await.expect("a query with the password from the environment");
    assert_eq!(one, vec![vec![Some("1".to_string())]]);
    assert!(proxy.sent().contains(PASSWORD), "the login did not send the password from SNOWFLAKE_PASSWORD");
    let pool = SnowflakeTargetPool::new(config, RunId::new());
    shown.push(format!("{pool:?}"));
    pool.connect().await.map(|_| ()).expect("a benchmark session");
    let missing = TargetOptions::new(RunId::new(), TableRef::parse("NO_SUCH_TABLE").expect("name"), None);
    let err = open_target(&base, &missing).await.map(|_| ()).expect_err("a missing table");
    shown.push(err.to_string());
    std::env::remove_var("SNOWFLAKE_PASSWORD");

    // An unencrypted key file: key-pair (JWT) login.
    let sent_before = proxy.sent().len();
    let url = with_param(&base, &format!("private_key_path={plain_key}"));
    let one = query_text(&url, "SELECT 1").await.expect("a query with key-pair auth");
    assert_eq!(one, vec![vec![Some("1".to_string())]]);
    assert!(proxy.sent()[sent_before..].contains("SNOWFLAKE_JWT"), "the login did not use key-pair auth");
    shown.push(format!("{:?}", SnowflakeConfig::from_url(&url).expect("config")));

    // An encrypted key file: the passphrase comes from SNOWFLAKE_PRIVATE_KEY_PASSPHRASE.
    let url = with_param(&base, &format!("private_key_path={encrypted_key}"));
    let err = query_text(&url, "SELECT 1").await.expect_err("an encrypted key without a passphrase");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"), "{err}");
    shown.push(err.to_string());
    std::env::set_var("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", WRONG_PASSPHRASE);
    let err = query_text(&url, "SELECT 1").await.expect_err("a wrong passphrase");
    shown.push(err.to_string());
    std::env::set_var("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", PASSPHRASE);
    let one = query_text(&url, "SELECT 1").await.expect("a query with an encrypted key");
    assert_eq!(one, vec![vec![Some("1".to_string())]]);
    shown.push(format!("{:?}", SnowflakeConfig::from_url(&url).expect("config")));
    std::env::remove_var("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE");

    // Key files that cannot work: errors name the path, never the content.
    for (path, why) in [(dir.path().join("missing.p8"), "cannot read"), (not_a_key.clone(), "not a PEM")] {
        let url = with_param(&base, &format!("private_key_path={}", path.display()));
        let err = query_text(&url, "SELECT 1").await.expect_err("an unusable key file");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let message = err.to_string();
        assert!(message.contains(why) && message.contains(&path.display().to_string()), "{message}");
        shown.push(message);
    }

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    shown.push(logs);
    for text in &shown {
        for secret in [PASSWORD, PASSPHRASE, WRONG_PASSPHRASE, NOT_A_KEY, key_line.as_str(), ":emulator@"] {
            assert!(!text.contains(secret), "a secret ({secret}) shows in: {text}");
        }
    }
}
