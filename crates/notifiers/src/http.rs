//! What every HTTP notifier shares: building a client from the `timeout`, `insecure`,
//! `ca_certs` and `proxy` options (and, for tenant-given addresses, the destination
//! [`Guard`]), classifying a status into a [`SendOutcome`], and showing a URL without the
//! secrets it may carry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::guard::{self, Guard};
use crate::{BuildError, SendOutcome};

/// The transport options of one notifier section.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions<'a> {
    /// Seconds before a call is abandoned (and retried).
    pub timeout: u64,
    /// Skip certificate verification.
    pub insecure: bool,
    /// Extra CA bundle (PEM) to trust.
    pub ca_certs: Option<&'a Path>,
    /// Proxy URL for all calls.
    pub proxy: Option<&'a str>,
    /// The `[destinations]` policy, for clients that connect to addresses tenants give.
    /// `None` only for operator-configured endpoints (PagerDuty, Opsgenie, Keystone), which
    /// may legitimately sit on an internal network.
    pub guard: Option<Arc<Guard>>,
}

/// A pooled, keep-alive client for one notifier. Certificates are verified unless `insecure`.
/// With a guard, names resolve only to allowed addresses and redirects to denied IP literals
/// are refused; the caller still checks IP-literal URLs with [`Guard::check_url`].
pub fn client(kind: &str, options: &HttpOptions<'_>) -> Result<reqwest::Client, BuildError> {
    let fail = |message: String| BuildError {
        kind: kind.to_string(),
        message,
    };
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(options.timeout))
        .pool_idle_timeout(Duration::from_secs(90))
        .danger_accept_invalid_certs(options.insecure);
    if let Some(path) = options.ca_certs {
        let pem =
            std::fs::read(path).map_err(|e| fail(format!("ca_certs {}: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            fail(format!(
                "ca_certs {}: not a PEM bundle: {e}",
                path.display()
            ))
        })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(guard) = &options.guard {
        builder = builder
            .dns_resolver(Arc::new(guard::GuardedResolver::new(guard.clone())))
            .redirect(guard::redirect_policy(guard.clone()));
    }
    if let Some(proxy) = options.proxy {
        let proxy = reqwest::Proxy::all(proxy).map_err(|e| fail(format!("proxy: {e}")))?;
        builder = builder.proxy(proxy);
    }
    builder
        .build()
        .map_err(|e| fail(format!("cannot build the HTTP client: {e}")))
}

/// Classifies an HTTP status: 2xx sent; 5xx, 408 and 429 worth retrying (429 with its
/// Retry-After); anything else failed for good.
pub fn classify(shown_url: &str, status: StatusCode, retry_after: Option<Duration>) -> SendOutcome {
    if status.is_success() {
        return SendOutcome::Sent;
    }
    let reason = format!("{shown_url} answered {status}");
    if status == StatusCode::TOO_MANY_REQUESTS {
        let mut outcome = SendOutcome::retry(reason);
        if let SendOutcome::Failed(f) = &mut outcome {
            f.retry_after = retry_after;
        }
        outcome
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SendOutcome::retry(reason)
    } else {
        SendOutcome::give_up(reason)
    }
}

/// The `Retry-After` of a response, in seconds form.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    value
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// Classifies a transport error (timeout, refused connection, TLS failure): worth retrying,
/// with a reason that does not repeat the URL (reqwest's does, with its secrets). A
/// destination the [`Guard`] refused (at resolution or on a redirect) fails for good: trying
/// again would be refused again.
pub fn transport_failure(shown_url: &str, error: &reqwest::Error) -> SendOutcome {
    if let Some(denied) = guard::denied_in(error) {
        SendOutcome::give_up(format!("{shown_url}: {denied}"))
    } else if error.is_timeout() {
        SendOutcome::unreachable(format!("{shown_url}: timed out"))
    } else if error.is_connect() {
        SendOutcome::unreachable(format!("{shown_url}: {}", without_url(error)))
    } else {
        SendOutcome::retry(format!("{shown_url}: {}", without_url(error)))
    }
}

/// The error and its sources, without reqwest's "for url (...)" part.
fn without_url(error: &reqwest::Error) -> String {
    let own = error.to_string();
    let mut text = own.split(" for url (").next().unwrap_or(&own).to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The URL without user info, query and fragment, which may hold tokens.
pub fn redacted(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("<redacted>"));
    }
    shown.set_fragment(None);
    shown.to_string()
}

