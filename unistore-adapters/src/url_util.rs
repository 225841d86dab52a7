//! URL helpers shared by the backends.

/// Returns the URL with any password (and `password`, `private_key*`, `token` query
/// parameters) replaced by `***`, for logs and error messages.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        // Not a URL: do not echo it, it might be a secret.
        return "<unparseable URL>".to_string();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        k.contains("password") || k.contains("private_key") || k.contains("token") || k.contains("secret")
    };
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { "***".to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_and_secret_parameters_are_redacted() {
        let r = redact_url("postgres://bob:hunter2@db:5432/x?sslmode=require&password=s3cret");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("bob:***@db:5432"), "{r}");
        assert!(r.contains("sslmode=require"), "{r}");
        assert_eq!(redact_url("not a url hunter2"), "<unparseable URL>");
    }
}
