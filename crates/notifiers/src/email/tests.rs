//! Tests of the email notifier: the text of every variant against literal strings from the
//! spec, and whole sends against a small but real SMTP server on 127.0.0.1 (below), whose
//! received messages are decoded with `mail-parser`.

use super::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use monasca_model::NotificationMethod;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn alarm(metrics: Value, link: Value, lifecycle: Value) -> AlarmTransition {
    let msg = json!({"alarm-transitioned": {
        "tenantId": "t", "alarmId": "20a54a65-44b8-4ac9-a398-1f2d888827d2",
        "alarmDefinitionId": "d1", "alarmName": "dummy_alarm", "alarmDescription": null,
        "oldState": "OK", "newState": "ALARM", "actionsEnabled": true,
        "stateChangeReason": "Thresholds were EXCEEDED for the sub-alarms",
        "severity": "LOW", "link": link, "lifecycleState": lifecycle,
        "metrics": metrics, "timestamp": 1556703552999u64
    }});
    AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()
}

fn one_host_with_target() -> AlarmTransition {
    alarm(
        json!([{"id": null, "name": "ping.status",
                "dimensions": {"hostname": "web-1", "target_host": "db-1", "service": "x"}}]),
        json!("http://link.example/a"),
        json!("OPEN"),
    )
}

fn one_host() -> AlarmTransition {
    alarm(
        json!([{"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": "web-1", "service": "compute"}},
               {"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": "web-1"}}]),
        Value::Null,
        Value::Null,
    )
}

fn two_hosts() -> AlarmTransition {
    alarm(
        json!([{"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": "web-1", "service": "compute"}},
               {"id": null, "name": "cpu.user_perc", "dimensions": {"hostname": "db-1"}}]),
        Value::Null,
        Value::Null,
    )
}

const GRAFANA: &str = "http://grafana:3000";

#[test]
fn asctime_pads_the_day_with_a_space() {
    assert_eq!(asctime(1556703552), "Wed May  1 09:39:12 2019");
    assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
    assert_eq!(asctime(951782400), "Tue Feb 29 00:00:00 2000");
    assert_eq!(asctime(1735689599), "Tue Dec 31 23:59:59 2024");
}

#[test]
fn one_host_and_a_target() {
    let text = compose(&one_host_with_target(), Some(GRAFANA));
    assert_eq!(
        text.subject,
        "ALARM LOW \"dummy_alarm\" for Host: web-1 Target: db-1"
    );
    assert_eq!(
        text.body,
        "On host \"web-1\" for target \"db-1\" thresholds were exceeded for the sub-alarms\n\
         \n\
         Alarm \"dummy_alarm\" transitioned to the ALARM state at Wed May  1 09:39:12 2019 UTC\n\
         alarm_id: 20a54a65-44b8-4ac9-a398-1f2d888827d2\n\
         \n\
         Lifecycle state: OPEN\n\
         Link: http://link.example/a\n\
         Link to Grafana: http://grafana:3000/dashboard/script/drilldown.js?metric=ping.status&hostname=web-1&target_host=db-1&service=x&from=1556702952000&to=1556704152000\n\
         \n\
         With dimensions:\n\
         [\n  {\n    hostname: web-1,\n    target_host: db-1,\n    service: x\n  } \n]"
    );
}

#[test]
fn one_host_without_target() {
    let text = compose(&one_host(), None);
    assert_eq!(text.subject, "ALARM LOW \"dummy_alarm\" for Host: web-1");
    assert_eq!(
        text.body,
        "On host \"web-1\" thresholds were exceeded for the sub-alarms\n\
         \n\
         Alarm \"dummy_alarm\" transitioned to the ALARM state at Wed May  1 09:39:12 2019 UTC\n\
         alarm_id: 20a54a65-44b8-4ac9-a398-1f2d888827d2\n\
         \n\
         Lifecycle state: None\n\
         Link: None\n\
         Link to Grafana: None\n\
         \n\
         With dimensions:\n\
         [\n  {\n    hostname: web-1,\n    service: compute\n  },\n  {\n    hostname: web-1\n  } \n]"
    );
}

