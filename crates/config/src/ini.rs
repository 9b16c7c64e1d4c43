//! Reading the original's oslo.config INI file (`/etc/monasca/notification.conf`) directly,
//! so that an operator can point the engines at the file they already have.
//!
//! The file is parsed the way oslo.config's `iniparser` does it (see [`parse`]): `[section]`
//! headers (group names lower-cased, `DEFAULT` kept), `key = value` or `key: value`, `#` and
//! `;` comment lines, values wrapped in matching quotes unwrapped, indented lines continuing
//! the previous value, the last assignment of a key winning, oslo's `$name` and
//! `${group.name}` substitutions made (`$$` for a literal `$`; see [`substitute`]). Each value
//! is then typed as the original's option was (a bool in oslo's spellings, an int, a comma
//! list, a `k:v,k:v` dict; see [`KEYS`]) and handed to figment as one more provider,
//! [`IniFile`], in the place the TOML file would take: environment variables still win over
//! it, and [`crate::origin`] names each value's source as `file PATH:LINE`, so a bad value
//! points at its line.
//!
//! Keys that have no meaning here ([`IGNORED`]: oslo.log options, `[zookeeper]`, the
//! original's queue sizes and process counts, ...) are not passed on; each gets one warning
//! saying why. Keys neither mapped nor ignored (a typo, a section we have never heard of) are
//! passed on as text, and [`crate::unknown`] warns about them like about any unknown key.
//!
//! [`FileFormat::of`] decides between this reader and TOML from the file name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::value::{Dict, Empty, Map, Value};
use figment::{Metadata, Profile, Provider, Source};

/// [`Metadata::name`] of the values read from an INI file; how [`crate::origin`] recognises
/// them and asks for their line.
pub(crate) const INI_SOURCE_NAME: &str = "oslo INI file";

/// The format a configuration file is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// This service's own format (`etc/notification.toml`).
    Toml,
    /// The original's oslo.config INI format (`notification.conf`).
    Ini,
}

impl FileFormat {
    /// The format of `path`, from its name: the last of its dot-separated name parts that is
    /// `toml` (TOML) or `conf`, `ini` or `cfg` (INI) decides, so that `notification.conf`,
    /// `notification.conf.sample` and `notification.ini.bak` are INI and `notification.toml`
    /// is TOML. A name with none of them is read as TOML, this service's own format.
    pub fn of(path: &Path) -> FileFormat {
        Self::by_name(path).unwrap_or(FileFormat::Toml)
    }

    /// The format the name of `path` says, if it says one.
    fn by_name(path: &Path) -> Option<FileFormat> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let parts: Vec<&str> = name.split('.').skip(1).collect();
        parts.into_iter().rev().find_map(|part| match part {
            "toml" => Some(FileFormat::Toml),
            "conf" | "ini" | "cfg" => Some(FileFormat::Ini),
            _ => None,
        })
    }

    /// Why [`FileFormat::of`] chose this format for `path`, for `check-config`.
    pub fn describe(path: &Path) -> String {
        match Self::by_name(path) {
            Some(format) => format!("{format} (from the file name)"),
            None => format!(
                "{} (the file name has no .toml, .conf or .ini part; TOML is assumed)",
                FileFormat::Toml
            ),
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Toml => "TOML",
            FileFormat::Ini => "oslo INI, the original's notification.conf format,",
        })
    }
}

/// One `key = value` of the file, after continuation lines were joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The group: lower case, or `DEFAULT`.
    pub(crate) section: String,
    /// The option name as written.
    pub(crate) key: String,
    /// The value, continuation lines joined with `\n`, surrounding quotes removed.
    pub(crate) value: String,
    /// 1-based line of the key.
    pub(crate) line: usize,
}

/// A line the parser cannot read, as oslo.config would refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// 1-based line number.
    pub(crate) line: usize,
    /// What is wrong with it.
    pub(crate) message: String,
}

