//! `jira`: opens (or reopens) one Jira issue per alarm and comments on it at each transition.
//!
//! The method's address is `https://jira.example/some/path/?project=KEY&component=NAME`
//! (component optional); the Jira base URL is that address without its query, path kept. Every
//! call carries basic auth `[jira_notifier] user`/`password`. One send is:
//!
//! 1. search (`GET rest/api/2/search`) for `project=KEY and reporter='USER' and summary ~
//!    'ALARM_ID'`;
//! 2. none found: create a `Bug` (`POST rest/api/2/issue`); found and Resolved or Closed: apply
//!    its first transition whose name contains "reopen";
//! 3. comment (`POST rest/api/2/issue/KEY/comment`), unless a custom formatter has no
//!    `comments` template.
//!
//! Each step's answer is classified like any HTTP answer, the reason naming the step
//! (`Jira search: https://jira.example/rest/api/2/search?<redacted> answered 401`).
//! `custom_formatter` is a YAML file whose `jira_format` map holds Jinja2 templates for
//! `summary`, `description` and `comments`, loaded and compiled once when the notifier is built.

use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value as JinjaValue};
use std::sync::Arc;

use monasca_config::{DestinationsConfig, JiraNotifierConfig};
use monasca_model::{Notification, python_json::dumps_indent3};
use reqwest::Url;
use serde_json::{Map, Value, json};

use crate::guard::Guard;
use crate::{BuildError, Notifier, SendOutcome, http};

/// The templates of a `custom_formatter` file, by field.
const TEMPLATE_FIELDS: [&str; 3] = ["summary", "description", "comments"];

/// The jira notifier.
pub struct JiraNotifier {
    /// Pooled client with `[jira_notifier] timeout` and `proxy`.
    client: reqwest::Client,
    /// `[destinations]`: the Jira URL is the tenant's.
    guard: Arc<Guard>,
    /// Basic-auth user, also the reporter the search looks for.
    user: String,
    /// Basic-auth password; never shown in a reason.
    password: String,
    /// The compiled `custom_formatter` templates, when one is configured.
    formatter: Option<Environment<'static>>,
}

/// What one send writes into Jira.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JiraFields {
    summary: String,
    description: String,
    /// `None`: no comment is added.
    comment: Option<String>,
}

/// Where the method's address points.
struct JiraTarget {
    /// Base URL ending in `/`, without query.
    base: Url,
    project: String,
    component: Option<String>,
}

impl JiraNotifier {
    /// Builds the client and compiles the `custom_formatter` templates. Missing `user` or
    /// `password`, or a formatter file that cannot be read, parsed or compiled, is an error.
    /// The client is guarded by `[destinations]`.
    pub fn new(
        config: &JiraNotifierConfig,
        destinations: &DestinationsConfig,
    ) -> Result<Self, BuildError> {
        let fail = |message: String| BuildError {
            kind: "jira".into(),
            message,
        };
        let user = config
            .user
            .clone()
            .ok_or_else(|| fail("user is required".into()))?;
        let password = config
            .password
            .clone()
            .ok_or_else(|| fail("password is required".into()))?;
        let formatter = match &config.custom_formatter {
            Some(path) => Some(load_formatter(path).map_err(fail)?),
            None => None,
        };
        let guard = Guard::new(destinations);
        let options = http::HttpOptions {
            timeout: config.timeout,
            proxy: config.proxy.as_deref(),
            guard: Some(guard.clone()),
            ..http::HttpOptions::default()
        };
        Ok(JiraNotifier {
            client: http::client("jira", &options)?,
            guard,
            user,
            password,
            formatter,
        })
    }

