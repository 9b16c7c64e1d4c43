//! A figment provider for environment variables handed in as pairs.
//!
//! figment's own `Env` provider always reads the process environment; [`crate::load_from`]
//! takes the environment as an argument instead (tests must not mutate the process
//! environment). [`EnvVars`] produces what `Env::prefixed(ENV_PREFIX).split("__")` would:
//! variables whose name starts with the prefix (any case), the rest of the name split on `__`
//! into lower-case keys, each value parsed the way figment parses environment values (`3307`
//! is a number, `true` a boolean, `[a, b]` a list, `{k = v}` a table, anything else text).
//!
//! Two deliberate differences: a `.` inside a name part stays part of the key (so a
//! `client_properties` entry such as `sasl.password` can be named), and the metadata names
//! the variable each value came from, so an error can say
//! `environment variable MONASCA_NOTIFICATION_MYSQL__PORT`.

use std::collections::BTreeMap;
use std::sync::Arc;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

/// [`Metadata::name`] of the values from [`EnvVars`]; how a source is recognised as an
/// environment variable when describing where a value came from.
pub(crate) const ENV_SOURCE_NAME: &str = "environment variable";

/// One variable that belongs to us.
struct Var {
    /// The key path, e.g. `["mysql", "port"]`.
    path: Vec<String>,
    /// The variable's name as given.
    name: String,
    /// Its value, unparsed.
    value: String,
}

/// The prefixed variables of a given environment, as a figment [`Provider`].
pub(crate) struct EnvVars {
    /// Prefix, for naming variables that were not given (never needed in practice).
    prefix: String,
    /// Our variables, sorted by name so that conflicting ones resolve the same way every time.
    vars: Vec<Var>,
}

impl EnvVars {
    /// Keeps the variables of `env` whose name starts with `prefix` (ignoring case) and whose
    /// remainder splits on `__` into non-empty parts.
    pub(crate) fn new(prefix: &str, env: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut vars: Vec<Var> = env
            .into_iter()
            .filter_map(|(name, value)| {
                let trimmed = name.trim();
                let head = trimmed.get(..prefix.len())?;
                if !head.eq_ignore_ascii_case(prefix) {
                    return None;
                }
                let path: Vec<String> = trimmed[prefix.len()..]
                    .split("__")
                    .map(|part| part.trim().to_ascii_lowercase())
                    .collect();
                if path.iter().any(String::is_empty) {
                    return None;
                }
                Some(Var { path, name, value })
            })
            .collect();
        vars.sort_by(|a, b| a.name.cmp(&b.name));
        EnvVars {
            prefix: prefix.to_owned(),
            vars,
        }
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        let names: Arc<BTreeMap<Vec<String>, String>> = Arc::new(
            self.vars
                .iter()
                .map(|var| (var.path.clone(), var.name.clone()))
                .collect(),
        );
        let prefix = self.prefix.clone();
        Metadata::named(ENV_SOURCE_NAME).interpolater(move |_: &Profile, keys: &[&str]| {
            let path: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            // A value inside a table given as one variable is named by that variable.
            (1..=path.len())
                .rev()
                .find_map(|n| names.get(&path[..n]).cloned())
                .unwrap_or_else(|| {
                    let upper: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
                    format!("{prefix}{}", upper.join("__"))
                })
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for var in &self.vars {
            let value = var
                .value
                .parse::<Value>()
                .unwrap_or_else(|never| match never {});
            insert(&mut dict, &var.path, value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Puts `value` at `path` in `dict`, making tables on the way (and replacing a non-table that
/// stands where a table is needed, as figment's merge would).
fn insert(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert(first.clone(), value);
        return;
    }
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Dict {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let data = EnvVars::new("MONASCA_NOTIFICATION_", env).data().unwrap();
        data.get(&Profile::Default).cloned().unwrap_or_default()
    }

    #[test]
    fn prefixed_split_and_parsed() {
        let dict = vars(&[
            ("MONASCA_NOTIFICATION_MYSQL__PORT", "3307"),
            ("monasca_notification_kafka__url", "h1:9092,h2:9092"),
            ("MONASCA_NOTIFICATION_STATSD__ENABLE", "false"),
            (
                "MONASCA_NOTIFICATION_KAFKA__CLIENT_PROPERTIES__SASL.PASSWORD",
                "pw",
            ),
            ("MONASCA_NOTIFICATION_BAD____KEY", "x"),
            ("OTHER_MYSQL__PORT", "1"),
        ]);
        let value = Value::from(dict);
        assert_eq!(
            value.find_ref("mysql.port").and_then(Value::to_u128),
            Some(3307)
        );
        assert_eq!(
            value.find_ref("kafka.url").and_then(Value::as_str),
            Some("h1:9092,h2:9092")
        );
        assert_eq!(
            value.find_ref("statsd.enable").and_then(Value::to_bool),
            Some(false)
        );
        let props = value
            .find_ref("kafka.client_properties")
            .and_then(Value::as_dict);
        assert_eq!(
            props
                .and_then(|p| p.get("sasl.password"))
                .and_then(Value::as_str),
            Some("pw")
        );
        assert!(value.find_ref("bad").is_none());
        assert_eq!(value.as_dict().map(Dict::len), Some(3));
    }

    #[test]
    fn metadata_names_the_variable() {
        let env = [(
            "monasca_notification_Mysql__Port".to_string(),
            "1".to_string(),
        )];
        let md = EnvVars::new("MONASCA_NOTIFICATION_", env).metadata();
        assert_eq!(md.name, ENV_SOURCE_NAME);
        let name = md.interpolate(&Profile::Default, &["mysql", "port"]);
        assert_eq!(name, "monasca_notification_Mysql__Port");
        let name = md.interpolate(&Profile::Default, &["kafka", "url"]);
        assert_eq!(name, "MONASCA_NOTIFICATION_KAFKA__URL");
    }
}
