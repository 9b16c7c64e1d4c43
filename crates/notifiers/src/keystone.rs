//! Keystone v3 tokens for notifiers whose destination requires one (`[keystone] auth_required`).
//!
//! [`KeystoneAuth::token`] returns a cached token while it has more than [`EXPIRY_MARGIN`] left,
//! and otherwise asks Keystone for a new one (`POST {auth_url}/v3/auth/tokens`, password method,
//! project scope). The cache sits behind an async mutex, so concurrent sends that find it stale
//! wait for one fetch instead of each making their own.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use monasca_config::KeystoneConfig;
use reqwest::Url;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{BuildError, SendOutcome, http};

/// A token is renewed when it has less than this left.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Gets and caches Keystone tokens for one notifier.
pub struct KeystoneAuth {
    /// The notifier's client (its timeout applies to Keystone too).
    client: reqwest::Client,
    /// `.../v3/auth/tokens`.
    tokens_url: Url,
    /// The request body; holds the password, so it is never logged or shown.
    request: Value,
    /// Renew this long before the expiry.
    margin: Duration,
    /// The current token and when it expires; the lock is held across a fetch.
    cache: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    token: String,
    expires_at: SystemTime,
}

impl KeystoneAuth {
    /// Reads `[keystone]`; `auth_url`, `username` and `password` are required. The domains
    /// default to `Default`; without `project_name` the token is unscoped.
    pub fn new(
        kind: &str,
        config: &KeystoneConfig,
        client: reqwest::Client,
    ) -> Result<Self, BuildError> {
        let fail = |message: String| BuildError {
            kind: kind.to_string(),
            message: format!("[keystone] {message}"),
        };
        let required = |value: &Option<String>, key: &str| {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| fail(format!("auth_required is true but {key} is not set")))
        };
        let auth_url = required(&config.auth_url, "auth_url")?;
        let username = required(&config.username, "username")?;
        let password = required(&config.password, "password")?;
        let tokens_url = tokens_url(&auth_url).map_err(|e| fail(format!("auth_url: {e}")))?;
        let domain = |d: &Option<String>| d.clone().unwrap_or_else(|| "Default".into());
        let mut auth = json!({
            "identity": {
                "methods": ["password"],
                "password": {"user": {
                    "name": username,
                    "domain": {"name": domain(&config.user_domain_name)},
                    "password": password,
                }},
            },
        });
        if let Some(project) = config.project_name.as_ref().filter(|p| !p.is_empty()) {
            auth["scope"] = json!({"project": {
                "name": project,
                "domain": {"name": domain(&config.project_domain_name)},
            }});
        }
        Ok(KeystoneAuth {
            client,
            tokens_url,
            request: json!({ "auth": auth }),
            margin: EXPIRY_MARGIN,
            cache: Mutex::new(None),
        })
    }

    /// A token valid for at least the margin, fetched if needed. A failure is worth retrying
    /// the send for; its reason never holds the password.
    pub async fn token(&self) -> Result<String, SendOutcome> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache
            .as_ref()
            .filter(|c| SystemTime::now() + self.margin < c.expires_at)
        {
            return Ok(cached.token.clone());
        }
        let fetched = self.fetch().await?;
        let token = fetched.token.clone();
        *cache = Some(fetched);
        Ok(token)
    }

    async fn fetch(&self) -> Result<CachedToken, SendOutcome> {
        let shown = format!("Keystone {}", http::redacted(&self.tokens_url));
        let response = self
            .client
            .post(self.tokens_url.clone())
            .json(&self.request)
            .send()
            .await
            .map_err(|e| http::transport_failure(&shown, &e))?;
        let status = response.status();
        if !status.is_success() {
            // Even a 401 is retried: the credentials or Keystone may be fixed meanwhile, and the
            // destination itself was never tried.
            return Err(SendOutcome::retry(format!("{shown} answered {status}")));
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| SendOutcome::retry(format!("{shown}: no X-Subject-Token header")))?;
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let expires_at = body
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            // Unknown expiry: use the token for this send only.
            .unwrap_or(UNIX_EPOCH);
        Ok(CachedToken { token, expires_at })
    }
}

/// `{auth_url}/v3/auth/tokens`, whether or not `auth_url` already ends in `/v3`.
fn tokens_url(auth_url: &str) -> Result<Url, String> {
    let trimmed = auth_url.trim_end_matches('/');
    let full = if trimmed.ends_with("/v3") {
        format!("{trimmed}/auth/tokens")
    } else {
        format!("{trimmed}/v3/auth/tokens")
    };
    http::parse_url(&full).map_err(|_| format!("{auth_url:?} is not an http(s) URL"))
}

/// Parses Keystone's `expires_at` (`2026-11-22T05:37:33.000000Z`, or with a `+HH:MM` offset).
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let kept = &fraction[..digits.min(9)];
        nanos = format!("{kept:0<9}").parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h = rest.get(1..3)?.parse::<i64>().ok()?;
            let m = rest.get(4..6)?.parse::<i64>().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let secs =
        days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `time` as Keystone writes it (`2026-11-22T05:37:33.000000Z`); for tests' fake Keystones.
#[cfg(test)]
pub(crate) fn format_rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Inverse of days_from_civil (Howard Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000000Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_url_with_or_without_v3() {
        for base in [
            "http://ks:5000",
            "http://ks:5000/",
            "http://ks:5000/v3",
            "http://ks:5000/v3/",
        ] {
            assert_eq!(
                tokens_url(base).unwrap().as_str(),
                "http://ks:5000/v3/auth/tokens"
            );
        }
        assert_eq!(
            tokens_url("https://ks/identity").unwrap().as_str(),
            "https://ks/identity/v3/auth/tokens"
        );
        assert!(tokens_url("ks:5000").is_err());
    }

    #[test]
    fn parses_keystone_expiry() {
        let t = |s| {
            parse_rfc3339(s)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        };
        assert_eq!(t("1970-01-01T00:00:00Z"), 0.0);
        assert_eq!(t("2019-05-01T09:39:12.000000Z"), 1_556_703_552.0);
        assert_eq!(t("2019-05-01T11:39:12.5+02:00"), 1_556_703_552.5);
        assert_eq!(t("2000-03-01T00:00:00Z"), 951_868_800.0);
        assert!(parse_rfc3339("tomorrow").is_none());
        let now = UNIX_EPOCH + Duration::from_secs(1_763_789_853);
        assert_eq!(format_rfc3339(now), "2025-11-22T05:37:33.000000Z");
        assert_eq!(parse_rfc3339(&format_rfc3339(now)), Some(now));
    }

    #[test]
    fn missing_settings_are_build_errors() {
        let config = KeystoneConfig {
            auth_required: true,
            auth_url: Some("http://ks:5000".into()),
            username: Some("u".into()),
            password: None,
            ..KeystoneConfig::default()
        };
        let e = KeystoneAuth::new("webhook", &config, reqwest::Client::new())
            .err()
            .unwrap();
        assert!(e.message.contains("password"), "{}", e.message);
    }
}