#[test]
fn multiple_hosts_keep_the_originals_quirks() {
    let text = compose(&two_hosts(), Some(GRAFANA));
    assert_eq!(text.subject, "ALARM LOW \"dummy_alarm\" ");
    assert_eq!(
        text.body,
        "On multiple hosts thresholds were exceeded for the sub-alarms\n\
         \n\
         Alarm \"dummy_alarm\" transitioned to the ALARM state at Wed May  1 09:39:12 2019 UTC\n\
         Alarm_id: 20a54a65-44b8-4ac9-a398-1f2d888827d2\n\
         \n\
         Lifecycle state: None\n\
         Link: None\n\
         Link to Grafana: http://grafana:3000/dashboard/script/drilldown.js?metric=cpu.user_perc&hostname=web-1&service=compute&from=1556702952000&to=1556704152000\n\
         \n\
         With dimensions\n\
         [\n  {\n    hostname: web-1,\n    service: compute\n  },\n  {\n    hostname: db-1\n  } \n]"
    );
}

#[test]
fn the_spec_dimensions_example() {
    let metrics = json!([{"dimensions": {"hostname": "web-1", "service": "compute"}},
                         {"dimensions": {"hostname": "db-1"}}]);
    assert_eq!(
        dimensions(metrics.as_array().unwrap()),
        "[\n  {\n    hostname: web-1,\n    service: compute\n  },\n  {\n    hostname: db-1\n  } \n]"
    );
}

#[test]
fn no_metrics_is_the_multiple_hosts_variant_without_grafana() {
    let text = compose(&alarm(json!([]), Value::Null, Value::Null), Some(GRAFANA));
    assert_eq!(text.subject, "ALARM LOW \"dummy_alarm\" ");
    assert_eq!(
        text.body,
        "On multiple hosts thresholds were exceeded for the sub-alarms\n\
         \n\
         Alarm \"dummy_alarm\" transitioned to the ALARM state at Wed May  1 09:39:12 2019 UTC\n\
         Alarm_id: 20a54a65-44b8-4ac9-a398-1f2d888827d2\n\
         \n\
         Lifecycle state: None\n\
         Link: None\n\
         Link to Grafana: None\n\
         \n\
         With dimensions\n\
         [\n \n]"
    );
}

#[test]
fn no_hostname_is_the_multiple_hosts_variant_and_targets_use_the_first() {
    let a = alarm(
        json!([{"name": "m", "dimensions": {"service": "x"}}]),
        Value::Null,
        Value::Null,
    );
    assert_eq!(compose(&a, None).subject, "ALARM LOW \"dummy_alarm\" ");
    let a = alarm(
        json!([{"name": "m", "dimensions": {"hostname": "h", "target_host": "t1"}},
               {"name": "m", "dimensions": {"hostname": "h", "target_host": "t2"}}]),
        Value::Null,
        Value::Null,
    );
    assert_eq!(
        compose(&a, None).subject,
        "ALARM LOW \"dummy_alarm\" for Host: h Target: t1"
    );
}

// ---- a real SMTP server -------------------------------------------------------------------

/// One mail as the server received it.
#[derive(Debug, Clone)]
struct Received {
    mail_from: String,
    rcpt_to: Vec<String>,
    data: Vec<u8>,
}

/// How the test server behaves.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    /// Answer every RCPT with this line instead of 250.
    reject_rcpt: Option<&'static str>,
    /// Close the connection right after accepting a mail.
    close_after_mail: bool,
}

struct SmtpServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    mails: Arc<Mutex<Vec<Received>>>,
}