/// Parses a method's address as an http(s) URL, or fails for good. The reason says what is
/// wrong without repeating the address: a mistyped one (`htps://hooks.example/T/B/token`)
/// still carries its token, and the reason goes to logs and the dead-letter topic.
pub fn parse_url(address: &str) -> Result<reqwest::Url, SendOutcome> {
    match reqwest::Url::parse(address) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        Ok(url) => Err(SendOutcome::give_up(format!(
            "the address is not an http(s) URL (its scheme is {:?})",
            url.scheme().chars().take(32).collect::<String>()
        ))),
        Err(e) => Err(SendOutcome::give_up(format!(
            "the address is not an http(s) URL ({e})"
        ))),
    }
}

/// The URL's origin only (`https://hooks.example:8443/<redacted>`), for destinations that
/// may carry their secret anywhere in the path (generic webhooks, Teams).
pub fn origin_only(url: &reqwest::Url) -> String {
    let origin = url.origin().ascii_serialization();
    if url.path() == "/" && url.query().is_none() {
        format!("{origin}/")
    } else {
        format!("{origin}/<redacted>")
    }
}

/// The secrets audit: every notifier is driven into failures (an error status from a server
/// that echoes the whole request back, a dead port, a mistyped address, a redirect to a
/// denied address) with secrets in its configuration and in the method's address, and the
/// failure reason, which goes to logs and the dead-letter topic, must contain none of them.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
    use base64::Engine as _;
    use monasca_config::Config;
    use monasca_model::{AlarmTransition, Notification, NotificationMethod};
    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use crate::{Notifiers, SendOutcome};

    /// Every secret planted below; none may appear in a reason.
    const SECRETS: &[&str] = &[
        "userinfoPASS",
        "PATHTOKEN",
        "QUERYTOKEN",
        "KSPASS",
        "SLACKSECRET",
        "HIPSECRET",
        "TEAMSSIG",
        "JIRAPASS",
        "PDKEY",
        "PDV2KEY",
        "GENIEKEY",
        "SMTPPASS",
    ];

    /// A server answering `status` to everything, with the request (URI, headers, body) as
    /// its answer's body: a notifier that quoted the answer would leak what it sent.
    async fn echo_server(status: u16) -> String {
        let app = Router::new().fallback(
            move |uri: Uri, headers: HeaderMap, body: String| async move {
                (
                    AxumStatus::from_u16(status).unwrap_or(AxumStatus::INTERNAL_SERVER_ERROR),
                    format!("{uri} {headers:?} {body}"),
                )
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// A server that redirects everything to the cloud metadata address.
    async fn redirecting_server() -> String {
        let app = Router::new().fallback(|| async {
            (
                AxumStatus::TEMPORARY_REDIRECT,
                [(
                    "location",
                    "http://169.254.169.254/latest/meta-data?token=QUERYTOKEN",
                )],
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// An SMTP server that offers AUTH and refuses every login, echoing the attempt.
    async fn refusing_smtp() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 smtp.test ESMTP\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let answer = if line.to_ascii_uppercase().starts_with("EHLO") {
                            "250-smtp.test\r\n250 AUTH PLAIN LOGIN\r\n".to_string()
                        } else if line.to_ascii_uppercase().starts_with("QUIT") {
                            "221 bye\r\n".to_string()
                        } else {
                            format!("535 5.7.8 Authentication failed for {line}\r\n")
                        };
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn dead_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// Every notifier, configured with secrets, sending to `base` where it has a choice.
    fn notifiers(base: &str, smtp_port: u16, keystone: bool) -> Notifiers {
        let mut config = Config::default();
        config.notification_types.enabled = [
            "webhook",
            "email",
            "pagerduty",
            "pagerduty_v2",
            "opsgenie",
            "slack",
            "hipchat",
            "teams",
            "jira",
        ]
        .map(String::from)
        .to_vec();
        config.destinations.allow = vec!["127.0.0.0/8".into()];
        config.keystone.auth_required = keystone;
        config.keystone.auth_url = Some(format!("{base}/identity/v3"));
        config.keystone.username = Some("monasca".into());
        config.keystone.password = Some("KSPASS".into());
        config.keystone.project_name = Some("service".into());
        config.email_notifier.server = "127.0.0.1".into();
        config.email_notifier.port = smtp_port;
        config.email_notifier.from_addr = Some("monasca@example.com".into());
        config.email_notifier.user = Some("monasca".into());
        config.email_notifier.password = Some("SMTPPASS".into());
        config.pagerduty_notifier.url = format!("{base}/create_event.json");
        config.pagerduty_v2_notifier.url = format!("{base}/v2/enqueue");
        config.opsgenie_notifier.url = base.to_string();
        config.opsgenie_notifier.api_key = Some("GENIEKEY".into());
        config.jira_notifier.user = Some("monasca".into());
        config.jira_notifier.password = Some("JIRAPASS".into());
        for timeout in [
            &mut config.webhook_notifier.timeout,
            &mut config.email_notifier.timeout,
            &mut config.pagerduty_notifier.timeout,
            &mut config.pagerduty_v2_notifier.timeout,
            &mut config.opsgenie_notifier.timeout,
            &mut config.slack_notifier.timeout,
            &mut config.hipchat_notifier.timeout,
            &mut config.teams_notifier.timeout,
            &mut config.jira_notifier.timeout,
        ] {
            *timeout = 2;
        }
        Notifiers::from_config(&config).expect("every notifier builds")
    }

    /// The method addresses, each with its secrets, for a destination at `base`.
    fn addresses(base: &str) -> Vec<(&'static str, String)> {
        let with_userinfo = base.replacen("http://", "http://monasca:userinfoPASS@", 1);
        vec![
            (
                "webhook",
                format!("{with_userinfo}/hook/PATHTOKEN?token=QUERYTOKEN"),
            ),
            (
                "webhook",
                "htps://127.0.0.1/hook/PATHTOKEN?token=QUERYTOKEN".to_string(),
            ),
            ("email", "ops@example.org".into()),
            ("pagerduty", "PDKEY".into()),
            ("pagerduty_v2", "PDV2KEY".into()),
            ("opsgenie", "GENIEKEY".into()),
            ("opsgenie", String::new()),
            ("slack", format!("{base}/services/T1/B2/SLACKSECRET")),
            (
                "slack",
                format!("{base}/api/chat.postMessage?token=SLACKSECRET&channel=#x"),
            ),
            (
                "hipchat",
                format!("{with_userinfo}/v2/room/1/notification?auth_token=HIPSECRET"),
            ),
            (
                "teams",
                format!("{base}/workflows/PATHTOKEN/invoke?api-version=1&sig=TEAMSSIG"),
            ),
            ("jira", format!("{with_userinfo}/jira/?project=KEY")),
        ]
    }

    fn notification(kind: &str, address: &str) -> Notification {
        let msg = json!({"alarm-transitioned": {
            "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "n",
            "alarmDescription": null, "oldState": "OK", "newState": "ALARM",
            "actionsEnabled": true, "stateChangeReason": "r", "severity": "LOW", "link": null,
            "lifecycleState": null, "metrics": [{"name": "cpu", "dimensions": {"hostname": "h"}}],
            "timestamp": 1556703552000u64
        }});
        let alarm = AlarmTransition::parse(msg.to_string().as_bytes()).expect("valid alarm");
        Notification::new(
            NotificationMethod {
                id: "m1".into(),
                name: "secret-holder".into(),
                kind: kind.into(),
                address: address.into(),
                period: 0,
            },
            Arc::new(alarm),
        )
    }

    /// Sends every address through `notifiers` and checks each failure's reason.
    async fn assert_no_secret_in_reasons(notifiers: &Notifiers, base: &str, what: &str) -> usize {
        let smtp_b64 = base64::engine::general_purpose::STANDARD.encode("\0monasca\0SMTPPASS");
        let mut failures = 0;
        for (kind, address) in addresses(base) {
            let notifier = notifiers.get(kind).expect("enabled");
            if let SendOutcome::Failed(f) = notifier.send(&notification(kind, &address)).await {
                failures += 1;
                for secret in SECRETS.iter().copied().chain([smtp_b64.as_str()]) {
                    assert!(
                        !f.reason.contains(secret),
                        "{what}: {kind} {address:?}: {secret} in {:?}",
                        f.reason
                    );
                }
            }
        }
        failures
    }

    #[tokio::test]
    async fn no_secret_appears_in_any_failure_reason() {
        let smtp = refusing_smtp().await;
        let count = addresses("http://x").len();
        for status in [500, 401, 404, 429] {
            let base = echo_server(status).await;
            for keystone in [false, true] {
                let failed =
                    assert_no_secret_in_reasons(&notifiers(&base, smtp, keystone), &base, "status")
                        .await;
                assert_eq!(failed, count, "every send failed (status {status})");
            }
        }
        let dead = format!("http://127.0.0.1:{}", dead_port());
        let failed =
            assert_no_secret_in_reasons(&notifiers(&dead, dead_port(), false), &dead, "dead port")
                .await;
        assert_eq!(failed, count);
        let redirecting = redirecting_server().await;
        assert_no_secret_in_reasons(
            &notifiers(&redirecting, smtp, false),
            &redirecting,
            "redirect",
        )
        .await;
    }
}
