//! Where each configuration value came from, for messages a person can act on.
//!
//! Every problem and warning names the key as `[section] key`, the value as it was written
//! (secrets hidden), and its source: `file /etc/monasca/notification.toml`, `file
//! /etc/monasca/notification.conf:12` (an INI file knows each key's line), `environment
//! variable MONASCA_NOTIFICATION_MYSQL__PORT`, or `default`. [`Origins`] answers those three
//! questions from the merged figment; [`crate::validate`], [`crate::unknown`] and the
//! extraction in [`crate::load`] all phrase their lines through it.

use figment::value::Value;
use figment::{Figment, Profile, Source};

use crate::env::ENV_SOURCE_NAME;
use crate::ini::INI_SOURCE_NAME;
use crate::sections::{MASK, is_secret_path};

/// The merged values of all sources, and the figment that knows which source gave which.
pub(crate) struct Origins<'a> {
    /// Holds the metadata (file path, environment provider) behind each value's tag.
    figment: &'a Figment,
    /// The merged tree of values, tags intact.
    root: &'a Value,
}

impl<'a> Origins<'a> {
    /// `root` must come from `figment` (e.g. `figment.find_value("")`), or no source is found.
    pub(crate) fn new(figment: &'a Figment, root: &'a Value) -> Self {
        Origins { figment, root }
    }

    /// The merged tree of values.
    pub(crate) fn root(&self) -> &'a Value {
        self.root
    }

    /// The value at `path`, or if there is none, at its longest prefix that exists (a table
    /// entry given as part of one string, say), with the length of that prefix.
    fn nearest(&self, path: &[&str]) -> (usize, &'a Value) {
        let mut value = self.root;
        for (depth, key) in path.iter().enumerate() {
            match value.as_dict().and_then(|dict| dict.get(*key)) {
                Some(inner) => value = inner,
                None => return (depth, value),
            }
        }
        (path.len(), value)
    }

    /// `[section] key`, `[section] key.entry`, or `section` alone.
    pub(crate) fn key(path: &[&str]) -> String {
        match path {
            [] => "the configuration".into(),
            [section] => format!("[{section}]"),
            [section, rest @ ..] => format!("[{section}] {}", rest.join(".")),
        }
    }

    /// The value at `path`, or for a table entry that has no value of its own (it was given as
    /// part of one string, say) the table's value; `None` when the key is not set.
    fn found(&self, path: &[&str]) -> Option<(usize, &'a Value)> {
        let (depth, value) = self.nearest(path);
        let key_missing = depth < path.len().min(2);
        (!key_missing && !matches!(value, Value::Empty(..))).then_some((depth, value))
    }

    /// The value at `path` as written (JSON syntax), `(not set)`, or [`MASK`] for a secret.
    pub(crate) fn value(&self, path: &[&str]) -> String {
        match self.found(path) {
            None => "(not set)".into(),
            Some((depth, _)) if is_secret_path(&path[..depth]) || is_secret_path(path) => {
                MASK.into()
            }
            Some((_, value)) => {
                serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
            }
        }
    }

    /// Where the value at `path` came from; `default` for a key that is not set.
    pub(crate) fn source(&self, path: &[&str]) -> String {
        let Some((depth, value)) = self.found(path) else {
            return "default".into();
        };
        let Some(metadata) = self.figment.get_metadata(value.tag()) else {
            return "default".into();
        };
        match &metadata.source {
            _ if metadata.name == INI_SOURCE_NAME => {
                let at = metadata.interpolate(&Profile::Default, &path[..depth]);
                format!("file {at}")
            }
            Some(Source::File(file)) => format!("file {}", file.display()),
            _ if metadata.name == ENV_SOURCE_NAME => {
                let name = metadata.interpolate(&Profile::Default, &path[..depth]);
                format!("environment variable {name}")
            }
            _ => "default".into(),
        }
    }

    /// `[section] key = value (from source)`, or `[section] key (not set)`.
    pub(crate) fn setting(&self, path: &[&str]) -> String {
        if self.found(path).is_none() {
            return format!("{} (not set)", Self::key(path));
        }
        format!(
            "{} = {} (from {})",
            Self::key(path),
            self.value(path),
            self.source(path)
        )
    }

    /// `[section] key = value (from source): message`, one problem line.
    pub(crate) fn problem(&self, path: &[&str], message: impl std::fmt::Display) -> String {
        format!("{}: {message}", self.setting(path))
    }
}
