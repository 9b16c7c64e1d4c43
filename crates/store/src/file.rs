//! [`FileStore`]: notification methods from a TOML file, for deployments without the Monasca
//! database (`[database] repo_driver = "file"`) and for `--dev`.
//!
//! The file mirrors the Monasca tables, so that people who know Monasca can read it:
//!
//! ```toml
//! [[notification_method]]
//! id = "00000000-0000-0000-0000-000000000001"
//! name = "ops webhook"             # optional, default ""
//! type = "WEBHOOK"                 # any case
//! address = "http://127.0.0.1:8080/"
//! period = 0                       # optional, default 0
//!
//! [[alarm_action]]
//! alarm_definition_id = "78ce7b53-f7e6-4b51-88d0-cb741e7dc906"
//! alarm_state = "ALARM"            # OK, ALARM or UNDETERMINED
//! action_id = "00000000-0000-0000-0000-000000000001"
//!
//! [[alarm]]                        # optional: current alarm states, for periodic notifications
//! id = "20a54a65-44b8-4ac9-a398-1f2d888827d2"
//! state = "ALARM"
//! ```
//!
//! The whole file is checked when it is loaded (unknown keys, duplicate ids, actions naming no
//! method, bad states are errors that name the file and the entry); queries are then answered
//! from memory. [`FileStore::reload`] re-reads the file and keeps the old contents if the new
//! ones are invalid.
//!
//! The file cannot know live alarm states: for an alarm it does not list, [`alarm_state`]
//! answers the caller's assumption, so periodic notifications continue until the record's own
//! state changes (a new transition replaces it).
//!
//! [`alarm_state`]: MethodStore::alarm_state

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use monasca_model::NotificationMethod;
use serde::Deserialize;

use crate::{MethodStore, StoreError};

/// The alarm states Monasca knows.
const STATES: [&str; 3] = ["OK", "ALARM", "UNDETERMINED"];

/// What [`FileStore`] errors name as the source when the contents did not come from a file.
const STRING_SOURCE: &str = "<string>";

/// Notification methods, their attachments and alarm states, from a TOML file.
#[derive(Debug)]
pub struct FileStore {
    /// The file, if the contents came from one; what [`FileStore::reload`] re-reads.
    path: Option<PathBuf>,
    /// The validated contents. Queries clone the `Arc` and release the lock at once; a reload
    /// swaps in a new `Arc`.
    tables: RwLock<Arc<Tables>>,
}

/// The file's contents, indexed for the queries.
#[derive(Debug, Default)]
struct Tables {
    /// `notification_method` by id, types already lower case.
    methods: HashMap<String, NotificationMethod>,
    /// `alarm_action`: (definition id, upper-case state) -> method ids, in file order.
    actions: HashMap<(String, String), Vec<String>>,
    /// `alarm`: id -> upper-case state.
    alarms: HashMap<String, String>,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    notification_method: Vec<RawMethod>,
    #[serde(default)]
    alarm_action: Vec<RawAction>,
    #[serde(default)]
    alarm: Vec<RawAlarm>,
}

/// One `[[notification_method]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    kind: String,
    address: String,
    #[serde(default)]
    period: i64,
}

/// One `[[alarm_action]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    alarm_definition_id: String,
    alarm_state: String,
    action_id: String,
}

/// One `[[alarm]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlarm {
    id: String,
    state: String,
}

/// `state` in upper case if it is a Monasca alarm state.
fn check_state(state: &str) -> Option<String> {
    let upper = state.to_uppercase();
    STATES.contains(&upper.as_str()).then_some(upper)
}

impl Tables {
    /// Parses and validates `text`; errors are plain messages naming the entry.
    fn parse(text: &str) -> Result<Tables, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        let mut tables = Tables::default();

        for (i, m) in raw.notification_method.into_iter().enumerate() {
            let entry = format!("[[notification_method]] #{}", i + 1);
            if m.id.trim().is_empty() {
                return Err(format!("{entry}: id is empty"));
            }
            let entry = format!("{entry} (id \"{}\")", m.id);
            if m.kind.trim().is_empty() {
                return Err(format!("{entry}: type is empty"));
            }
            if m.address.trim().is_empty() {
                return Err(format!("{entry}: address is empty"));
            }
            if m.period < 0 {
                return Err(format!("{entry}: period {} is negative", m.period));
            }
            if tables.methods.contains_key(&m.id) {
                return Err(format!("{entry}: duplicate id, an earlier entry has it"));
            }
            let method = NotificationMethod {
                id: m.id.clone(),
                name: m.name,
                kind: m.kind.trim().to_lowercase(),
                address: m.address,
                period: m.period,
            };
            tables.methods.insert(m.id, method);
        }