/// Parses oslo.config INI text into its assignments, in file order.
///
/// Follows `oslo_config.iniparser.BaseParser.parse`: a blank line ends a multi-line value; a
/// line starting with a space or tab continues the previous value; `#` and `;` start comment
/// lines (not inline comments: `a = b # c` is the value `b # c`, as in oslo); the key ends at
/// the first `=` or `:`, whichever comes first.
pub(crate) fn parse(text: &str) -> Result<Vec<Assignment>, SyntaxError> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    // The assignment being built: continuation lines may still follow.
    let mut pending: Option<Assignment> = None;
    let error = |line: usize, message: &str| SyntaxError {
        line,
        message: message.to_owned(),
    };
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            out.extend(pending.take());
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match pending.as_mut() {
                Some(assignment) => {
                    assignment.value.push('\n');
                    assignment.value.push_str(line.trim_start());
                }
                None => {
                    return Err(error(
                        number,
                        "an indented line continues a value, but no key comes before it",
                    ));
                }
            }
            continue;
        }
        out.extend(pending.take());
        if let Some(header) = line.strip_prefix('[') {
            let name = header.strip_suffix(']').ok_or_else(|| {
                error(number, "a section header must end with `]`, e.g. `[kafka]`")
            })?;
            if name.is_empty() {
                return Err(error(number, "a section header needs a name"));
            }
            section = Some(if name == "DEFAULT" {
                name.to_owned()
            } else {
                name.to_lowercase()
            });
        } else if line.starts_with(['#', ';']) {
            continue;
        } else {
            let split_at = match (line.find('='), line.find(':')) {
                (Some(eq), Some(colon)) => eq.min(colon),
                (Some(at), None) | (None, Some(at)) => at,
                (None, None) => {
                    return Err(error(
                        number,
                        "expected `key = value`, a `[section]` header or a comment",
                    ));
                }
            };
            let key = line[..split_at].trim();
            if key.is_empty() {
                return Err(error(number, "the key before `=` is empty"));
            }
            let Some(section) = section.clone() else {
                return Err(error(
                    number,
                    "a key before any `[section]` header \
                     (oslo puts global options under `[DEFAULT]`)",
                ));
            };
            out.push(Assignment {
                section,
                key: key.to_owned(),
                value: unquote(line[split_at + 1..].trim()).to_owned(),
                line: number,
            });
            // The assignment just pushed is the one continuation lines extend.
            pending = out.pop();
        }
    }
    out.extend(pending);
    Ok(out)
}

/// `value` without one pair of matching surrounding quotes, as oslo strips them.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// How the original typed an option, and so how its text becomes a value here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `StrOpt`; empty stays the empty string.
    Str,
    /// `StrOpt` with no default (a password, a path); empty means not set.
    OptStr,
    /// `IntOpt`; empty means the default.
    Int,
    /// `IntOpt` where empty means "none" (`[alarm_processor] ttl`: no limit).
    OptInt,
    /// A number of seconds that may be fractional (new keys only); empty means the default.
    Float,
    /// `BoolOpt`: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, any case; empty means the
    /// default.
    Bool,
    /// `ListOpt`: comma-separated items.
    List,
    /// `DictOpt`: `key:value,key:value`.
    Dict,
}

