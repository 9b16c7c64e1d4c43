//! The destination guard: which addresses a notifier may connect to when a tenant chose them.
//!
//! Notification addresses come from tenants, so without a guard a webhook could be pointed at
//! the cloud metadata service (`169.254.169.254`), at a service listening on the engine's own
//! loopback, or at an internal network. [`Guard`] holds the policy of `[destinations]`:
//! loopback, link-local and unspecified addresses (and their IPv4-mapped / IPv4-compatible
//! IPv6 forms) are always denied, so are the operator's `deny` networks, and `allow` overrides
//! both.
//!
//! It is enforced in three places, because each one alone has a gap:
//! - on the addresses a host name resolves to: [`GuardedResolver`] is the HTTP client's DNS
//!   resolver, so the connection is made only to addresses that passed (no second lookup an
//!   attacker could answer differently);
//! - on IP-literal hosts, which the client connects to without asking the resolver:
//!   [`Guard::check_url`], called by each guarded notifier before it sends;
//! - on every redirect: [`redirect_policy`] checks IP-literal targets itself, and names go
//!   through the resolver when the client connects.
//!
//! A refusal is a [`Denied`] error; [`crate::http::transport_failure`] finds it in reqwest's
//! error chain and turns it into a permanent failure (dead-lettered, never retried).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use ipnet::IpNet;
use monasca_config::DestinationsConfig;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use crate::SendOutcome;

/// How many redirects are followed, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

/// A destination address the policy refuses, and which rule refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {ip} is in a denied network ({rule}); allow it with [destinations] allow")]
pub struct Denied {
    /// The refused address.
    pub ip: IpAddr,
    /// The rule, in words: `loopback`, `link-local`, `unspecified`, or the `deny` entry.
    pub rule: String,
}

/// The `[destinations]` policy, shared by the clients of the guarded notifiers.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// `[destinations] deny`, parsed.
    deny: Vec<IpNet>,
    /// `[destinations] allow`, parsed; checked first.
    allow: Vec<IpNet>,
}

impl Guard {
    /// The policy of `[destinations]` (entries were validated when the configuration loaded).
    pub fn new(config: &DestinationsConfig) -> Arc<Guard> {
        let (deny, allow) = config.networks();
        Arc::new(Guard { deny, allow })
    }

    /// Whether `ip` may be connected to.
    pub fn check(&self, ip: IpAddr) -> Result<(), Denied> {
        // An IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) address reaches the
        // IPv4 address it embeds, so both forms are judged, and either being listed counts.
        let forms = [Some(ip), embedded_ipv4(ip).map(IpAddr::V4)];
        let forms = forms.iter().flatten();
        if forms
            .clone()
            .any(|f| self.allow.iter().any(|n| n.contains(f)))
        {
            return Ok(());
        }
        for form in forms {
            if let Some(rule) = built_in_rule(*form) {
                return Err(Denied {
                    ip,
                    rule: rule.to_string(),
                });
            }
            if let Some(net) = self.deny.iter().find(|n| n.contains(form)) {
                return Err(Denied {
                    ip,
                    rule: format!("{net} of [destinations] deny"),
                });
            }
        }
        Ok(())
    }

    /// Refuses a URL whose host is a denied IP literal, for good: the HTTP client connects to
    /// IP literals without asking the resolver. Host names pass here; the resolver checks them.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), SendOutcome> {
        self.check_host(url)
            .map_err(|denied| SendOutcome::give_up(denied.to_string()))
    }

    /// The IP-literal check of [`Guard::check_url`], as the error.
    fn check_host(&self, url: &reqwest::Url) -> Result<(), Denied> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            _ => Ok(()),
        }
    }
}

/// The IPv4 address inside an IPv4-mapped or IPv4-compatible IPv6 address.
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().or_else(|| {
            // ::a.b.c.d (deprecated, but still routed to the IPv4 address by some stacks); `::`
            // and `::1` have their own rules.
            let segments = v6.segments();
            (segments[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback())
                .then(|| v6.to_ipv4())
                .flatten()
        }),
    }
}

/// The built-in rule that denies `ip`, if any.
fn built_in_rule(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        // 0.0.0.0/8 is "this network": 0.0.0.0 reaches the local host on Linux.
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        _ => None,
    }
}

/// The HTTP client's DNS resolver: the system resolver (as reqwest's default), with the
/// denied addresses dropped. A name with only denied addresses fails with [`Denied`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    /// The policy.
    guard: Arc<Guard>,
}