        let mut seen = HashSet::new();
        for (i, a) in raw.alarm_action.into_iter().enumerate() {
            let entry = format!(
                "[[alarm_action]] #{} (alarm_definition_id \"{}\", alarm_state \"{}\", \
                 action_id \"{}\")",
                i + 1,
                a.alarm_definition_id,
                a.alarm_state,
                a.action_id
            );
            if a.alarm_definition_id.trim().is_empty() {
                return Err(format!("{entry}: alarm_definition_id is empty"));
            }
            let state = check_state(&a.alarm_state)
                .ok_or_else(|| format!("{entry}: alarm_state must be OK, ALARM or UNDETERMINED"))?;
            if !tables.methods.contains_key(&a.action_id) {
                return Err(format!(
                    "{entry}: action_id names no [[notification_method]]"
                ));
            }
            if !seen.insert((
                a.alarm_definition_id.clone(),
                state.clone(),
                a.action_id.clone(),
            )) {
                return Err(format!("{entry}: listed twice"));
            }
            tables
                .actions
                .entry((a.alarm_definition_id, state))
                .or_default()
                .push(a.action_id);
        }

        for (i, a) in raw.alarm.into_iter().enumerate() {
            let entry = format!("[[alarm]] #{} (id \"{}\")", i + 1, a.id);
            if a.id.trim().is_empty() {
                return Err(format!("{entry}: id is empty"));
            }
            let state = check_state(&a.state).ok_or_else(|| {
                format!(
                    "{entry}: state \"{}\" must be OK, ALARM or UNDETERMINED",
                    a.state
                )
            })?;
            if tables.alarms.insert(a.id, state).is_some() {
                return Err(format!("{entry}: duplicate id, an earlier entry has it"));
            }
        }
        Ok(tables)
    }
}