/// Starts an SMTP server on 127.0.0.1 that speaks EHLO/HELO, MAIL, RCPT, DATA (with
/// dot-unstuffing), RSET, NOOP and QUIT, and records connections and mails.
async fn smtp_server(behaviour: Behaviour) -> SmtpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let mails = Arc::new(Mutex::new(Vec::new()));
    let (count, store) = (connections.clone(), mails.clone());
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let store = store.clone();
            tokio::spawn(async move {
                let _ = session(socket, behaviour, store).await;
            });
        }
    });
    SmtpServer {
        addr,
        connections,
        mails,
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    behaviour: Behaviour,
    store: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let mut current = Received {
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        data: Vec::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                write
                    .write_all(b"250-test.local\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?
            }
            "HELO" => write.write_all(b"250 test.local\r\n").await?,
            "MAIL" => {
                current.mail_from = command[10..].to_string();
                current.rcpt_to.clear();
                write.write_all(b"250 2.1.0 Ok\r\n").await?;
            }
            "RCPT" => match behaviour.reject_rcpt {
                Some(answer) => write.write_all(format!("{answer}\r\n").as_bytes()).await?,
                None => {
                    current.rcpt_to.push(command[8..].to_string());
                    write.write_all(b"250 2.1.5 Ok\r\n").await?;
                }
            },
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if read.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    let unstuffed = if raw.starts_with(b"..") {
                        &raw[1..]
                    } else {
                        &raw[..]
                    };
                    data.extend_from_slice(unstuffed);
                }
                current.data = data;
                store.lock().unwrap().push(current.clone());
                write.write_all(b"250 2.0.0 Ok: queued\r\n").await?;
                if behaviour.close_after_mail {
                    write.shutdown().await?;
                    return Ok(());
                }
            }
            "RSET" | "NOOP" => write.write_all(b"250 2.0.0 Ok\r\n").await?,
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"502 5.5.2 Error\r\n").await?,
        }
    }
}

fn config(port: u16) -> EmailNotifierConfig {
    EmailNotifierConfig {
        server: "127.0.0.1".into(),
        port,
        timeout: 2,
        from_addr: Some("monasca@example.com".into()),
        grafana_url: Some(GRAFANA.into()),
        ..EmailNotifierConfig::default()
    }
}

fn notification(alarm: AlarmTransition, address: &str) -> Notification {
    Notification::new(
        NotificationMethod {
            id: "m-7".into(),
            name: "mail".into(),
            kind: "email".into(),
            address: address.into(),
            period: 0,
        },
        Arc::new(alarm),
    )
}

/// Checks a received mail against the composed text, after decoding it.
fn assert_received(received: &Received, expected: &EmailText, to: &str) {
    let message = mail_parser::MessageParser::default()
        .parse(&received.data)
        .expect("a parsable message");
    assert_eq!(message.subject(), Some(expected.subject.as_str()));
    let from = message.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.address(), Some("monasca@example.com"));
    let rcpt = message.to().and_then(|a| a.first()).unwrap();
    assert_eq!(rcpt.address(), Some(to));
    assert!(message.date().is_some(), "Date header");
    assert_eq!(
        message.body_text(0).as_deref(),
        Some(expected.body.as_str()),
        "decoded body"
    );
    let headers = String::from_utf8_lossy(&received.data).to_ascii_lowercase();
    assert!(headers.contains("content-type: text/plain; charset=utf-8"));
    assert_eq!(received.mail_from, "<monasca@example.com>");
    assert_eq!(received.rcpt_to, [format!("<{to}>")]);
}

#[tokio::test]
async fn every_variant_arrives_as_composed() {
    let server = smtp_server(Behaviour::default()).await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    let alarms = [
        one_host_with_target(),
        one_host(),
        two_hosts(),
        alarm(json!([]), Value::Null, Value::Null),
    ];
    for (i, a) in alarms.iter().enumerate() {
        let expected = compose(a, Some(GRAFANA));
        let outcome = notifier
            .send(&notification(a.clone(), "ops@example.org"))
            .await;
        assert_eq!(outcome, SendOutcome::Sent, "variant {i}");
        let received = server.mails.lock().unwrap()[i].clone();
        assert_received(&received, &expected, "ops@example.org");
    }
}

