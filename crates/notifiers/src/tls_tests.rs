//! TLS verification of the HTTP notifiers, against a local HTTPS server whose certificate is
//! signed by a CA made up for the test: unknown by default (a retryable failure), trusted
//! through `ca_certs`, or not checked at all with `insecure`.
//!
//! Shown with `pagerduty_v2`; every notifier builds its client with [`crate::http::client`],
//! so the others behave the same.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use monasca_config::PagerdutyV2NotifierConfig;
use monasca_model::{AlarmTransition, Notification, NotificationMethod};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pagerduty_v2::PagerdutyV2Notifier;
use crate::{Notifier, SendOutcome};

/// A CA's PEM, and the address of an HTTPS server with a leaf it signed for 127.0.0.1 and
/// localhost, answering every request 202 and counting the ones it answered.
struct Server {
    ca_pem: String,
    url: String,
    answered: Arc<AtomicUsize>,
}

async fn https_server() -> Server {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "monasca test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let count = count.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to answer.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if read_request(&mut tls).await.is_some() {
                    let answer =
                        b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    if tls.write_all(answer).await.is_ok() {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    Server {
        ca_pem: ca_cert.pem(),
        url: format!("https://127.0.0.1:{port}/v2/enqueue"),
        answered,
    }
}

/// Reads one HTTP/1.1 request (head and `content-length` body); `None` if the peer went away.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(data);
            }
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
}

fn notification() -> Notification {
    let msg = json!({"alarm-transitioned": {
        "tenantId": "t", "alarmId": "a1", "alarmDefinitionId": "d1", "alarmName": "n",
        "alarmDescription": null, "oldState": "OK", "newState": "ALARM", "actionsEnabled": true,
        "stateChangeReason": "r", "severity": "LOW", "link": null, "lifecycleState": null,
        "metrics": [], "timestamp": 1556703552000u64
    }});
    Notification::new(
        NotificationMethod {
            id: "m1".into(),
            name: "pd".into(),
            kind: "pagerduty_v2".into(),
            address: "routing-key".into(),
            period: 0,
        },
        Arc::new(AlarmTransition::parse(msg.to_string().as_bytes()).unwrap()),
    )
}

fn notifier(config: PagerdutyV2NotifierConfig) -> PagerdutyV2Notifier {
    PagerdutyV2Notifier::new(&PagerdutyV2NotifierConfig {
        timeout: 5,
        ..config
    })
    .unwrap()
}

#[tokio::test]
async fn unknown_ca_is_a_retryable_failure() {
    let server = https_server().await;
    let outcome = notifier(PagerdutyV2NotifierConfig {
        url: server.url.clone(),
        ..PagerdutyV2NotifierConfig::default()
    })
    .send(&notification())
    .await;
    let SendOutcome::Failed(failure) = outcome else {
        panic!("a certificate of an unknown CA must not be accepted")
    };
    assert!(failure.retryable);
    assert!(
        failure.reason.to_ascii_lowercase().contains("certificate"),
        "{}",
        failure.reason
    );
    assert_eq!(server.answered.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn ca_certs_makes_the_server_trusted() {
    let server = https_server().await;
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(server.ca_pem.as_bytes()).unwrap();
    let outcome = notifier(PagerdutyV2NotifierConfig {
        url: server.url.clone(),
        ca_certs: Some(ca_file.path().to_path_buf()),
        ..PagerdutyV2NotifierConfig::default()
    })
    .send(&notification())
    .await;
    assert_eq!(outcome, SendOutcome::Sent);
    assert_eq!(server.answered.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn insecure_skips_verification() {
    let server = https_server().await;
    let outcome = notifier(PagerdutyV2NotifierConfig {
        url: server.url.clone(),
        insecure: true,
        ..PagerdutyV2NotifierConfig::default()
    })
    .send(&notification())
    .await;
    assert_eq!(outcome, SendOutcome::Sent);
    assert_eq!(server.answered.load(Ordering::SeqCst), 1);
}