    /// The summary, description and comment for a notification.
    fn fields(&self, notification: &Notification) -> Result<JiraFields, String> {
        let alarm = &notification.alarm;
        let default_summary = format!(
            "Monasca alarm for alarm_defintion {} status changed to {} for the alarm_id {}",
            alarm.alarm_name, alarm.new_state, alarm.alarm_id
        );
        let Some(env) = &self.formatter else {
            return Ok(JiraFields {
                summary: default_summary,
                description: "Monasca alarm".into(),
                comment: Some(format!(
                    "{{code}}{}{{code}}",
                    dumps_indent3(&notification.common_body())
                )),
            });
        };
        let context = template_context(notification);
        let render = |name: &str| -> Result<Option<String>, String> {
            match env.get_template(name) {
                Ok(template) => crate::template::render_bounded(
                    &template,
                    minijinja::context! { notification => context.clone() },
                )
                .map(Some)
                .map_err(|e| format!("custom_formatter {name}: {e}")),
                Err(_) => Ok(None),
            }
        };
        Ok(JiraFields {
            summary: render("summary")?.unwrap_or(default_summary),
            description: render("description")?.unwrap_or_else(|| "Monasca alarm".into()),
            comment: render("comments")?,
        })
    }

    fn get(&self, url: Url) -> reqwest::RequestBuilder {
        self.client
            .get(url)
            .basic_auth(&self.user, Some(&self.password))
    }

    fn post(&self, url: Url, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .basic_auth(&self.user, Some(&self.password))
            .json(body)
    }

    /// Sends a request; a non-2xx answer or a transport error becomes the failed outcome.
    /// `Ok` carries the body, parsed as JSON when it is (`Null` otherwise).
    async fn call(
        &self,
        step: &str,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<Value, SendOutcome> {
        let shown = format!("Jira {step}: {}", http::redacted(url));
        let response = request
            .send()
            .await
            .map_err(|e| http::transport_failure(&shown, &e))?;
        let status = response.status();
        let retry_after = http::retry_after(&response);
        match http::classify(&shown, status, retry_after) {
            SendOutcome::Sent => {}
            failed => return Err(failed),
        }
        let text = response
            .text()
            .await
            .map_err(|e| http::transport_failure(&shown, &e))?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn workflow(&self, notification: &Notification) -> Result<(), SendOutcome> {
        let target = parse_target(&notification.method.address)?;
        self.guard.check_url(&target.base)?;
        let fields = self.fields(notification).map_err(SendOutcome::give_up)?;
        let api = |path: &str| {
            target
                .base
                .join(path)
                .map_err(|e| SendOutcome::give_up(format!("Jira URL: {e}")))
        };

        let mut search = api("rest/api/2/search")?;
        let jql = format!(
            "project={} and reporter='{}' and summary ~ '{}'",
            target.project,
            jql_escape(&self.user),
            jql_escape(&notification.alarm.alarm_id)
        );
        search
            .query_pairs_mut()
            .append_pair("jql", &jql)
            .append_pair("fields", "status");
        let found = self
            .call("search", self.get(search.clone()), &search)
            .await?;
        let existing = found
            .get("issues")
            .and_then(Value::as_array)
            .and_then(|issues| issues.first())
            .cloned();

        let key = match existing {
            None => {
                let mut issue = json!({
                    "project": {"key": target.project},
                    "summary": fields.summary,
                    "description": fields.description,
                    "issuetype": {"name": "Bug"},
                });
                if let Some(component) = &target.component {
                    issue["components"] = json!([{ "name": component }]);
                }
                let url = api("rest/api/2/issue")?;
                let created = self
                    .call(
                        "create",
                        self.post(url.clone(), &json!({"fields": issue})),
                        &url,
                    )
                    .await?;
                created
                    .get("key")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| SendOutcome::retry("Jira create: the answer has no issue key"))?
            }
            Some(issue) => {
                let key = issue
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| SendOutcome::retry("Jira search: an issue has no key"))?
                    .to_string();
                let status = issue
                    .pointer("/fields/status/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if status == "resolved" || status == "closed" {
                    self.reopen(&key, &api).await?;
                }
                key
            }
        };

        if let Some(comment) = fields.comment {
            let url = api(&format!("rest/api/2/issue/{key}/comment"))?;
            self.call(
                "comment",
                self.post(url.clone(), &json!({"body": comment})),
                &url,
            )
            .await?;
        }
        Ok(())
    }

