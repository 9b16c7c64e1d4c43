//! Serde helpers that accept the value forms people already write.
//!
//! The original read an oslo INI file, where a list is `a,b,c` and a dict is `k:v,k:v`, and
//! environment variables arrive as text that figment parses into numbers and booleans where it
//! can (`MONASCA_NOTIFICATION_MYSQL__PASSWD=12345` is a number). The helpers here let the
//! section structs in [`crate::sections`] take both the TOML form and those forms, so that
//! `[notification_types] enabled = "email,webhook"` and `enabled = ["email", "webhook"]` mean the
//! same thing. Every helper normalises; checks on the values themselves live in
//! [`crate::validate`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::sections::RepoDriver;

/// A string that also accepts a number, a boolean or a character and keeps its text, so that a
/// password or a topic that happens to look like a number still reads as a string.
struct LenientString(String);

/// Visitor behind [`LenientString`].
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor).map(LenientString)
    }
}

/// A string field; numbers and booleans are taken as their text.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    LenientString::deserialize(d).map(|s| s.0)
}

/// An optional string field; numbers and booleans are taken as their text.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<LenientString>::deserialize(d)?.map(|s| s.0))
}

/// Either a list of (lenient) strings or one string of comma-separated items.
enum ListOrCsv {
    /// `["a", "b"]`.
    List(Vec<String>),
    /// `"a,b"`, as an oslo `ListOpt` or an environment variable gives it.
    Csv(String),
}

impl ListOrCsv {
    /// The items, trimmed, empty ones dropped.
    fn items(self) -> Vec<String> {
        let items = match self {
            ListOrCsv::List(items) => items,
            ListOrCsv::Csv(text) => text.split(',').map(str::to_owned).collect(),
        };
        items
            .into_iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    }
}

impl<'de> Deserialize<'de> for ListOrCsv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ListOrCsv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings or one comma-separated string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListOrCsv, E> {
                Ok(ListOrCsv::Csv(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListOrCsv, A::Error> {
                let mut items = Vec::new();
                while let Some(LenientString(item)) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ListOrCsv::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[kafka] url`: `"h1:9092,h2:9092"` or `["h1:9092", "h2:9092"]`, kept as one comma-separated
/// string (what librdkafka's `bootstrap.servers` takes), entries trimmed.
pub(crate) fn broker_list<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(ListOrCsv::deserialize(d)?.items().join(","))
}

/// `[notification_types] enabled`: a list or a comma-separated string of notifier types,
/// trimmed, lower-cased, without duplicates. The original also took plugin class paths such as
/// `monasca_notification.plugins.hipchat_notifier.HipChatNotifier`; those become `hipchat`.
pub(crate) fn notifier_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let mut types: Vec<String> = Vec::new();
    for item in ListOrCsv::deserialize(d)?.items() {
        let item = short_notifier_name(&item.to_lowercase());
        if !types.contains(&item) {
            types.push(item);
        }
    }
    Ok(types)
}

/// `hipchat` for `monasca_notification.plugins.hipchat_notifier.HipChatNotifier` (or with `:`
/// before the class name); anything else unchanged.
fn short_notifier_name(item: &str) -> String {
    item.split(['.', ':'])
        .find_map(|part| part.strip_suffix("_notifier"))
        .filter(|_| item.contains('.'))
        .unwrap_or(item)
        .to_owned()
}

/// A table of strings (`[kafka] periodic`, `[kafka] client_properties`); values may be numbers
/// or booleans (`"session.timeout.ms" = 6000`). The oslo dict form `"60:topic,120:other"` is
/// accepted too.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a table of strings or a string of key:value pairs separated by commas")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, LenientString(value))) = map.next_entry::<String, _>()? {
                out.insert(key, value);
            }
            Ok(out)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
                .map(|pair| match pair.split_once(':') {
                    Some((k, v)) => Ok((k.trim().to_owned(), v.trim().to_owned())),
                    None => Err(E::custom(format!("`{pair}` is not of the form key:value"))),
                })
                .collect()
        }
    }
    d.deserialize_any(V)
}

/// The original's class path for its MySQL repository, accepted as `mysql`.
pub(crate) const MYSQL_REPO_CLASS: &str =
    "monasca_notification.common.repositories.mysql.mysql_repo:MysqlRepo";

impl<'de> Deserialize<'de> for RepoDriver {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let LenientString(text) = LenientString::deserialize(d)?;
        let name = text.trim().to_lowercase();
        match name.as_str() {
            "file" => Ok(RepoDriver::File),
            _ if name.contains("mysql") => Ok(RepoDriver::Mysql),
            _ => Err(de::Error::custom(format!(
                "unknown repo_driver; accepted: `mysql`, `file`, or the original's class path \
                 `{MYSQL_REPO_CLASS}` (PostgreSQL and ORM drivers are not supported)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct Probe {
        #[serde(deserialize_with = "notifier_types", default)]
        types: Vec<String>,
        #[serde(deserialize_with = "broker_list", default)]
        url: String,
        #[serde(deserialize_with = "string_map", default)]
        map: BTreeMap<String, String>,
        #[serde(deserialize_with = "opt_string", default)]
        secret: Option<String>,
    }

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn notifier_types_from_csv_list_and_class_paths() {
        let p = probe(json!({"types": " Email, WEBHOOK ,,email"}));
        assert_eq!(p.types, ["email", "webhook"]);
        let p = probe(
            json!({"types": ["slack", "monasca_notification.plugins.hipchat_notifier.HipChatNotifier",
            "monasca_notification.plugins.email_notifier:EmailNotifier"]}),
        );
        assert_eq!(p.types, ["slack", "hipchat", "email"]);
        // A bare word that ends in _notifier is left alone, to be reported as unknown.
        assert_eq!(short_notifier_name("my_notifier"), "my_notifier");
    }

    #[test]
    fn broker_list_from_string_or_list() {
        assert_eq!(
            probe(json!({"url": "h1:9092, h2:9092"})).url,
            "h1:9092,h2:9092"
        );
        assert_eq!(
            probe(json!({"url": ["h1:9092", " h2:9092"]})).url,
            "h1:9092,h2:9092"
        );
    }

    #[test]
    fn string_map_from_table_or_oslo_dict() {
        let p = probe(json!({"map": {"60": "sixty", "session.timeout.ms": 6000, "x": false}}));
        assert_eq!(p.map["session.timeout.ms"], "6000");
        assert_eq!(p.map["x"], "false");
        let p = probe(json!({"map": "60:sixty, 120:two-minutes"}));
        assert_eq!(p.map["120"], "two-minutes");
        assert!(serde_json::from_value::<Probe>(json!({"map": "60"})).is_err());
    }

    #[test]
    fn numbers_read_as_strings() {
        assert_eq!(
            probe(json!({"secret": 12345})).secret.as_deref(),
            Some("12345")
        );
        assert_eq!(probe(json!({"secret": null})).secret, None);
    }

    #[test]
    fn repo_driver_names() {
        let driver = |s: &str| serde_json::from_value::<RepoDriver>(json!(s));
        assert_eq!(driver("mysql").unwrap(), RepoDriver::Mysql);
        assert_eq!(driver(" File ").unwrap(), RepoDriver::File);
        assert_eq!(driver(MYSQL_REPO_CLASS).unwrap(), RepoDriver::Mysql);
        let err = driver("orm").unwrap_err().to_string();
        assert!(err.contains("`mysql`") && err.contains("`file`"), "{err}");
    }
}
