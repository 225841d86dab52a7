mod api;
pub(crate) mod config;
mod credential;
#[cfg(feature = "external-browser-sso")]
pub(crate) mod external_browser;
#[cfg(feature = "key-pair-auth")]
mod key_pair;
mod login;
mod wire;

pub(crate) use login::login;
