//! The statsd side of [`Metrics`](crate::Metrics): the original's names, sent over UDP to the
//! Monasca agent in the agent's own tag dialect.
//!
//! cadence formats a metric the DogStatsD way (`name:1|c|#service:monitoring,...`); the agent
//! instead evaluates the part after `|#` as a Python dict literal and drops the whole datagram
//! when that fails. [`MonascaSink`] rewrites the tags at the sink, so the client stays cadence:
//! `monasca.alarms_finished_count:1|c|#{'service': 'monitoring', 'component':
//! 'monasca-notification'}`.
//!
//! Nothing here may slow the pipeline: the client hands each line to cadence's bounded queue
//! (a full queue drops the line) and a sender thread writes it to a non-blocking UDP socket.
//! Every line lost either way is counted in `monasca_notification_statsd_dropped_total`.

use std::io;
use std::net::UdpSocket;

use cadence::{MetricSink, QueuingMetricSink, StatsdClient, UdpMetricSink};
use monasca_config::StatsdConfig;
use prometheus_client::metrics::counter::Counter;

/// The prefix of every name, as in the original.
pub const PREFIX: &str = "monasca";

/// The dimensions the original put on every line.
pub const DIMENSIONS: [(&str, &str); 2] = [
    ("service", "monitoring"),
    ("component", "monasca-notification"),
];

/// Lines waiting for the sender thread at most; beyond that, new lines are dropped.
const QUEUE_CAPACITY: usize = 4096;

/// A sink that rewrites DogStatsD tags into the Monasca agent's dict and passes the line on.
pub struct MonascaSink<S> {
    inner: S,
    /// Lines the inner sink failed to write.
    dropped: Counter,
}

impl<S: MetricSink> MonascaSink<S> {
    /// Wraps `inner`; every failed write increments `dropped`.
    pub fn new(inner: S, dropped: Counter) -> Self {
        MonascaSink { inner, dropped }
    }
}

impl<S: MetricSink> MetricSink for MonascaSink<S> {
    fn emit(&self, metric: &str) -> io::Result<usize> {
        let result = self.inner.emit(&to_monasca_dialect(metric));
        if result.is_err() {
            self.dropped.inc();
        }
        result
    }

    fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `name:1|c|#k:v,k2:v2` → `name:1|c|#{'k': 'v', 'k2': 'v2'}`; a line without tags is
/// returned as it is.
pub fn to_monasca_dialect(line: &str) -> String {
    let Some((head, tags)) = line.rsplit_once("|#") else {
        return line.to_string();
    };
    let mut out = String::with_capacity(line.len() + 16);
    out.push_str(head);
    out.push_str("|#{");
    for (i, tag) in tags.split(',').enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let (key, value) = tag.split_once(':').unwrap_or((tag, ""));
        push_python_str(&mut out, key);
        out.push_str(": ");
        push_python_str(&mut out, value);
    }
    out.push('}');
    out
}

/// A Python single-quoted string literal.
fn push_python_str(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

/// The statsd client of `[statsd]`, or `None` when disabled. `dropped` counts lines lost (queue
/// full, send failed). Failing to set up (the host does not resolve) is reported and disables
/// statsd: self-monitoring must not stop the daemon.
pub fn client(config: &StatsdConfig, dropped: &Counter) -> Option<StatsdClient> {
    if !config.enable {
        return None;
    }
    match udp_sink(config) {
        Ok(udp) => {
            let sink = QueuingMetricSink::with_capacity(
                MonascaSink::new(udp, dropped.clone()),
                QUEUE_CAPACITY,
            );
            let on_error = dropped.clone();
            let mut builder = StatsdClient::builder(PREFIX, sink).with_error_handler(move |_| {
                on_error.inc();
            });
            for (key, value) in DIMENSIONS {
                builder = builder.with_tag(key, value);
            }
            Some(builder.build())
        }
        Err(e) => {
            tracing::warn!(
                "statsd disabled: cannot send to [statsd] host {:?} port {}: {e}",
                config.host,
                config.port
            );
            None
        }
    }
}

fn udp_sink(config: &StatsdConfig) -> io::Result<UdpMetricSink> {
    let bind = if config.host.contains(':') && !config.host.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = UdpSocket::bind(bind)?;
    socket.set_nonblocking(true)?;
    UdpMetricSink::from((config.host.as_str(), config.port), socket)
        .map_err(|e| io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_a_python_dict() {
        assert_eq!(
            to_monasca_dialect(
                "monasca.alarms_finished_count:1|c|#service:monitoring,component:monasca-notification"
            ),
            "monasca.alarms_finished_count:1|c|#{'service': 'monitoring', 'component': 'monasca-notification'}"
        );
        assert_eq!(to_monasca_dialect("a:1|c"), "a:1|c");
        assert_eq!(
            to_monasca_dialect("a:1|c|#k:it's"),
            "a:1|c|#{'k': 'it\\'s'}"
        );
    }

    /// Reads one datagram, or fails the test after a generous bound (a lost datagram on
    /// loopback is a bug, not slowness).
    fn receive(socket: &UdpSocket) -> String {
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).expect("a statsd datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn lines_reach_a_real_udp_socket_in_the_monasca_dialect() {
        let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
        agent
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let config = StatsdConfig {
            enable: true,
            host: "127.0.0.1".into(),
            port: agent.local_addr().unwrap().port(),
        };
        let metrics = crate::Metrics::new(&config);
        metrics.alarm_finished();
        assert_eq!(
            receive(&agent),
            "monasca.alarms_finished_count:1|c|#{'service': 'monitoring', 'component': 'monasca-notification'}"
        );
        metrics.sent("webhook", std::time::Duration::from_millis(12));
        assert_eq!(
            receive(&agent),
            "monasca.sent_webhook_count:1|c|#{'service': 'monitoring', 'component': 'monasca-notification'}"
        );
        assert_eq!(
            receive(&agent),
            "monasca.webhook_time:12|ms|#{'service': 'monitoring', 'component': 'monasca-notification'}"
        );
        metrics.sent("jira", std::time::Duration::from_millis(1));
        assert!(receive(&agent).starts_with("monasca.jira_notifier:1|c|#{"));
        assert!(receive(&agent).starts_with("monasca.jira_time:1|ms|#{"));
        metrics.sent("email", std::time::Duration::from_millis(1));
        assert!(receive(&agent).starts_with("monasca.sent_smtp_count:1|c|#{"));
    }

    #[test]
    fn an_unreachable_agent_costs_nothing_but_a_count() {
        // Nothing listens on this port: sends fail (or vanish) without blocking the caller.
        let config = StatsdConfig {
            enable: true,
            host: "127.0.0.1".into(),
            port: 9,
        };
        let metrics = crate::Metrics::new(&config);
        for _ in 0..10_000 {
            metrics.alarm_finished();
        }
        assert!(
            metrics
                .encode()
                .contains("monasca_notification_alarms_finished_total 10000")
        );
    }
}