impl GuardedResolver {
    /// A resolver enforcing `guard`.
    pub fn new(guard: Arc<Guard>) -> Self {
        GuardedResolver { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let lookup = async move {
            let host = name.as_str().to_string();
            // Port 0: the connector puts the URL's port in.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_denied = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match guard.check(addr.ip()) {
                    Ok(()) => true,
                    Err(denied) => {
                        first_denied.get_or_insert(denied);
                        false
                    }
                })
                .collect();
            match first_denied {
                Some(denied) if allowed.is_empty() => Err(Box::new(NameDenied { host, denied })
                    as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        };
        Box::pin(lookup) as Pin<Box<dyn Future<Output = _> + Send>>
    }
}

/// A host name whose every address is denied.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to denied addresses: {denied}")]
pub struct NameDenied {
    /// The name looked up.
    pub host: String,
    /// The first refusal.
    #[source]
    pub denied: Denied,
}

/// reqwest's redirect policy (at most [`MAX_REDIRECTS`]) with every IP-literal target checked;
/// a named target is checked by [`GuardedResolver`] when the client connects to it.
pub fn redirect_policy(guard: Arc<Guard>) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match guard.check_host(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(denied) => attempt.error(denied),
        }
    })
}

/// The [`Denied`] refusal somewhere in an error's chain of sources, if any.
pub fn denied_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(named) = e.downcast_ref::<NameDenied>() {
            return Some(named.to_string());
        }
        if let Some(denied) = e.downcast_ref::<Denied>() {
            return Some(denied.to_string());
        }
        current = e.source();
    }
    None
}

/// `[destinations]` letting notifier tests reach their servers on 127.0.0.1.
#[cfg(test)]
pub(crate) fn allow_loopback() -> DestinationsConfig {
    DestinationsConfig {
        deny: Vec::new(),
        allow: vec!["127.0.0.0/8".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(deny: &[&str], allow: &[&str]) -> Arc<Guard> {
        Guard::new(&DestinationsConfig {
            deny: deny.iter().map(|s| s.to_string()).collect(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn rule(guard: &Guard, ip: &str) -> Option<String> {
        guard.check(ip.parse().unwrap()).err().map(|d| d.rule)
    }

    #[test]
    fn built_in_networks_are_denied_in_every_form() {
        let g = guard(&[], &[]);
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("::ffff:169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("::ffff:0.0.0.0", "unspecified"),
        ] {
            assert_eq!(rule(&g, ip).as_deref(), Some(expected), "{ip}");
        }
        for ip in ["8.8.8.8", "10.1.2.3", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert_eq!(rule(&g, ip), None, "{ip}");
        }
    }

    #[test]
    fn deny_adds_networks_and_allow_overrides_everything() {
        let g = guard(
            &["10.0.0.0/8", "2001:db8::/32"],
            &["10.9.0.0/16", "127.0.0.1"],
        );
        assert_eq!(
            rule(&g, "10.1.2.3").as_deref(),
            Some("10.0.0.0/8 of [destinations] deny")
        );
        assert_eq!(
            rule(&g, "::ffff:10.1.2.3").as_deref(),
            Some("10.0.0.0/8 of [destinations] deny")
        );
        assert!(rule(&g, "2001:db8::5").is_some());
        assert_eq!(rule(&g, "10.9.1.1"), None);
        assert_eq!(rule(&g, "127.0.0.1"), None);
        assert_eq!(rule(&g, "::ffff:127.0.0.1"), None);
        assert_eq!(rule(&g, "127.0.0.2").as_deref(), Some("loopback"));
    }

    #[test]
    fn the_reason_says_what_and_how_to_allow_it() {
        let denied = guard(&[], &[])
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "destination 169.254.169.254 is in a denied network (link-local); allow it with \
             [destinations] allow"
        );
    }

    #[test]
    fn ip_literal_urls_are_checked_and_names_left_to_the_resolver() {
        let g = guard(&[], &[]);
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            // The URL parser reads these shorthand forms as 127.0.0.1.
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            let Err(SendOutcome::Failed(f)) = g.check_url(&url) else {
                panic!("{url} must be refused")
            };
            assert!(!f.retryable, "{url}");
        }
        let url = reqwest::Url::parse("http://localhost/x").unwrap();
        assert!(g.check_url(&url).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_denied_addresses() {
        let resolver = GuardedResolver::new(guard(&[], &[]));
        let name: Name = "localhost".parse().unwrap();
        let err = match resolver.resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let text = denied_in(err.as_ref()).expect("a Denied refusal");
        assert!(text.starts_with("localhost resolves only to denied addresses: destination "));
        assert!(text.contains("(loopback)"), "{text}");

        let allowing = GuardedResolver::new(guard(&[], &["127.0.0.0/8", "::1"]));
        let addrs: Vec<_> = allowing
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
    }
}
