mod config;
mod flow;
mod launcher;
mod listener;
#[cfg(unix)]
mod manual_input_unix;
mod manual_redirect_input;
mod payload;

pub use config::{BrowserLaunchMode, ExternalBrowserConfig};

pub(crate) use flow::acquire_external_browser_credential;