/// Every key this service reads, with how the original typed it (or, for keys that are new
/// here, how TOML would). A key of the file found here lands at the same `[section] key` of
/// the configuration.
pub(crate) const KEYS: &[(&str, &str, Kind)] = {
    use Kind::*;
    &[
        ("kafka", "url", List),
        ("kafka", "group", Str),
        ("kafka", "alarm_topic", Str),
        ("kafka", "notification_topic", Str),
        ("kafka", "notification_retry_topic", Str),
        ("kafka", "periodic", Dict),
        ("kafka", "dead_letter_topic", Str),
        ("kafka", "client_properties", Dict),
        ("mysql", "host", Str),
        ("mysql", "port", Int),
        ("mysql", "user", Str),
        ("mysql", "passwd", Str),
        ("mysql", "db", Str),
        ("mysql", "ssl", Dict),
        ("database", "repo_driver", Str),
        ("database", "file", OptStr),
        ("database", "cache_ttl", Float),
        ("database", "cache_capacity", Int),
        ("notification_types", "enabled", List),
        ("alarm_processor", "ttl", OptInt),
        ("retry_engine", "interval", Int),
        ("retry_engine", "max_attempts", Int),
        ("engine", "max_in_flight", Int),
        ("engine", "max_in_flight_total", Int),
        ("engine", "max_sends_per_destination", Int),
        ("engine", "destination_failure_threshold", Int),
        ("engine", "destination_cooldown", Int),
        ("engine", "destination_wait_timeout", Float),
        ("engine", "commit_interval", Float),
        ("engine", "worker_threads", Int),
        ("engine", "shutdown_timeout", Int),
        ("engine", "kafka_unreachable_timeout", Int),
        ("destinations", "deny", List),
        ("destinations", "allow", List),
        ("admin", "notification_engine_listen", Str),
        ("admin", "retry_engine_listen", Str),
        ("logging", "level", Str),
        ("statsd", "enable", Bool),
        ("statsd", "host", Str),
        ("statsd", "port", Int),
        ("keystone", "auth_required", Bool),
        ("keystone", "auth_url", OptStr),
        ("keystone", "username", OptStr),
        ("keystone", "password", OptStr),
        ("keystone", "project_name", OptStr),
        ("keystone", "user_domain_name", OptStr),
        ("keystone", "project_domain_name", OptStr),
        ("webhook_notifier", "timeout", Int),
        ("email_notifier", "server", Str),
        ("email_notifier", "port", Int),
        ("email_notifier", "timeout", Int),
        ("email_notifier", "from_addr", OptStr),
        ("email_notifier", "user", OptStr),
        ("email_notifier", "password", OptStr),
        ("email_notifier", "grafana_url", OptStr),
        ("email_notifier", "tls", Str),
        ("pagerduty_notifier", "url", Str),
        ("pagerduty_notifier", "timeout", Int),
        ("slack_notifier", "timeout", Int),
        ("slack_notifier", "insecure", Bool),
        ("slack_notifier", "ca_certs", OptStr),
        ("slack_notifier", "proxy", OptStr),
        ("slack_notifier", "message_template", OptStr),
        ("hipchat_notifier", "timeout", Int),
        ("hipchat_notifier", "insecure", Bool),
        ("hipchat_notifier", "ca_certs", OptStr),
        ("hipchat_notifier", "proxy", OptStr),
        ("jira_notifier", "timeout", Int),
        ("jira_notifier", "user", OptStr),
        ("jira_notifier", "password", OptStr),
        ("jira_notifier", "custom_formatter", OptStr),
        ("jira_notifier", "proxy", OptStr),
        ("pagerduty_v2_notifier", "url", Str),
        ("pagerduty_v2_notifier", "timeout", Int),
        ("pagerduty_v2_notifier", "insecure", Bool),
        ("pagerduty_v2_notifier", "ca_certs", OptStr),
        ("pagerduty_v2_notifier", "proxy", OptStr),
        ("teams_notifier", "timeout", Int),
        ("teams_notifier", "insecure", Bool),
        ("teams_notifier", "ca_certs", OptStr),
        ("teams_notifier", "proxy", OptStr),
        ("opsgenie_notifier", "url", Str),
        ("opsgenie_notifier", "api_key", OptStr),
        ("opsgenie_notifier", "timeout", Int),
        ("opsgenie_notifier", "insecure", Bool),
        ("opsgenie_notifier", "ca_certs", OptStr),
        ("opsgenie_notifier", "proxy", OptStr),
    ]
};

