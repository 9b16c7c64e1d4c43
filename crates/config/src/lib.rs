//! The configuration of both engines: the original's sections and keys, in TOML, read with
//! figment.
//!
//! Sources, later ones winning: built-in defaults (the original's), the TOML file named by
//! `--config`, then environment variables `MONASCA_NOTIFICATION_<SECTION>__<KEY>`. [`load`]
//! checks everything at once and names the key, the bad value and where it came from;
//! [`load_with_warnings`] also lists the keys this service does not use.
//! `etc/notification.toml` documents every key.
//!
//! Inside: `sections` holds the structs and their defaults, `de` the serde helpers for the
//! original's value forms (comma lists, class paths), `env` the environment-variable provider,
//! `load` the merging and extraction, `validate` the checks, `unknown` the unused-key
//! warnings, and `origin` the wording every line shares (key, value, source).

mod de;
mod env;
mod load;
mod origin;
mod sections;
mod unknown;
mod validate;

pub use load::{ConfigError, ENV_PREFIX, load, load_from, load_with_warnings};
pub use sections::*;
