//! Runs the example program against a real HTTP receiver on loopback: what an outside service
//! embedding the notifier crate would see for a delivered, a retryable and a hopeless send.

use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

/// A webhook receiver that answers `status` and keeps the JSON bodies it was sent.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let seen = seen.clone();
            async move {
                if let Ok(value) = serde_json::from_str(&body) {
                    seen.lock().expect("receiver lock").push(value);
                }
                StatusCode::from_u16(status).expect("a valid status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), bodies)
}

/// Runs the example with `args`, without any MONASCA_NOTIFICATION_* variable of the caller
/// but the loopback allowance.
async fn example(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_send-notification"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MONASCA_NOTIFICATION_") {
            command.env_remove(name);
        }
    }
    // The receiver is on loopback, which the destination guard refuses unless allowed.
    command
        .env(
            "MONASCA_NOTIFICATION_DESTINATIONS__ALLOW",
            r#"["127.0.0.0/8"]"#,
        )
        .args(args)
        .output()
        .await
        .expect("the example binary runs")
}

#[tokio::test]
async fn delivers_the_alarm_as_a_monasca_webhook_body() {
    let (url, bodies) = receiver(200).await;

    let output = example(&["--url", &url, "--state", "ALARM"]).await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {stdout} stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("sent: webhook"), "{stdout}");
    let bodies = bodies.lock().expect("receiver lock").clone();
    assert_eq!(bodies.len(), 1, "exactly one POST: {bodies:?}");
    assert_eq!(bodies[0]["alarm_id"], "example-alarm-1");
    assert_eq!(bodies[0]["state"], "ALARM");
    assert_eq!(bodies[0]["old_state"], "OK");
    assert_eq!(bodies[0]["message"], "disk usage 93% > 90% on host web-1");
}

#[tokio::test]
async fn reports_a_server_error_as_worth_retrying() {
    let (url, _) = receiver(503).await;

    let output = example(&["--url", &url]).await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("worth retrying") && stdout.contains("503"),
        "{stdout}"
    );
}

#[tokio::test]
async fn reports_a_client_error_as_failed_for_good() {
    let (url, _) = receiver(404).await;

    let output = example(&["--url", &url]).await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("failed for good") && stdout.contains("404"),
        "{stdout}"
    );
}

#[tokio::test]
async fn refuses_an_unknown_notifier_type_with_exit_2() {
    let output = example(&[
        "--url",
        "http://127.0.0.1:9/hook",
        "--kind",
        "carrier-pigeon",
    ])
    .await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("carrier-pigeon"),
        "the error names the type: {stderr}"
    );
}