#[tokio::test]
async fn non_ascii_text_survives_the_encoding() {
    let server = smtp_server(Behaviour::default()).await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    let mut a = one_host();
    a.alarm_name = "Überlast ✉ on ümlaut-host".into();
    a.state_change_reason = "ÉCHEC: Σ > 1".into();
    let expected = compose(&a, Some(GRAFANA));
    assert!(
        expected
            .body
            .starts_with("On host \"web-1\" échec: σ > 1\n")
    );
    assert_eq!(
        notifier.send(&notification(a, "ops@example.org")).await,
        SendOutcome::Sent
    );
    let received = server.mails.lock().unwrap()[0].clone();
    assert_received(&received, &expected, "ops@example.org");
}

#[tokio::test]
async fn line_breaks_in_the_name_do_not_make_headers() {
    let server = smtp_server(Behaviour::default()).await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    let mut a = one_host();
    a.alarm_name = "x\r\nBcc: victim@example.net\r\nX-Evil: 1".into();
    assert_eq!(
        notifier.send(&notification(a, "ops@example.org")).await,
        SendOutcome::Sent
    );
    let received = server.mails.lock().unwrap()[0].clone();
    let message = mail_parser::MessageParser::default()
        .parse(&received.data)
        .unwrap();
    assert!(message.bcc().is_none());
    let raw = String::from_utf8_lossy(&received.data);
    assert!(
        raw.lines()
            .all(|l| !l.starts_with("Bcc") && !l.starts_with("X-Evil")),
        "{raw}"
    );
    assert!(message.header("X-Evil").is_none());
    assert_eq!(received.rcpt_to, ["<ops@example.org>"]);
}

#[tokio::test]
async fn bad_addresses_fail_for_good_naming_the_method() {
    let server = smtp_server(Behaviour::default()).await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    for address in [
        "not an address",
        "ops@example.org\r\nBcc: victim@example.net",
        "",
    ] {
        let SendOutcome::Failed(f) = notifier.send(&notification(one_host(), address)).await else {
            panic!("{address:?} must fail")
        };
        assert!(!f.retryable, "{address:?}");
        assert!(f.reason.contains("m-7"), "{}", f.reason);
    }
    assert!(server.mails.lock().unwrap().is_empty());
}

#[tokio::test]
async fn sends_reuse_one_connection_and_reconnect_after_a_close() {
    let server = smtp_server(Behaviour::default()).await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    for _ in 0..2 {
        let n = notification(one_host(), "ops@example.org");
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        // lettre parks a used connection back in its pool from a spawned task.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.mails.lock().unwrap().len(), 2);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    let server = smtp_server(Behaviour {
        close_after_mail: true,
        ..Behaviour::default()
    })
    .await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    for _ in 0..2 {
        let n = notification(one_host(), "ops@example.org");
        assert_eq!(notifier.send(&n).await, SendOutcome::Sent);
        // lettre parks a used connection back in its pool from a spawned task.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.mails.lock().unwrap().len(), 2);
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn dead_server_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let notifier = EmailNotifier::new(&config(port)).unwrap();
    let SendOutcome::Failed(f) = notifier
        .send(&notification(one_host(), "ops@example.org"))
        .await
    else {
        panic!("nothing listens")
    };
    assert!(f.retryable, "{}", f.reason);
    assert!(f.reason.contains("m-7"), "{}", f.reason);
}

#[tokio::test]
async fn rejected_recipient_fails_for_good_and_4xx_is_retried() {
    let server = smtp_server(Behaviour {
        reject_rcpt: Some("550 5.1.1 <ops@example.org>: Recipient address rejected"),
        ..Behaviour::default()
    })
    .await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    let SendOutcome::Failed(f) = notifier
        .send(&notification(one_host(), "ops@example.org"))
        .await
    else {
        panic!("550 must fail")
    };
    assert!(!f.retryable, "{}", f.reason);
    assert!(f.reason.contains("550"), "{}", f.reason);

    let server = smtp_server(Behaviour {
        reject_rcpt: Some("451 4.3.0 try again later"),
        ..Behaviour::default()
    })
    .await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    let SendOutcome::Failed(f) = notifier
        .send(&notification(one_host(), "ops@example.org"))
        .await
    else {
        panic!("451 must fail")
    };
    assert!(f.retryable, "{}", f.reason);
}