/// Why `[DEFAULT]` options are ignored: the original's global options are oslo.log's.
const LOGGING_REASON: &str = "oslo.log option; logging here goes to stderr, its level set with \
     RUST_LOG and its format with --log-format";

/// The original's keys that mean nothing here, with the reason given in the warning. `None`
/// as the key stands for every key of the section.
pub(crate) const IGNORED: &[(&str, Option<&str>, &str)] = &[
    (
        "kafka",
        Some("max_offset_lag"),
        "this engine never skips messages to catch up, so there is no lag to bound",
    ),
    (
        "kafka",
        Some("legacy_kafka_client_enabled"),
        "there is one Kafka client here (librdkafka); its options go in [kafka] client_properties",
    ),
    (
        "zookeeper",
        None,
        "ZooKeeper is not used: committed offsets are kept by Kafka for the consumer group",
    ),
    (
        "queues",
        None,
        "there are no internal queues; work in flight is bounded by [engine] max_in_flight",
    ),
    (
        "alarm_processor",
        Some("number"),
        "there are no processor processes; concurrency is bounded by [engine] max_in_flight",
    ),
    (
        "notification_processor",
        None,
        "there are no processor processes; concurrency is bounded by [engine] max_in_flight",
    ),
    (
        "postgresql",
        None,
        "PostgreSQL is not supported; notification methods are read from MySQL or a file",
    ),
    (
        "orm",
        None,
        "the ORM repository is not supported; notification methods are read from MySQL or a file",
    ),
];

/// Why `[section] key` is ignored, if it is.
fn ignored(section: &str, key: &str) -> Option<&'static str> {
    if section == "DEFAULT" {
        return Some(LOGGING_REASON);
    }
    IGNORED
        .iter()
        .find(|(s, k, _)| *s == section && k.is_none_or(|k| k == key))
        .map(|(_, _, reason)| *reason)
}

/// How `[section] key` is typed, if it is a key this service reads.
fn kind(section: &str, key: &str) -> Option<Kind> {
    KEYS.iter()
        .find(|(s, k, _)| *s == section && *k == key)
        .map(|(_, _, kind)| *kind)
}

/// An oslo boolean, or `None` if the text is not one.
fn oslo_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Some(true),
        "false" | "0" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// The value `text` becomes for a key of `kind`; `None` means "leave the key unset" (an empty
/// number or boolean: the default applies, as oslo gave `None`). Text that does not read as
/// its kind is passed on as text, so that the extraction reports it with its line.
fn typed(kind: Kind, text: &str) -> Option<Value> {
    let trimmed = text.trim();
    let as_text = || Value::from(text);
    match kind {
        Kind::Str => Some(as_text()),
        Kind::OptStr | Kind::OptInt if trimmed.is_empty() => Some(Value::from(Empty::None)),
        Kind::OptStr => Some(as_text()),
        Kind::Int | Kind::Float | Kind::Bool if trimmed.is_empty() => None,
        Kind::Int | Kind::OptInt => Some(
            trimmed
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| as_text()),
        ),
        Kind::Float => Some(
            trimmed
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or_else(|_| as_text()),
        ),
        Kind::Bool => Some(oslo_bool(trimmed).map(Value::from).unwrap_or_else(as_text)),
        Kind::List => Some(Value::from(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(Value::from)
                .collect::<Vec<_>>(),
        )),
        Kind::Dict => {
            let pairs: Option<Dict> = trimmed
                .split(',')
                .map(str::trim)
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once(':')?;
                    Some((k.trim().to_owned(), Value::from(v.trim())))
                })
                .collect();
            // A malformed pair: the text goes on, for `de::string_map` to name the pair.
            Some(pairs.map(Value::from).unwrap_or_else(as_text))
        }
    }
}