    /// Applies the first transition whose name contains "reopen". An issue without one stays
    /// as it is (and is still commented).
    async fn reopen(
        &self,
        key: &str,
        api: &impl Fn(&str) -> Result<Url, SendOutcome>,
    ) -> Result<(), SendOutcome> {
        let url = api(&format!("rest/api/2/issue/{key}/transitions"))?;
        let listed = self
            .call("transitions", self.get(url.clone()), &url)
            .await?;
        let reopen = listed
            .get("transitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.to_lowercase().contains("reopen"))
            })
            .and_then(|t| t.get("id").cloned());
        match reopen {
            Some(id) => {
                self.call(
                    "reopen",
                    self.post(url.clone(), &json!({"transition": {"id": id}})),
                    &url,
                )
                .await?;
            }
            None => tracing::warn!(
                issue = key,
                "Jira issue is closed and has no reopen transition"
            ),
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Notifier for JiraNotifier {
    fn kind(&self) -> &'static str {
        "jira"
    }

    async fn send(&self, notification: &Notification) -> SendOutcome {
        match self.workflow(notification).await {
            Ok(()) => SendOutcome::Sent,
            Err(outcome) => outcome,
        }
    }
}

/// Base URL, project and component from the method's address; a bad address fails for good.
fn parse_target(address: &str) -> Result<JiraTarget, SendOutcome> {
    let url = http::parse_url(address)?;
    let mut project = None;
    let mut component = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "project" if project.is_none() => project = Some(v.into_owned()),
            "component" if component.is_none() => component = Some(v.into_owned()),
            _ => {}
        }
    }
    let project = project.filter(|p| !p.is_empty()).ok_or_else(|| {
        SendOutcome::give_up(format!(
            "Jira address {} has no project parameter",
            http::redacted(&url)
        ))
    })?;
    let mut base = url;
    base.set_query(None);
    base.set_fragment(None);
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(JiraTarget {
        base,
        project,
        component: component.filter(|c| !c.is_empty()),
    })
}

/// Escapes a value for a single-quoted JQL string.
fn jql_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The `notification` variable of the templates: the record's fields plus `metrics`.
fn template_context(notification: &Notification) -> JinjaValue {
    let mut record: Map<String, Value> =
        serde_json::from_slice(&notification.to_record()).unwrap_or_default();
    record.insert(
        "metrics".into(),
        Value::Array(notification.alarm.metrics().to_vec()),
    );
    JinjaValue::from(minijinja::value::Serde(record))
}