#[test]
fn configuration_errors_are_reported_at_build() {
    let mut c = config(25);
    c.from_addr = None;
    assert!(EmailNotifier::new(&c).is_err());
    let mut c = config(25);
    c.tls = "maybe".into();
    let e = EmailNotifier::new(&c).err().unwrap();
    assert!(e.to_string().contains("tls"), "{e}");
    for tls in ["none", "starttls", "tls"] {
        let mut c = config(25);
        c.tls = tls.into();
        c.user = Some("u".into());
        c.password = Some("p".into());
        assert!(EmailNotifier::new(&c).is_ok(), "{tls}");
    }
}

/// The header names of a received mail, lower case, in order.
fn header_names(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .map(|line| line.split(':').next().unwrap_or("").to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn tenant_text_with_header_lines_adds_no_header_and_no_recipient() {
    let server = smtp_server(Behaviour::default()).await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    let injected = "\r\nBcc: victim@example.net\r\nX-Evil: 1\r\n\r\nforged body";
    let mut a = alarm(
        json!([{"name": "m", "dimensions": {
            "hostname": format!("web-1{injected}"),
            "target_host": format!("t{injected}"),
        }}]),
        Value::Null,
        Value::Null,
    );
    a.alarm_name = format!("cpu{injected}");
    a.state_change_reason = format!("too hot{injected}\n.\r\nRCPT TO:<victim@example.net>");
    a.alarm_description = Some(format!("d{injected}"));
    a.link = Some(format!("http://x/{injected}"));
    assert_eq!(
        notifier
            .send(&notification(a.clone(), "ops@example.org"))
            .await,
        SendOutcome::Sent
    );
    let received = server.mails.lock().unwrap()[0].clone();
    assert_eq!(received.rcpt_to, ["<ops@example.org>"], "one recipient");
    let names = header_names(&received.data);
    for name in &names {
        assert!(
            [
                "from",
                "to",
                "subject",
                "date",
                "content-type",
                "content-transfer-encoding",
                "mime-version",
                "message-id"
            ]
            .contains(&name.as_str()),
            "unexpected header {name:?} in {names:?}"
        );
    }
    // The text arrives whole, inside the encoded subject and body.
    assert_received(&received, &compose(&a, Some(GRAFANA)), "ops@example.org");
}

#[tokio::test]
async fn hostile_addresses_fail_for_good_and_reach_no_one() {
    let server = smtp_server(Behaviour::default()).await;
    let notifier = EmailNotifier::new(&config(server.addr.port())).unwrap();
    for address in [
        "a@b.c\r\nBcc: x@y.z",
        "a@b.c\nBcc: x@y.z",
        "a@b.c\rBcc: x@y.z",
        "a@b.c, x@y.z",
        "a@b.c; x@y.z",
        "a@b.c x@y.z",
        "a@b.c>\r\nRCPT TO:<x@y.z",
        "<a@b.c>, <x@y.z>",
        "\"Evil\r\nBcc: x@y.z\" <a@b.c>",
        "a@b.c\u{0}x@y.z",
    ] {
        let SendOutcome::Failed(f) = notifier.send(&notification(one_host(), address)).await else {
            panic!("{address:?} must be refused")
        };
        assert!(!f.retryable, "{address:?} must not be retried");
        assert!(f.reason.contains("is not a mail address"), "{}", f.reason);
        assert!(f.reason.contains("method m-7"), "{}", f.reason);
        // The reason goes into a Kafka header and a log line: the line breaks are escaped.
        assert!(
            !f.reason.contains('\r') && !f.reason.contains('\n'),
            "{:?}",
            f.reason
        );
    }
    assert!(server.mails.lock().unwrap().is_empty(), "nothing was sent");

    // A display name is fine, and still one recipient.
    let outcome = notifier
        .send(&notification(one_host(), "\"Ops, on call\" <a@b.c>"))
        .await;
    assert_eq!(outcome, SendOutcome::Sent);
    assert_eq!(server.mails.lock().unwrap()[0].rcpt_to, ["<a@b.c>"]);
}
