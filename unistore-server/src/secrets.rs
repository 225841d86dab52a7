//! Secrets at rest: the passwords of stored connections, sealed with ChaCha20-Poly1305 (an AEAD,
//! RFC 8439) under one 256-bit key.
//!
//! The key comes from `UNISTORE_SECRET_KEY` (32 bytes written as 64 hex digits or as base64,
//! e.g. `openssl rand -base64 32`) or, when that is unset, from `secret.key` in the data
//! directory, generated once with mode 0600. A sealed secret is `v1.<nonce>.<ciphertext>` (both
//! base64), with the connection's id as associated data, so a sealed value copied onto another
//! connection does not open. A wrong key is an error that names where the key came from, never
//! garbage. Neither the key nor a secret is ever logged or shown.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use unistore_core::orchestrator::Secret;

/// The environment variable holding the key.
pub const KEY_ENV: &str = "UNISTORE_SECRET_KEY";
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secret.key";
const SEALED_PREFIX: &str = "v1.";

/// Why the key cannot be had, or a secret cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// `UNISTORE_SECRET_KEY` is set but is not a 32-byte key.
    #[error(
        "{KEY_ENV} is not a key: give 32 random bytes as 64 hex digits or as base64 \
         (for example the output of `openssl rand -base64 32`), or unset it to use the key file \
         in the data directory"
    )]
    BadKeyEnv,
    /// The key file exists but does not hold a key.
    #[error("the key file {0} does not hold a key (32 bytes in base64): restore it, or remove it and re-add the stored connections' passwords")]
    BadKeyFile(PathBuf),
    /// The key file cannot be read or written.
    #[error("cannot {what} the key file {path}: {source}")]
    KeyFileIo {
        /// read, create, write.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A sealed secret does not open under this key.
    #[error(
        "the stored password of connection `{id}` cannot be decrypted with the key from {source_name}: \
         it was stored under another key (set the key used then, or remove the connection and add it again)"
    )]
    WrongKey {
        /// The connection.
        id: String,
        /// Where the key came from.
        source_name: String,
    },
    /// A sealed secret is not in the stored format.
    #[error("the stored password of connection `{id}` is damaged (not a sealed value): remove the connection and add it again")]
    Damaged {
        /// The connection.
        id: String,
    },
}

/// Where the key came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `UNISTORE_SECRET_KEY`.
    Environment,
    /// The key file.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Environment => write!(f, "{KEY_ENV}"),
            KeySource::File(p) => write!(f, "the key file {}", p.display()),
        }
    }
}

/// The key that seals and opens secrets. `Debug` shows where it came from, not the key.
pub struct SecretKey {
    cipher: ChaCha20Poly1305,
    source: KeySource,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey").field("source", &self.source).finish_non_exhaustive()
    }
}

/// 32 bytes from 64 hex digits or base64 (standard or URL-safe, padded or not).
fn decode_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect::<Option<Vec<u8>>>()?
    } else {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok())?
    };
    bytes.try_into().ok()
}