/// A parsed INI file as a figment provider, with the warnings about the keys it ignored.
pub(crate) struct IniFile {
    /// The file, for messages.
    path: PathBuf,
    /// The values passed on, by section and key.
    values: Dict,
    /// The line of each key passed on, by its path (`["kafka", "url"]`).
    lines: Arc<BTreeMap<Vec<String>, usize>>,
    /// One line per key that was ignored, naming it, its line and why.
    pub(crate) warnings: Vec<String>,
}

impl IniFile {
    /// Reads and parses `path`; the error is one problem line naming the file and line.
    pub(crate) fn read(path: &Path) -> Result<IniFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("configuration file {}: {e}", path.display()))?;
        let assignments = parse(&text).map_err(|e| {
            format!(
                "configuration file {}:{}: {} (read as oslo INI because of its name)",
                path.display(),
                e.line,
                e.message
            )
        })?;
        Ok(IniFile::from_assignments(path, assignments))
    }

    /// Types and places each assignment; the last one of a key wins, as in oslo.
    fn from_assignments(path: &Path, assignments: Vec<Assignment>) -> IniFile {
        let raw: Raw = assignments
            .iter()
            .map(|a| ((a.section.clone(), a.key.clone()), a.value.clone()))
            .collect();
        let mut values = Dict::new();
        let mut lines = BTreeMap::new();
        let mut ignored_at: BTreeMap<(String, String), (usize, &'static str)> = BTreeMap::new();
        let mut unresolved_at: BTreeMap<(String, String), (usize, Vec<String>)> = BTreeMap::new();
        for a in assignments {
            if let Some(reason) = ignored(&a.section, &a.key) {
                // One warning per key, at its last assignment.
                ignored_at.insert((a.section, a.key), (a.line, reason));
                continue;
            }
            let mut unresolved = Vec::new();
            let text = substitute(&a.value, &a.section, &raw, 0, &mut unresolved);
            let at = (a.section.clone(), a.key.clone());
            if unresolved.is_empty() {
                unresolved_at.remove(&at);
            } else {
                unresolved_at.insert(at, (a.line, unresolved));
            }
            let value = match kind(&a.section, &a.key) {
                Some(kind) => typed(kind, &text),
                // Unknown here: passed on as text for `crate::unknown` to warn about.
                None => Some(Value::from(text.as_str())),
            };
            let section = values
                .entry(a.section.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, section) = section {
                match value {
                    Some(value) => {
                        section.insert(a.key.clone(), value);
                    }
                    None => {
                        section.remove(&a.key);
                    }
                }
            }
            lines.insert(vec![a.section, a.key], a.line);
        }
        let shown = path.display();
        let ignored = ignored_at
            .into_iter()
            .map(|((section, key), (line, reason))| {
                format!("[{section}] {key} (from file {shown}:{line}): ignored: {reason}")
            });
        // The reference only, never the value: it may be a password.
        let unresolved = unresolved_at
            .into_iter()
            .map(|((section, key), (line, references))| {
                format!(
                    "[{section}] {key} (from file {shown}:{line}): {}: no such key in this \
                     file, so the value keeps the reference as written (oslo would have put \
                     in that option's value; write $$ for a literal $)",
                    references.join(", ")
                )
            });
        let warnings = ignored.chain(unresolved).collect();
        IniFile {
            path: path.to_owned(),
            values,
            lines: Arc::new(lines),
            warnings,
        }
    }
}

/// The text of every key of the file by section and key, the last assignment winning: what
/// a `$name` reference reads.
type Raw = BTreeMap<(String, String), String>;

/// How deep references to references are followed; deeper (a loop) is left as written.
const MAX_SUBSTITUTION_DEPTH: usize = 8;

