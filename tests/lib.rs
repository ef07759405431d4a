//! Integration tests: each drives the real `ftw` binary (see `support`).

mod support;

mod account;
mod adapt;
mod api;
mod argv_property;
mod browser;
mod cert;
mod check;
mod deploy;
mod diagnostics;
mod durable;
mod examples;
mod gen_secret;
mod generated;
mod hardening;
mod hash_password;
mod hostile;
mod http_auth;
mod ldap;
mod notify;
mod replicas;
mod results;
mod runs;
mod schedules;
mod serve;
mod serve_hardening;
mod sso;
mod webhooks;