impl FileStore {
    /// Reads and validates the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<FileStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let tables = read(&path)?;
        Ok(FileStore {
            path: Some(path),
            tables: RwLock::new(Arc::new(tables)),
        })
    }

    /// Re-reads the file. If the new contents are invalid (or the file cannot be read), the
    /// store keeps answering from the old ones and the error says why. A store built from a
    /// string has no file: [`StoreError::Config`].
    pub fn reload(&self) -> Result<(), StoreError> {
        let path = self.path.as_ref().ok_or_else(|| {
            StoreError::Config("this notification methods store was not loaded from a file".into())
        })?;
        let tables = read(path)?;
        *self.tables.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tables);
        Ok(())
    }

    /// The file this store was loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The current contents.
    fn tables(&self) -> Arc<Tables> {
        Arc::clone(&self.tables.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl FromStr for FileStore {
    type Err = StoreError;

    /// A store from TOML text in the file's format (for tests); errors name it `<string>`.
    fn from_str(text: &str) -> Result<FileStore, StoreError> {
        let tables = Tables::parse(text).map_err(|message| StoreError::File {
            path: STRING_SOURCE.into(),
            message,
        })?;
        Ok(FileStore {
            path: None,
            tables: RwLock::new(Arc::new(tables)),
        })
    }
}

/// Reads and validates the file at `path`.
fn read(path: &Path) -> Result<Tables, StoreError> {
    let error = |message: String| StoreError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read: {e}")))?;
    Tables::parse(&text).map_err(error)
}

#[async_trait::async_trait]
impl MethodStore for FileStore {
    async fn methods_for(
        &self,
        alarm_definition_id: &str,
        state: &str,
    ) -> Result<Vec<NotificationMethod>, StoreError> {
        let tables = self.tables();
        let key = (alarm_definition_id.to_owned(), state.to_uppercase());
        Ok(tables
            .actions
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| tables.methods.get(id).cloned())
            .collect())
    }

    async fn method(&self, id: &str) -> Result<Option<NotificationMethod>, StoreError> {
        Ok(self.tables().methods.get(id).cloned())
    }

    /// The state the file lists for the alarm; for an alarm it does not list, `assumed` (the
    /// file cannot know live states).
    async fn alarm_state(
        &self,
        alarm_id: &str,
        assumed: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(Some(
            self.tables()
                .alarms
                .get(alarm_id)
                .cloned()
                .unwrap_or_else(|| assumed.to_owned()),
        ))
    }

    /// Nothing to do: the file has no type table.
    async fn ensure_method_types(&self, _types: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[notification_method]]
id = "00000000-0000-0000-0000-000000000001"
name = "ops webhook"
type = "WEBHOOK"        # any case
address = "http://127.0.0.1:8080/"
period = 0             # optional, default 0

[[notification_method]]
id = "00000000-0000-0000-0000-000000000002"
name = "ops mail"
type = "Email"
address = "ops@example.com"

[[notification_method]]
id = "00000000-0000-0000-0000-000000000003"
type = "pagerduty"
address = "service-key"
period = 60

[[alarm_action]]
alarm_definition_id = "def-1"
alarm_state = "ALARM"   # OK, ALARM or UNDETERMINED
action_id = "00000000-0000-0000-0000-000000000001"

[[alarm_action]]
alarm_definition_id = "def-1"
alarm_state = "ALARM"
action_id = "00000000-0000-0000-0000-000000000003"

[[alarm_action]]
alarm_definition_id = "def-1"
alarm_state = "ok"
action_id = "00000000-0000-0000-0000-000000000002"

[[alarm_action]]
alarm_definition_id = "def-2"
alarm_state = "UNDETERMINED"
action_id = "00000000-0000-0000-0000-000000000001"

[[alarm]]               # optional: current alarm states for periodic notifications
id = "alarm-1"
state = "ALARM"
"#;

    const M1: &str = "00000000-0000-0000-0000-000000000001";
    const M2: &str = "00000000-0000-0000-0000-000000000002";
    const M3: &str = "00000000-0000-0000-0000-000000000003";

    fn ids(methods: Vec<NotificationMethod>) -> Vec<String> {
        methods.into_iter().map(|m| m.id).collect()
    }

    /// The message of a [`StoreError::File`] for `text`.
    fn rejection(text: &str) -> String {
        match text.parse::<FileStore>() {
            Err(StoreError::File { path, message }) => {
                assert_eq!(path, "<string>");
                message
            }
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn answers_from_the_example() {
        let store: FileStore = EXAMPLE.parse().unwrap();

        let alarm = store.methods_for("def-1", "ALARM").await.unwrap();
        assert_eq!(
            alarm[0],
            NotificationMethod {
                id: M1.into(),
                name: "ops webhook".into(),
                kind: "webhook".into(),
                address: "http://127.0.0.1:8080/".into(),
                period: 0,
            }
        );
        assert_eq!(
            alarm[1],
            NotificationMethod {
                id: M3.into(),
                name: String::new(),
                kind: "pagerduty".into(),
                address: "service-key".into(),
                period: 60,
            }
        );
        assert_eq!(alarm.len(), 2);
        assert_eq!(
            ids(store.methods_for("def-1", "OK").await.unwrap()),
            vec![M2]
        );
        assert!(
            store
                .methods_for("def-1", "UNDETERMINED")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ids(store.methods_for("def-2", "UNDETERMINED").await.unwrap()),
            vec![M1]
        );
        assert!(
            store
                .methods_for("def-3", "ALARM")
                .await
                .unwrap()
                .is_empty()
        );

        let mail = store.method(M2).await.unwrap().unwrap();
        assert_eq!((mail.kind.as_str(), mail.period), ("email", 0));
        assert_eq!(store.method("unknown").await.unwrap(), None);

        assert_eq!(
            store.alarm_state("alarm-1", "OK").await.unwrap().as_deref(),
            Some("ALARM")
        );
        assert_eq!(
            store.alarm_state("alarm-2", "OK").await.unwrap().as_deref(),
            Some("OK")
        );
        store.ensure_method_types(&["SLACK".into()]).await.unwrap();
    }

    #[test]
    fn empty_file_is_an_empty_store() {
        let store: FileStore = "".parse().unwrap();
        assert!(store.tables().methods.is_empty());
    }

    #[test]
    fn rejects_bad_files_naming_the_problem() {
        let unknown_method = r#"
[[notification_method]]
id = "m1"
type = "webhook"
address = "http://a/"

[[alarm_action]]
alarm_definition_id = "d"
alarm_state = "ALARM"
action_id = "m2"
"#;
        let message = rejection(unknown_method);
        assert!(message.contains("[[alarm_action]] #1"), "{message}");
        assert!(message.contains("\"m2\""), "{message}");
        assert!(
            message.contains("names no [[notification_method]]"),
            "{message}"
        );

        let duplicate = r#"
[[notification_method]]
id = "m1"
type = "webhook"
address = "http://a/"

[[notification_method]]
id = "m1"
type = "email"
address = "a@b"
"#;
        let message = rejection(duplicate);
        assert!(
            message.contains("[[notification_method]] #2 (id \"m1\")"),
            "{message}"
        );
        assert!(message.contains("duplicate id"), "{message}");

        let bad_state = r#"
[[notification_method]]
id = "m1"
type = "webhook"
address = "http://a/"

[[alarm_action]]
alarm_definition_id = "d"
alarm_state = "ALARMED"
action_id = "m1"
"#;
        let message = rejection(bad_state);
        assert!(message.contains("[[alarm_action]] #1"), "{message}");
        assert!(message.contains("ALARMED"), "{message}");
        assert!(message.contains("OK, ALARM or UNDETERMINED"), "{message}");

        let bad_alarm = "[[alarm]]\nid = \"a\"\nstate = \"FIRING\"\n";
        let message = rejection(bad_alarm);
        assert!(message.contains("[[alarm]] #1 (id \"a\")"), "{message}");
        assert!(message.contains("FIRING"), "{message}");

        let typo = "[[notification_method]]\nid = \"m1\"\ntype = \"webhook\"\nadress = \"x\"\n";
        let message = rejection(typo);
        assert!(message.contains("adress"), "{message}");

        let missing = "[[notification_method]]\nid = \"m1\"\naddress = \"x\"\n";
        let message = rejection(missing);
        assert!(message.contains("type"), "{message}");

        let negative = "[[notification_method]]\nid = \"m\"\ntype = \"webhook\"\n\
                        address = \"x\"\nperiod = -1\n";
        assert!(rejection(negative).contains("period -1 is negative"));

        let twice = r#"
[[notification_method]]
id = "m1"
type = "webhook"
address = "http://a/"

[[alarm_action]]
alarm_definition_id = "d"
alarm_state = "ALARM"
action_id = "m1"

[[alarm_action]]
alarm_definition_id = "d"
alarm_state = "alarm"
action_id = "m1"
"#;
        assert!(rejection(twice).contains("[[alarm_action]] #2"));

        assert!(rejection("this is not toml").contains("line 1"));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("methods.toml");
        match FileStore::load(&path) {
            Err(StoreError::File { path: p, message }) => {
                assert_eq!(p, path.display().to_string());
                assert!(message.starts_with("cannot read"), "{message}");
            }
            other => panic!("expected a file error, got {other:?}"),
        }
        std::fs::write(&path, "[[alarm]]\nid = \"a\"\nstate = \"nope\"\n").unwrap();
        let text = FileStore::load(&path).unwrap_err().to_string();
        assert!(text.starts_with("notification methods file "), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("[[alarm]] #1"), "{text}");
    }

    #[tokio::test]
    async fn reload_swaps_in_new_contents_and_keeps_old_ones_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("methods.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let store = FileStore::load(&path).unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
        assert_eq!(store.methods_for("def-1", "ALARM").await.unwrap().len(), 2);

        let changed = r#"
[[notification_method]]
id = "m9"
type = "slack"
address = "https://hooks.slack.com/services/x"

[[alarm_action]]
alarm_definition_id = "def-1"
alarm_state = "ALARM"
action_id = "m9"
"#;
        std::fs::write(&path, changed).unwrap();
        store.reload().unwrap();
        assert_eq!(
            ids(store.methods_for("def-1", "ALARM").await.unwrap()),
            vec!["m9"]
        );
        assert_eq!(store.method(M1).await.unwrap(), None);

        std::fs::write(&path, "[[notification_method]]\nid = 1\n").unwrap();
        let err = store.reload().unwrap_err();
        assert!(matches!(err, StoreError::File { .. }), "{err:?}");
        assert_eq!(
            ids(store.methods_for("def-1", "ALARM").await.unwrap()),
            vec!["m9"]
        );

        std::fs::remove_file(&path).unwrap();
        assert!(
            store
                .reload()
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
        assert!(store.method("m9").await.unwrap().is_some());

        let from_string: FileStore = EXAMPLE.parse().unwrap();
        assert!(matches!(from_string.reload(), Err(StoreError::Config(_))));
    }
}