/// `value` (of a key of `section`) with oslo.config's substitutions made: `$$` and `\$` are a
/// literal `$`; `$name` and `${name}` are the value of `name` in the same section, or else in
/// `[DEFAULT]`; `${group.name}` (or `$group.name`) the value of `name` in `[group]`. A
/// reference to a key the file does not set is kept as written (oslo's `safe_substitute`
/// keeps unknown ones too; for options it knows it would have used their default, which a
/// reader of the file alone cannot know) and pushed to `unresolved`.
fn substitute(
    value: &str,
    section: &str,
    raw: &Raw,
    depth: usize,
    unresolved: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find(['$', '\\']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$").or_else(|| tail.strip_prefix("\\$")) {
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix('\\') {
            out.push('\\');
            rest = after;
            continue;
        }
        let body = &tail[1..];
        let (name, written, after) = if let Some(braced) = body.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &tail[..end + 3], &braced[end + 1..]),
                None => ("", "$", body),
            }
        } else {
            // string.Template's identifier, with the dots oslo adds for `group.name`.
            let len = body
                .char_indices()
                .take_while(|&(i, c)| {
                    c.is_ascii_alphabetic()
                        || c == '_'
                        || (i > 0 && (c.is_ascii_digit() || c == '.'))
                })
                .count();
            (&body[..len], &tail[..len + 1], &body[len..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        let target = match name.split_once('.') {
            Some((group, key)) => {
                let group = group.to_lowercase();
                raw.get(&(group.clone(), key.to_owned()))
                    .map(|v| (group, v))
            }
            None => [section, "DEFAULT"].into_iter().find_map(|s| {
                raw.get(&(s.to_owned(), name.to_owned()))
                    .map(|v| (s.to_owned(), v))
            }),
        };
        match target {
            Some((group, text)) if depth < MAX_SUBSTITUTION_DEPTH => {
                out.push_str(&substitute(text, &group, raw, depth + 1, unresolved));
            }
            _ => {
                out.push_str(written);
                unresolved.push(written.to_owned());
            }
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

impl Provider for IniFile {
    fn metadata(&self) -> Metadata {
        let lines = self.lines.clone();
        let shown = self.path.display().to_string();
        Metadata::from(INI_SOURCE_NAME, Source::File(self.path.clone())).interpolater(
            move |_: &Profile, keys: &[&str]| {
                let path: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
                // A dict entry (`[kafka] periodic.60`) is on the line of its key.
                match (1..=path.len()).rev().find_map(|n| lines.get(&path[..n])) {
                    Some(line) => format!("{shown}:{line}"),
                    None => shown.clone(),
                }
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignments(text: &str) -> Vec<(String, String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|a| (a.section, a.key, a.value, a.line))
            .collect()
    }

    fn a(section: &str, key: &str, value: &str, line: usize) -> (String, String, String, usize) {
        (section.into(), key.into(), value.into(), line)
    }

    #[test]
    fn oslo_syntax() {
        let text = "\
# a comment
; another
[DEFAULT]
debug = True

[Kafka]
url = k1:9092,
    k2:9092
group: notifiers
alarm_topic = \"quoted\"
notification_topic = 'single'
notification_retry_topic = a = b # not a comment
\tindented = continuation of the line above
[mysql]
passwd =
ssl = ca:/etc/ca.pem
";
        assert_eq!(
            assignments(text),
            vec![
                a("DEFAULT", "debug", "True", 4),
                a("kafka", "url", "k1:9092,\nk2:9092", 7),
                a("kafka", "group", "notifiers", 9),
                a("kafka", "alarm_topic", "quoted", 10),
                a("kafka", "notification_topic", "single", 11),
                a(
                    "kafka",
                    "notification_retry_topic",
                    "a = b # not a comment\nindented = continuation of the line above",
                    12
                ),
                a("mysql", "passwd", "", 15),
                a("mysql", "ssl", "ca:/etc/ca.pem", 16),
            ]
        );
    }

    #[test]
    fn blank_line_ends_a_value_and_comment_lines_flush_it() {
        let text = "[s]\na = 1\n  2\n\nb = 3\n# c\n  4\n";
        // The indented `4` follows a comment line, so nothing is pending: an error, as oslo.
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, 7);
        let text = "[s]\na = 1\n  2\n\nb = 3\n";
        assert_eq!(
            assignments(text),
            vec![a("s", "a", "1\n2", 2), a("s", "b", "3", 5)]
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line, words) in [
            ("[kafka\nurl = x\n", 1, "end with `]`"),
            ("[]\n", 1, "needs a name"),
            ("url = x\n", 1, "before any `[section]`"),
            ("[kafka]\n\nurl x\n", 3, "expected `key = value`"),
            ("[kafka]\n = x\n", 2, "indented line"),
            ("[kafka]\n= x\n", 2, "key before `=` is empty"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err:?}");
            assert!(err.message.contains(words), "{text:?}: {err:?}");
        }
    }

    #[test]
    fn values_typed_as_the_original_typed_them() {
        assert_eq!(typed(Kind::Bool, "True"), Some(Value::from(true)));
        assert_eq!(typed(Kind::Bool, " yes"), Some(Value::from(true)));
        assert_eq!(typed(Kind::Bool, "OFF"), Some(Value::from(false)));
        assert_eq!(typed(Kind::Bool, "0"), Some(Value::from(false)));
        assert_eq!(typed(Kind::Bool, "maybe"), Some(Value::from("maybe")));
        assert_eq!(typed(Kind::Bool, ""), None);
        assert_eq!(typed(Kind::Int, " 3307 "), Some(Value::from(3307i64)));
        assert_eq!(typed(Kind::Int, "abc"), Some(Value::from("abc")));
        assert_eq!(typed(Kind::Int, ""), None);
        assert_eq!(typed(Kind::OptInt, ""), Some(Value::from(Empty::None)));
        assert_eq!(typed(Kind::Float, "0.5"), Some(Value::from(0.5f64)));
        assert_eq!(typed(Kind::OptStr, ""), Some(Value::from(Empty::None)));
        assert_eq!(typed(Kind::Str, ""), Some(Value::from("")));
        assert_eq!(
            typed(Kind::List, "email, webhook,\nslack,"),
            Some(Value::from(vec![
                Value::from("email"),
                Value::from("webhook"),
                Value::from("slack")
            ]))
        );
        let dict = typed(Kind::Dict, "60:sixty, 120 : two").unwrap();
        assert_eq!(
            dict.find_ref("120").and_then(Value::as_str),
            Some("two"),
            "{dict:?}"
        );
        assert_eq!(typed(Kind::Dict, "60"), Some(Value::from("60")));
    }

    #[test]
    fn oslo_substitutions() {
        let text = "[DEFAULT]\nregion = eu\n[kafka]\nhost = k1\nurl = $host:9092,${host}:9093\n\
                    group = notify-$region\n[mysql]\nhost = ${kafka.host}\npasswd = pa$$word\\$1\n\
                    db = $nothing-${kafka.none}-$-$1\nuser = $loop\nloop = $user\n";
        let assignments = parse(text).unwrap();
        let raw: Raw = assignments
            .iter()
            .map(|a| ((a.section.clone(), a.key.clone()), a.value.clone()))
            .collect();
        let value = |section: &str, key: &str| {
            let mut unresolved = Vec::new();
            let text = substitute(
                &raw[&(section.to_owned(), key.to_owned())],
                section,
                &raw,
                0,
                &mut unresolved,
            );
            (text, unresolved)
        };
        assert_eq!(value("kafka", "url").0, "k1:9092,k1:9093");
        assert_eq!(value("kafka", "group").0, "notify-eu");
        assert_eq!(value("mysql", "host").0, "k1");
        assert_eq!(value("mysql", "passwd"), ("pa$word$1".into(), vec![]));
        assert_eq!(
            value("mysql", "db"),
            (
                "$nothing-${kafka.none}-$-$1".into(),
                vec!["$nothing".to_string(), "${kafka.none}".to_string()]
            )
        );
        // A loop ends, kept as written at the bottom.
        assert!(!value("mysql", "user").1.is_empty());

        let file = IniFile::from_assignments(Path::new("/x.conf"), assignments);
        let root = Value::from(file.values.clone());
        assert_eq!(
            root.find_ref("mysql.passwd").and_then(Value::as_str),
            Some("pa$word$1")
        );
        let warned: Vec<&String> = file
            .warnings
            .iter()
            .filter(|w| {
                w.starts_with(
                    "[mysql] db (from file /x.conf:10): $nothing, ${kafka.none}: no such key",
                )
            })
            .collect();
        assert_eq!(warned.len(), 1, "{:#?}", file.warnings);
    }

    #[test]
    fn format_from_the_file_name() {
        let of = |name: &str| FileFormat::of(Path::new(name));
        assert_eq!(of("/etc/monasca/notification.conf"), FileFormat::Ini);
        assert_eq!(of("notification.INI"), FileFormat::Ini);
        assert_eq!(of("notification.conf.sample"), FileFormat::Ini);
        assert_eq!(of("notification.cfg"), FileFormat::Ini);
        assert_eq!(of("notification.toml"), FileFormat::Toml);
        assert_eq!(of("notification.conf.toml"), FileFormat::Toml);
        assert_eq!(of("notification"), FileFormat::Toml);
        assert_eq!(of("conf"), FileFormat::Toml);
        assert!(FileFormat::describe(Path::new("x.yaml")).contains("TOML is assumed"));
        assert!(FileFormat::describe(Path::new("x.conf")).contains("oslo INI"));
    }

    /// Every key of [`crate::Config`] is in [`KEYS`], so an INI file can set all of them, and
    /// [`KEYS`] names no key that does not exist.
    #[test]
    fn keys_cover_the_configuration_exactly() {
        let known = serde_json::to_value(crate::Config::default()).unwrap();
        let mut fields = Vec::new();
        for (section, keys) in known.as_object().unwrap() {
            for key in keys.as_object().unwrap().keys() {
                fields.push((section.clone(), key.clone()));
            }
        }
        let mut table: Vec<(String, String)> = KEYS
            .iter()
            .map(|(s, k, _)| (s.to_string(), k.to_string()))
            .collect();
        fields.sort();
        table.sort();
        // max_offset_lag is a field (TOML files may carry it) but ignored with a warning.
        fields.retain(|(s, k)| ignored(s, k).is_none());
        assert_eq!(fields, table);
    }

    #[test]
    fn ignored_keys_warn_once_with_their_line_and_are_not_passed_on() {
        let text = "[DEFAULT]\ndebug = True\n[zookeeper]\nurl = zk:2181\nurl = zk2:2181\n\
                    [kafka]\nmax_offset_lag = 600\ngroup = g\n";
        let file = IniFile::from_assignments(Path::new("/x.conf"), parse(text).unwrap());
        assert_eq!(
            file.warnings,
            vec![
                format!("[DEFAULT] debug (from file /x.conf:2): ignored: {LOGGING_REASON}"),
                "[kafka] max_offset_lag (from file /x.conf:7): ignored: this engine never \
                 skips messages to catch up, so there is no lag to bound"
                    .to_string(),
                "[zookeeper] url (from file /x.conf:5): ignored: ZooKeeper is not used: \
                 committed offsets are kept by Kafka for the consumer group"
                    .to_string(),
            ]
        );
        let root = Value::from(file.values.clone());
        assert!(root.find_ref("zookeeper").is_none());
        assert!(root.find_ref("DEFAULT").is_none());
        assert!(root.find_ref("kafka.max_offset_lag").is_none());
        assert_eq!(
            root.find_ref("kafka.group").and_then(Value::as_str),
            Some("g")
        );
        let md = file.metadata();
        assert_eq!(
            md.interpolate(&Profile::Default, &["kafka", "group"]),
            "/x.conf:8"
        );
    }
}
