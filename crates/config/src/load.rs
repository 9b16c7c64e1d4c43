//! Loading the configuration: merge the sources, deserialize, check, warn.
//!
//! Sources, later ones winning: the built-in defaults ([`Config::default`]), the file (TOML,
//! or the original's oslo INI read by [`crate::ini`], chosen by [`FileFormat::of`]), then
//! environment variables `MONASCA_NOTIFICATION_<SECTION>__<KEY>` (see [`crate::env`]).
//! Loading never stops at the first problem. Values of the wrong type are reported and put
//! aside (the key falls back to its default) so that deserialization can go on and find the
//! next; then [`crate::validate`] checks the result. Only when there was nothing to report
//! does the caller get a [`Config`], with the unknown keys as warnings.

use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Source};
use serde::Deserialize;

use crate::Config;
use crate::env::EnvVars;
use crate::ini::{FileFormat, IniFile};
use crate::origin::Origins;
use crate::unknown::unknown_keys;
use crate::validate::validate;

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "MONASCA_NOTIFICATION_";

/// Everything wrong with a configuration, each problem naming key, value and source.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.join("\n"))]
pub struct ConfigError {
    /// One line per problem, e.g. `[mysql] port = "abc" (from file /etc/monasca/
    /// notification.toml): invalid type: found string "abc", expected u16`.
    pub problems: Vec<String>,
}

impl ConfigError {
    /// An error of one problem.
    fn one(problem: String) -> Self {
        ConfigError {
            problems: vec![problem],
        }
    }
}

/// Loads defaults, then `file` (if given), then the process environment; warnings about
/// unknown keys are dropped (use [`load_with_warnings`] to show them).
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    load_from(file, process_env())
}

/// [`load`] with the warnings kept: what the daemons (which log them once at start) and
/// `check-config` (which prints them) call.
pub fn load_reporting(file: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
    load_with_warnings(file, process_env())
}

/// [`load`] with an explicit environment, for tests.
pub fn load_from(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    load_with_warnings(file, env).map(|(config, _warnings)| config)
}

/// Loads defaults, then `file` (if given), then the variables of `env` that start with
/// [`ENV_PREFIX`]. Returns the configuration and one warning per key it does not use (an
/// original-style `[zookeeper]` section, a typo), or every problem found.
///
/// `file` is read as TOML or as the original's oslo INI file, as [`FileFormat::of`] decides
/// from its name. A `file` that cannot be read or parsed is an error naming the file (and,
/// for INI, the line).
pub fn load_with_warnings(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Config, Vec<String>), ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(default_values()?));
    let mut warnings = Vec::new();
    if let Some(path) = file {
        // figment would report a missing file as a bare I/O error; say which file.
        std::fs::File::open(path)
            .map_err(|e| ConfigError::one(format!("configuration file {}: {e}", path.display())))?;
        figment = match FileFormat::of(path) {
            FileFormat::Toml => figment.merge(Toml::file_exact(path)),
            FileFormat::Ini => {
                let ini = IniFile::read(path).map_err(ConfigError::one)?;
                warnings.extend(ini.warnings.iter().cloned());
                figment.merge(ini)
            }
        };
    }
    figment = figment.merge(EnvVars::new(ENV_PREFIX, env));

    let root = figment.find_value("").map_err(|errors| ConfigError {
        problems: errors.into_iter().map(source_problem).collect(),
    })?;
    let at = Origins::new(&figment, &root);
    let (config, mut problems) = extract(&at);
    problems.extend(validate(&config, &at));
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    warnings.extend(unknown_keys(&at));
    Ok((config, warnings))
}

/// The process environment, skipping variables whose name is not UTF-8 (none of ours) and
/// reading values that are not UTF-8 lossily rather than panicking as `std::env::vars` does.
fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(name, value)| {
        Some((
            name.into_string().ok()?,
            value.to_string_lossy().into_owned(),
        ))
    })
}

/// The defaults as figment values, without the free-form tables: figment merges tables key by
/// key, and a file's `[kafka.periodic]` must replace the default periods, not add to them
/// (serde's field defaults still fill those tables in when no source sets them).
fn default_values() -> Result<Dict, ConfigError> {
    let internal = |e: figment::Error| ConfigError::one(format!("built-in defaults: {e}"));
    let mut defaults = Value::serialize(Config::default())
        .map_err(internal)?
        .into_dict()
        .ok_or_else(|| ConfigError::one("built-in defaults: not a table".into()))?;
    if let Some(Value::Dict(_, kafka)) = defaults.get_mut("kafka") {
        kafka.remove("periodic");
        kafka.remove("client_properties");
    }
    Ok(defaults)
}

/// A source that could not be read at all (a file that is not valid TOML), on one line.
fn source_problem(error: figment::Error) -> String {
    let message = one_line(&error.kind.to_string());
    match error.metadata.as_ref().and_then(|md| md.source.as_ref()) {
        Some(Source::File(path)) => format!("configuration file {}: {message}", path.display()),
        _ => one_line(&error.to_string()),
    }
}

/// A TOML parse error without its source excerpt (the `1 | [kafka` and `  |   ^` lines), its
/// remaining lines joined: `TOML parse error at line 1, column 7: invalid table header: ...`.
fn one_line(message: &str) -> String {
    let excerpt = |line: &str| {
        line.split_once('|')
            .is_some_and(|(gutter, _)| gutter.trim().chars().all(|c| c.is_ascii_digit()))
    };
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !excerpt(line))
        .collect::<Vec<_>>()
        .join(": ")
}

/// At most this many values of the wrong type are reported (each costs one more attempt).
const MAX_TYPE_ERRORS: usize = 100;

/// Deserializes the merged values into a [`Config`], reporting every value of the wrong type:
/// each one is reported, removed (so its key takes its default), and deserialization tried
/// again, because serde stops at the first error.
fn extract(at: &Origins) -> (Config, Vec<String>) {
    let mut values = at.root().clone();
    let mut problems = Vec::new();
    for _ in 0..MAX_TYPE_ERRORS {
        let errors = match Config::deserialize(&values) {
            Ok(config) => return (config, problems),
            Err(errors) => errors,
        };
        let mut removed = false;
        for error in errors {
            let path: Vec<&str> = error.path.iter().map(String::as_str).collect();
            problems.push(at.problem(&path, type_message(&path, &error.kind)));
            removed |= remove(&mut values, &path);
        }
        if !removed {
            break;
        }
    }
    (Config::default(), problems)
}

/// What figment says about a value of the wrong type; without the value itself for a secret.
fn type_message(path: &[&str], kind: &figment::error::Kind) -> String {
    match kind {
        figment::error::Kind::InvalidType(_, expected) if crate::sections::is_secret_path(path) => {
            format!("invalid type, expected {expected}")
        }
        kind => kind.to_string(),
    }
}

/// Removes the value at `path` from `values`; if `path` leads into a list or a scalar, the
/// table entry holding it is removed. `false` if there was nothing to remove.
fn remove(values: &mut Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Value::Dict(_, dict) = values else {
        return false;
    };
    let descend = !rest.is_empty() && matches!(dict.get(*first), Some(Value::Dict(..)));
    match dict.get_mut(*first) {
        Some(inner) if descend => remove(inner, rest),
        Some(_) => dict.remove(*first).is_some(),
        None => false,
    }
}
