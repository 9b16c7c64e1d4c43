//! Keys this service does not read.
//!
//! An original-style file carries keys we have no use for (`[zookeeper] url`, `[kafka]
//! legacy_kafka_client_enabled`, `[queues]`, ...), and a typo looks the same. Neither is an
//! error; [`unknown_keys`] lists them as warnings so `check-config` and the start-up log can
//! show them.
//!
//! The known keys are the field names of [`Config`], taken from serializing the defaults with
//! serde_json (which, unlike figment, writes `None` fields as `null`, so optional keys count).
//! The entries of free-form tables ([`FREE_FORM_TABLES`]) are never unknown.

use figment::value::Value;

use crate::origin::Origins;
use crate::sections::Config;

/// Tables whose entries are data, not keys: periods, librdkafka properties.
const FREE_FORM_TABLES: &[&[&str]] = &[&["kafka", "periodic"], &["kafka", "client_properties"]];

/// One warning per key in the merged configuration that [`Config`] has no field for, naming
/// the key and its source.
pub(crate) fn unknown_keys(at: &Origins) -> Vec<String> {
    let known = match serde_json::to_value(Config::default()) {
        Ok(known) => known,
        // Serializing plain structs of strings and numbers cannot fail; report nothing rather
        // than everything if it ever did.
        Err(_) => return Vec::new(),
    };
    let mut warnings = Vec::new();
    let mut path = Vec::new();
    walk(at, at.root(), Some(&known), &mut path, &mut warnings);
    warnings
}

/// Compares `value` (at `path`) with the known shape `known` (`None`: nothing is known there).
fn walk<'v>(
    at: &Origins,
    value: &'v Value,
    known: Option<&serde_json::Value>,
    path: &mut Vec<&'v str>,
    warnings: &mut Vec<String>,
) {
    if FREE_FORM_TABLES.contains(&path.as_slice()) {
        return;
    }
    let Some(known) = known else {
        // An unknown table: every key in it is unknown.
        if let Some(dict) = value.as_dict().filter(|_| path.len() < 2) {
            for (key, inner) in dict {
                path.push(key);
                walk(at, inner, None, path, warnings);
                path.pop();
            }
        } else {
            // No value: an unknown key may well be a password (`[postgresql] password`).
            warnings.push(format!(
                "{} (from {}): not used by this service, ignored",
                Origins::key(path),
                at.source(path)
            ));
        }
        return;
    };
    let (Some(dict), Some(known)) = (value.as_dict(), known.as_object()) else {
        return;
    };
    for (key, inner) in dict {
        path.push(key);
        walk(at, inner, known.get(key.as_str()), path, warnings);
        path.pop();
    }
}