/// Reads a `custom_formatter` file and compiles its `jira_format` templates like Jinja2's
/// `Template(...)`: no autoescaping, lenient undefined values, the trailing newline dropped.
fn load_formatter(path: &Path) -> Result<Environment<'static>, String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("custom_formatter {shown}: {e}"))?;
    let yaml: serde_norway::Value = serde_norway::from_str(&text)
        .map_err(|e| format!("custom_formatter {shown}: not YAML: {e}"))?;
    let format = yaml
        .get("jira_format")
        .and_then(serde_norway::Value::as_mapping)
        .ok_or_else(|| format!("custom_formatter {shown}: no jira_format map"))?;
    let mut env = Environment::new();
    crate::template::bound(&mut env);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    for field in TEMPLATE_FIELDS {
        let Some(source) = format.get(field) else {
            continue;
        };
        let source = match source {
            serde_norway::Value::String(s) => s.clone(),
            serde_norway::Value::Null => continue,
            other => serde_norway::to_string(other)
                .map_err(|e| format!("custom_formatter {shown}: jira_format.{field}: {e}"))?,
        };
        env.add_template_owned(field, source)
            .map_err(|e| format!("custom_formatter {shown}: jira_format.{field}: {e}"))?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use axum::{
        Router,
        http::{HeaderMap, Method, StatusCode, Uri},
        response::IntoResponse,
    };
    use monasca_model::{AlarmTransition, NotificationMethod};

    /// One request the fake Jira received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        query: Vec<(String, String)>,
        authorization: String,
        body: Value,
    }

    /// A fake Jira: answers the four calls from canned data and records every request.
    #[derive(Default)]
    struct FakeJira {
        issues: Value,
        transitions: Value,
        seen: Vec<Seen>,
    }

    type Shared = Arc<Mutex<FakeJira>>;

    async fn jira(issues: Value, transitions: Value) -> (String, Shared) {
        let state: Shared = Arc::new(Mutex::new(FakeJira {
            issues,
            transitions,
            seen: Vec::new(),
        }));
        let shared = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
                let shared = shared.clone();
                async move {
                    let mut fake = shared.lock().unwrap();
                    let query = uri.query().map(url_pairs).unwrap_or_default();
                    fake.seen.push(Seen {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        query,
                        authorization: headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default(),
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                    });
                    let path = uri.path();
                    let (status, reply) = if path.ends_with("/rest/api/2/search") {
                        (StatusCode::OK, json!({"issues": fake.issues}))
                    } else if path.ends_with("/rest/api/2/issue") && method == Method::POST {
                        (StatusCode::CREATED, json!({"id": "10001", "key": "KEY-1"}))
                    } else if path.ends_with("/transitions") && method == Method::GET {
                        (StatusCode::OK, json!({"transitions": fake.transitions}))
                    } else if path.ends_with("/transitions") {
                        (StatusCode::NO_CONTENT, Value::Null)
                    } else if path.ends_with("/comment") {
                        (StatusCode::CREATED, json!({"id": "1"}))
                    } else {
                        (StatusCode::NOT_FOUND, Value::Null)
                    };
                    if reply.is_null() {
                        status.into_response()
                    } else {
                        (status, axum::Json(reply)).into_response()
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), state)
    }

    fn url_pairs(query: &str) -> Vec<(String, String)> {
        Url::parse(&format!("http://x/?{query}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn notification(address: &str) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "cpu high",
            "alarmDescription": null, "oldState": "OK", "newState": "ALARM", "actionsEnabled": true,
            "stateChangeReason": "too hot", "severity": "LOW", "link": null, "lifecycleState": null,
            "metrics": [{"name": "cpu", "dimensions": {"hostname": "h1", "service": "é"}}],
            "timestamp": 1556703552000u64
        }});
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "ops".into(),
                kind: "jira".into(),
                address: address.into(),
                period: 0,
            },
            Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()),
        )
    }

    fn config(custom_formatter: Option<&Path>) -> JiraNotifierConfig {
        JiraNotifierConfig {
            timeout: 2,
            user: Some("bot".into()),
            password: Some("s3cret".into()),
            custom_formatter: custom_formatter.map(Path::to_path_buf),
            proxy: None,
        }
    }

    fn requests(state: &Shared) -> Vec<Seen> {
        state.lock().unwrap().seen.clone()
    }

    const BASIC: &str = "Basic Ym90OnMzY3JldA=="; // bot:s3cret

    #[tokio::test]
    async fn first_alarm_creates_an_issue_with_the_default_fields_and_comments() {
        let (base, state) = jira(json!([]), json!([])).await;
        let n = notification(&format!("{base}/?project=KEY&component=web"));
        let notifier = JiraNotifier::new(&config(None), &crate::guard::allow_loopback()).unwrap();
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);

        let seen = requests(&state);
        assert_eq!(seen.len(), 3, "{seen:?}");
        for request in &seen {
            assert_eq!(request.authorization, BASIC);
        }
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].path, "/rest/api/2/search");
        let jql = seen[0].query.iter().find(|(k, _)| k == "jql").unwrap();
        assert_eq!(jql.1, "project=KEY and reporter='bot' and summary ~ 'a1'");

        assert_eq!(seen[1].method, "POST");
        assert_eq!(seen[1].path, "/rest/api/2/issue");
        let fields = &seen[1].body["fields"];
        assert_eq!(fields["project"], json!({"key": "KEY"}));
        assert_eq!(
            fields["summary"],
            "Monasca alarm for alarm_defintion cpu high status changed to ALARM for the alarm_id a1"
        );
        assert_eq!(fields["description"], "Monasca alarm");
        assert_eq!(fields["issuetype"], json!({"name": "Bug"}));
        assert_eq!(fields["components"], json!([{"name": "web"}]));

        assert_eq!(seen[2].method, "POST");
        assert_eq!(seen[2].path, "/rest/api/2/issue/KEY-1/comment");
        let expected = format!("{{code}}{}{{code}}", dumps_indent3(&n.common_body()));
        assert!(expected.contains("\\u00e9"), "{expected}");
        assert_eq!(seen[2].body, json!({"body": expected}));
    }

    #[tokio::test]
    async fn no_component_means_no_components_field() {
        let (base, state) = jira(json!([]), json!([])).await;
        let notifier = JiraNotifier::new(&config(None), &crate::guard::allow_loopback()).unwrap();
        let sent = notifier
            .send(&notification(&format!("{base}?project=KEY")))
            .await;
        assert_eq!(sent, SendOutcome::Sent);
        let seen = requests(&state);
        assert!(seen[1].body["fields"].get("components").is_none());
    }

    #[tokio::test]
    async fn an_open_issue_is_only_commented() {
        let issues = json!([{"key": "KEY-7", "fields": {"status": {"name": "In Progress"}}}]);
        let (base, state) = jira(issues, json!([])).await;
        let notifier = JiraNotifier::new(&config(None), &crate::guard::allow_loopback()).unwrap();
        let n = notification(&format!("{base}/?project=KEY"));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        let seen = requests(&state);
        let calls: Vec<_> = seen
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect();
        assert_eq!(
            calls,
            [
                "GET /rest/api/2/search",
                "POST /rest/api/2/issue/KEY-7/comment"
            ]
        );
    }

    #[tokio::test]
    async fn a_closed_issue_is_reopened_through_the_reopen_transition_then_commented() {
        let issues = json!([{"key": "KEY-7", "fields": {"status": {"name": "CLOSED"}}}]);
        let transitions = json!([
            {"id": "11", "name": "Start Progress"},
            {"id": "3", "name": "Reopen Issue"},
            {"id": "12", "name": "Reopen later"}
        ]);
        let (base, state) = jira(issues, transitions).await;
        let notifier = JiraNotifier::new(&config(None), &crate::guard::allow_loopback()).unwrap();
        let n = notification(&format!("{base}/?project=KEY"));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        let seen = requests(&state);
        let calls: Vec<_> = seen
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect();
        assert_eq!(
            calls,
            [
                "GET /rest/api/2/search",
                "GET /rest/api/2/issue/KEY-7/transitions",
                "POST /rest/api/2/issue/KEY-7/transitions",
                "POST /rest/api/2/issue/KEY-7/comment"
            ]
        );
        assert_eq!(seen[2].body, json!({"transition": {"id": "3"}}));
        assert!(seen.iter().all(|s| s.authorization == BASIC));
    }

    #[tokio::test]
    async fn jira_under_a_sub_path_is_called_under_it() {
        let (base, state) = jira(json!([]), json!([])).await;
        let notifier = JiraNotifier::new(&config(None), &crate::guard::allow_loopback()).unwrap();
        let n = notification(&format!("{base}/jira/?project=KEY"));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        let paths: Vec<_> = requests(&state).into_iter().map(|s| s.path).collect();
        assert_eq!(
            paths,
            [
                "/jira/rest/api/2/search",
                "/jira/rest/api/2/issue",
                "/jira/rest/api/2/issue/KEY-1/comment"
            ]
        );

        // Without the trailing slash too.
        let (base, state) = jira(json!([]), json!([])).await;
        let n = notification(&format!("{base}/jira?project=KEY"));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        assert_eq!(requests(&state)[0].path, "/jira/rest/api/2/search");
    }

    #[tokio::test]
    async fn custom_formatter_renders_the_templates_without_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jira.yaml");
        std::fs::write(
            &path,
            "jira_format:\n  summary: \"{{ notification.alarm_name }} <&> {{ notification.state }}\"\n  description: |\n    link={{ notification.link }} x={{ notification.nope }}!\n  comments: \"{{ notification.metrics[0].dimensions.hostname }} {{ notification.alarm_id }}\"\n",
        )
        .unwrap();
        let (base, state) = jira(json!([]), json!([])).await;
        let notifier =
            JiraNotifier::new(&config(Some(&path)), &crate::guard::allow_loopback()).unwrap();
        let n = notification(&format!("{base}/?project=KEY"));
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        let seen = requests(&state);
        assert_eq!(seen.len(), 3);
        let fields = &seen[1].body["fields"];
        assert_eq!(fields["summary"], "cpu high <&> ALARM");
        assert_eq!(fields["description"], "link=None x=!");
        assert_eq!(seen[2].body, json!({"body": "h1 a1"}));
    }

    #[tokio::test]
    async fn custom_formatter_without_comments_adds_no_comment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jira.yaml");
        std::fs::write(
            &path,
            "jira_format:\n  summary: \"S {{ notification.alarm_id }}\"\n",
        )
        .unwrap();
        let issues = json!([{"key": "KEY-7", "fields": {"status": {"name": "Open"}}}]);
        let (base, state) = jira(issues, json!([])).await;
        let notifier =
            JiraNotifier::new(&config(Some(&path)), &crate::guard::allow_loopback()).unwrap();
        assert_eq!(
            notifier
                .send(&notification(&format!("{base}/?project=KEY")))
                .await,
            SendOutcome::Sent
        );
        let seen = requests(&state);
        assert_eq!(seen.len(), 1, "{seen:?}");

        // A new issue gets the default description and no comment either.
        let (base, state) = jira(json!([]), json!([])).await;
        assert_eq!(
            notifier
                .send(&notification(&format!("{base}/?project=KEY")))
                .await,
            SendOutcome::Sent
        );
        let seen = requests(&state);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[1].body["fields"]["summary"], "S a1");
        assert_eq!(seen[1].body["fields"]["description"], "Monasca alarm");
    }

    #[test]
    fn bad_configuration_is_a_build_error() {
        let mut c = config(None);
        c.user = None;
        assert!(
            JiraNotifier::new(&c, &crate::guard::allow_loopback())
                .err()
                .unwrap()
                .message
                .contains("user")
        );
        let mut c = config(None);
        c.password = None;
        assert!(
            JiraNotifier::new(&c, &crate::guard::allow_loopback())
                .err()
                .unwrap()
                .message
                .contains("password")
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "jira_format:\n  summary: \"{{ notification.x \"\n").unwrap();
        let e = JiraNotifier::new(&config(Some(&path)), &crate::guard::allow_loopback())
            .err()
            .unwrap();
        assert!(e.message.contains("bad.yaml"), "{}", e.message);
        let e = JiraNotifier::new(
            &config(Some(&dir.path().join("missing.yaml"))),
            &crate::guard::allow_loopback(),
        )
        .err()
        .unwrap();
        assert!(e.message.contains("missing.yaml"), "{}", e.message);
    }

    #[tokio::test]
    async fn failures_name_the_step_and_a_bad_address_gives_up() {
        let app = Router::new().fallback(|| async { StatusCode::UNAUTHORIZED });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let notifier = JiraNotifier::new(&config(None), &crate::guard::allow_loopback()).unwrap();
        let SendOutcome::Failed(f) = notifier
            .send(&notification(&format!("http://{addr}/?project=KEY")))
            .await
        else {
            panic!("401 must fail")
        };
        assert!(!f.retryable);
        assert!(f.reason.starts_with("Jira search: "), "{}", f.reason);
        assert!(f.reason.contains("401"), "{}", f.reason);
        assert!(!f.reason.contains("s3cret"), "{}", f.reason);

        let SendOutcome::Failed(f) = notifier
            .send(&notification("http://127.0.0.1:1/?component=x"))
            .await
        else {
            panic!("no project")
        };
        assert!(!f.retryable);
    }
}
