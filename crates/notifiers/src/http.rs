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
        SendOutcome::retry(format!("{shown_url}: timed out"))
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

/// Parses a method's address as an http(s) URL, or fails for good.
pub fn parse_url(address: &str) -> Result<reqwest::Url, SendOutcome> {
    match reqwest::Url::parse(address) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        _ => Err(SendOutcome::give_up(format!(
            "address {:?} is not an http(s) URL",
            address.chars().take(200).collect::<String>()
        ))),
    }
}