impl SecretKey {
    /// The key from `UNISTORE_SECRET_KEY` (through `env`), else from the key file in `data_dir`,
    /// created (mode 0600) when missing.
    pub fn load(data_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<SecretKey, SecretError> {
        if let Some(text) = env(KEY_ENV).filter(|v| !v.trim().is_empty()) {
            let key = decode_key(&text).ok_or(SecretError::BadKeyEnv)?;
            return Ok(SecretKey::from_bytes(&key, KeySource::Environment));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = decode_key(&text).ok_or_else(|| SecretError::BadKeyFile(path.clone()))?;
                Ok(SecretKey::from_bytes(&key, KeySource::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create_key_file(data_dir, path),
            Err(source) => Err(SecretError::KeyFileIo { what: "read", path, source }),
        }
    }

    fn create_key_file(data_dir: &Path, path: PathBuf) -> Result<SecretKey, SecretError> {
        let io = |what, source| SecretError::KeyFileIo { what, path: path.clone(), source };
        std::fs::create_dir_all(data_dir).map_err(|e| io("create the directory of", e))?;
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        // The key is written whole to a temporary file of its own (mode 0600), then linked into
        // place without replacing (`persist_noclobber`): if another controller starting at once
        // linked its key first, the file it linked is complete, so the loser reads a whole key,
        // never a half-written one. The temporary file is removed either way.
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{KEY_FILE}."))
            .suffix(".tmp")
            .tempfile_in(data_dir)
            .map_err(|e| io("create", e))?;
        temp.write_all(format!("{}\n", STANDARD.encode(key.as_slice())).as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| io("write", e))?;
        match temp.persist_noclobber(&path) {
            Ok(_) => Ok(SecretKey { cipher: ChaCha20Poly1305::new(&key), source: KeySource::File(path) }),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).map_err(|e| io("read", e))?;
                let key = decode_key(&text).ok_or_else(|| SecretError::BadKeyFile(path.clone()))?;
                Ok(SecretKey::from_bytes(&key, KeySource::File(path)))
            }
            Err(e) => Err(io("create", e.error)),
        }
    }

    fn from_bytes(bytes: &[u8; 32], source: KeySource) -> SecretKey {
        SecretKey { cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)), source }
    }

    /// Where the key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Seals `secret` for the connection `id`: `v1.<nonce>.<ciphertext>`.
    pub fn seal(&self, id: &str, secret: &Secret) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption into a Vec fails only beyond the AEAD's size limit (2^38 bytes), which
        // a request body cannot reach.
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: secret.expose().as_bytes(), aad: id.as_bytes() })
            .unwrap_or_default();
        format!("{SEALED_PREFIX}{}.{}", STANDARD.encode(nonce.as_slice()), STANDARD.encode(sealed))
    }

    /// Opens a value sealed by [`seal`](Self::seal) for the connection `id`.
    pub fn open(&self, id: &str, sealed: &str) -> Result<Secret, SecretError> {
        let damaged = || SecretError::Damaged { id: id.to_string() };
        let rest = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(damaged)?;
        let (nonce, body) = rest.split_once('.').ok_or_else(damaged)?;
        let nonce = STANDARD.decode(nonce).ok().filter(|n| n.len() == 12).ok_or_else(damaged)?;
        let body = STANDARD.decode(body).map_err(|_| damaged())?;
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &body, aad: id.as_bytes() })
            .map_err(|_| SecretError::WrongKey {
                id: id.to_string(),
                source_name: self.source.to_string(),
            })?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| damaged())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Controllers starting at once on a fresh data directory (as the tests start several):
    /// each gets the same whole key, never a half-written file.
    #[test]
    fn controllers_starting_at_once_share_one_whole_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("temp dir");
            let keys: Vec<SecretKey> = std::thread::scope(|scope| {
                let handles: Vec<_> =
                    (0..8).map(|_| scope.spawn(|| SecretKey::load(dir.path(), &no_env))).collect();
                handles.into_iter().map(|h| h.join().expect("no panic").expect("a key")).collect()
            });
            let sealed = keys[0].seal("pg", &Secret::new("hunter2"));
            for k in &keys {
                assert_eq!(k.open("pg", &sealed).expect("the same key").expose(), "hunter2");
            }
            let left: Vec<_> =
                std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
            assert_eq!(left, vec![std::ffi::OsString::from(KEY_FILE)], "no temporary file is left");
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_under_its_key_and_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = SecretKey::load(dir.path(), &no_env).expect("a key file is made");
        let sealed = key.seal("pg", &Secret::new("hunter2"));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open("pg", &sealed).expect("opens").expose(), "hunter2");
        assert!(matches!(key.open("other", &sealed), Err(SecretError::WrongKey { .. })));
        // The same file gives the same key.
        let again = SecretKey::load(dir.path(), &no_env).expect("the key file is read");
        assert_eq!(again.open("pg", &sealed).expect("opens").expose(), "hunter2");
        let hex = "11".repeat(32);
        let env = move |name: &str| (name == KEY_ENV).then(|| hex.clone());
        let other = SecretKey::load(dir.path(), &env).expect("a hex key");
        let err = other.open("pg", &sealed).expect_err("another key");
        assert!(err.to_string().contains(KEY_ENV), "{err}");
        assert!(matches!(other.open("pg", "garbage"), Err(SecretError::Damaged { .. })));
    }

    #[test]
    fn key_formats_are_hex_or_base64_of_32_bytes() {
        assert!(decode_key(&"ab".repeat(32)).is_some());
        assert!(decode_key(&STANDARD.encode([7u8; 32])).is_some());
        assert!(decode_key(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_some());
        assert!(decode_key(&STANDARD.encode([7u8; 16])).is_none());
        assert!(decode_key("not a key").is_none());
        let dir = tempfile::tempdir().expect("temp dir");
        let env = |name: &str| (name == KEY_ENV).then(|| "short".to_string());
        let err = SecretKey::load(dir.path(), &env).expect_err("a bad key");
        assert!(matches!(err, SecretError::BadKeyEnv));
        assert!(!err.to_string().contains("short"));
    }

    #[test]
    fn the_key_file_is_private_and_debug_shows_no_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let key = SecretKey::load(dir.path(), &no_env).expect("a key file is made");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(dir.path().join(KEY_FILE)).expect("readable");
        assert!(!format!("{key:?}").contains(text.trim()));
    }
}
