//! What the three control stores share about their rows: how an event's scope is split into the
//! `SCOPE` and `SCOPE_ID` columns, and how a run's results URL is kept free of secrets. The
//! rules about what a row becomes live in `unistore_core::control`, not here.

use unistore_core::model::EventScope;
use unistore_core::{Error, ErrorKind, Result};

use crate::url_util::redact_url;

/// The `SCOPE` and `SCOPE_ID` columns of an event.
pub(crate) fn scope_columns(scope: &EventScope) -> (&'static str, Option<&str>) {
    match scope {
        EventScope::Run => ("RUN", None),
        EventScope::WorkerGroup(g) => ("WORKER_GROUP", Some(g.as_str())),
        EventScope::Worker(w) => ("WORKER", Some(w.as_str())),
    }
}

/// An event's scope from its `SCOPE` and `SCOPE_ID` columns.
pub(crate) fn parse_scope(scope: &str, scope_id: Option<String>) -> Result<EventScope> {
    let missing = || {
        Error::backend(ErrorKind::Other, format!("control event scope {scope} has no SCOPE_ID in the store"))
    };
    match scope {
        "RUN" => Ok(EventScope::Run),
        "WORKER_GROUP" => Ok(EventScope::WorkerGroup(scope_id.ok_or_else(missing)?)),
        "WORKER" => Ok(EventScope::Worker(scope_id.ok_or_else(missing)?)),
        other => Err(Error::backend(
            ErrorKind::Other,
            format!("unknown control event scope `{other}` in the store (RUN, WORKER_GROUP or WORKER)"),
        )),
    }
}

/// The `RESULTS_URL` column: the URL as given, unless it carries a password or a secret
/// parameter, which never reach a store (workers on other hosts read this column).
pub(crate) fn stored_results_url(url: Option<&str>) -> Option<String> {
    url.map(|u| {
        let redacted = redact_url(u);
        if redacted.contains("***") && !u.contains("***") {
            redacted
        } else {
            u.to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_columns() {
        for scope in [EventScope::Run, EventScope::WorkerGroup("g".into()), EventScope::Worker("w-1".into())]
        {
            let (name, id) = scope_columns(&scope);
            assert_eq!(parse_scope(name, id.map(str::to_string)).expect("a known scope"), scope);
        }
        assert!(parse_scope("WORKER", None).is_err());
        assert!(parse_scope("EVERYONE", None).is_err());
    }

    #[test]
    fn results_urls_lose_their_secrets_and_nothing_else() {
        let plain = "postgres://bench@db.example:5432/results?schema=unistore";
        assert_eq!(stored_results_url(Some(plain)).as_deref(), Some(plain));
        assert_eq!(
            stored_results_url(Some("sqlite:///var/lib/x.db")).as_deref(),
            Some("sqlite:///var/lib/x.db")
        );
        let secret = stored_results_url(Some("postgres://bench:hunter2@db/results")).expect("a URL");
        assert!(!secret.contains("hunter2"), "{secret}");
        assert_eq!(stored_results_url(None), None);
    }
}
