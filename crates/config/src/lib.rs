//! The configuration of both engines: the original's sections and keys, in TOML or in the
//! original's oslo INI file, read with figment.
//!
//! Sources, later ones winning: built-in defaults (the original's), the file named by
//! `--config` (TOML, or the original's `notification.conf` read by `ini`; [`FileFormat::of`]
//! tells which from the name), then environment variables `MONASCA_NOTIFICATION_<SECTION>__<KEY>`. [`load`]
//! checks everything at once and names the key, the bad value and where it came from;
//! [`load_with_warnings`] also lists the keys this service does not use.
//! `etc/notification.toml` documents every key.
//!
//! Inside: `sections` holds the structs and their defaults, `de` the serde helpers for the
//! original's value forms (comma lists, class paths), `ini` the oslo INI reader, `env` the environment-variable provider,
//! `load` the merging and extraction, `validate` the checks, `unknown` the unused-key
//! warnings, and `origin` the wording every line shares (key, value, source).

mod de;
mod env;
mod ini;
mod load;
mod origin;
mod sections;
mod unknown;
mod validate;

pub use ini::FileFormat;
pub use load::{ConfigError, ENV_PREFIX, load, load_from, load_reporting, load_with_warnings};
pub use sections::*;
