//! The command line as an operator uses it: `check-config` and `send-test` run as the built
//! binaries, and a daemon started from an original-style oslo INI `notification.conf`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;

const SECS: Duration = Duration::from_secs(1);

/// Runs a built binary with `args` (and extra environment variables) to completion.
async fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run the binary")
}

/// stdout and stderr of `output`, for assertions and failure messages.
fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `etc/notification.conf.sample` from the workspace root.
fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/notification.conf.sample")
}

/// A configuration with only the webhook notifier, written as `name` in `dir`.
fn webhook_only(dir: &tempfile::TempDir, name: &str, extra: &str) -> PathBuf {
    let path = dir.path().join(name);
    let text = format!(
        "[kafka]\ngroup = \"from-the-file\"\n\n[notification_types]\nenabled = [\"webhook\"]\n\n\
         [destinations]\nallow = [\"127.0.0.0/8\"]\n\n\
         [webhook_notifier]\ntimeout = 2\n{extra}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The effective configuration part of `check-config`'s output (after its `#` header).
fn effective(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|line| line.starts_with('#') || line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn help_explains_every_flag_and_version_prints() {
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["-h"],
            &[
                "check-config",
                "send-test",
                "--config",
                "--dev",
                "--log-format",
                "--version",
            ],
        ),
        (&["check-config", "-h"], &["--config"]),
        (
            &["send-test", "-h"],
            &["--config", "--method-id", "--type", "--address", "--state"],
        ),
    ];
    for binary in [NOTIFICATION_ENGINE, RETRY_ENGINE] {
        for (args, flags) in cases {
            let output = run(binary, args, &[]).await;
            let (stdout, stderr) = texts(&output);
            assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
            for flag in flags {
                // `-h` puts each flag and its explanation on one line.
                let explained = stdout.lines().any(|line| {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    words.iter().any(|w| w.trim_end_matches(',') == *flag)
                        && words.iter().filter(|w| !w.starts_with(['-', '<'])).count() >= 2
                });
                assert!(explained, "{args:?}: {flag} not explained in\n{stdout}");
            }
        }
        let output = run(binary, &["--version"], &[]).await;
        let (stdout, _) = texts(&output);
        assert_eq!(output.status.code(), Some(0));
        assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_prints_the_effective_configuration_of_a_good_toml_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = webhook_only(
        &dir,
        "notification.toml",
        "[zookeeper]\nurl = \"zk:2181\"\n",
    );
    let file_arg = file.to_str().unwrap();
    let output = run(
        NOTIFICATION_ENGINE,
        &["check-config", "--config", file_arg],
        &[("MONASCA_NOTIFICATION_RETRY_ENGINE__MAX_ATTEMPTS", "7")],
    )
    .await;
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("# configuration file: {file_arg}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("# read as: TOML (from the file name)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("MONASCA_NOTIFICATION_RETRY_ENGINE__MAX_ATTEMPTS"),
        "{stdout}"
    );
    assert!(stdout.contains("# notifiers: webhook\n"), "{stdout}");
    assert!(stdout.contains("[zookeeper] url (from file"), "{stdout}");
    let config = effective(&stdout);
    assert!(config.contains("group = \"from-the-file\""), "{config}");
    assert!(config.contains("max_attempts = 7"), "{config}");
    assert!(config.contains("passwd = \"****\""), "{config}");

    // The output is itself a configuration file: checked again, it says the same (the
    // environment variable now baked in).
    let again = dir.path().join("effective.toml");
    std::fs::write(&again, &stdout).unwrap();
    let output = run(
        RETRY_ENGINE,
        &["check-config", "--config", again.to_str().unwrap()],
        &[],
    )
    .await;
    let (stdout2, stderr2) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout2}\n{stderr2}");
    assert_eq!(effective(&stdout2), config);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_lists_every_problem_of_a_broken_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "[kafka]\nalarm_topic = \"\"\n[mysql]\nport = \"abc\"\n[retry_engine]\ninterval = 0\n\
         [notification_types]\nenabled = \"webhook,fax\"\n",
    )
    .unwrap();
    let output = run(
        NOTIFICATION_ENGINE,
        &["check-config", "--config", file.to_str().unwrap()],
        &[],
    )
    .await;
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    for part in [
        "[kafka] alarm_topic = \"\"",
        "[mysql] port = \"abc\"",
        "[retry_engine] interval = 0",
        "unknown notifier type \"fax\"",
        "4 configuration problem(s)",
    ] {
        assert!(stderr.contains(part), "{part:?} missing in:\n{stderr}");
    }
    assert!(effective(&stdout).is_empty(), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_reads_the_originals_ini_and_masks_its_secrets() {
    let output = run(
        NOTIFICATION_ENGINE,
        &["check-config", "--config", sample().to_str().unwrap()],
        &[("MONASCA_NOTIFICATION_KAFKA__GROUP", "from-env")],
    )
    .await;
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("# read as: oslo INI"), "{stdout}");
    // Mapped keys, typed: a comma list, a dict, an oslo boolean.
    let config = effective(&stdout);
    assert!(
        config.contains("url = \"kafka-1.example.com:9092,kafka-2.example.com:9092\""),
        "{config}"
    );
    assert!(
        config.contains("60 = \"60-seconds-notifications\""),
        "{config}"
    );
    assert!(config.contains("enabled = [\"email\", \"pagerduty\", \"webhook\", \"slack\"]"));
    assert!(config.contains("group = \"from-env\""), "{config}");
    // Ignored keys: one warning each, with the line.
    assert_eq!(
        stdout.matches("[zookeeper] url (from file").count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains("notification.conf.sample:101): ignored"),
        "{stdout}"
    );
    // Secrets.
    assert!(config.contains("passwd = \"****\""), "{config}");
    for secret in ["Sample-DB-Passw0rd", "Sample-Keystone-Passw0rd"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn send_test_to_an_address_delivers_a_labelled_sample() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = webhook_only(&dir, "notification.toml", "");
    let url = receiver.url("hook");
    let output = run(
        RETRY_ENGINE,
        &[
            "send-test",
            "--config",
            config.to_str().unwrap(),
            "--type",
            "webhook",
            "--address",
            &url,
            "--state",
            "ok",
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sent: the webhook notifier delivered it"),
        "{stdout}"
    );
    let bodies = receiver.bodies("hook");
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["alarm_name"], "monasca-notification send-test");
    assert_eq!(bodies[0]["state"], "OK");
    assert_eq!(bodies[0]["old_state"], "ALARM");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_test_to_a_stored_method_by_id() {
    let receiver = Receiver::start().await;
    let db = TestDatabase::new().await.unwrap();
    db.add_method("m-cli", "ops hook", "WEBHOOK", &receiver.url("ops"), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, "127.0.0.1:9", &db);
    let config_arg = config.to_str().unwrap();

    let output = run(
        NOTIFICATION_ENGINE,
        &["send-test", "--config", config_arg, "--method-id", "m-cli"],
        &[],
    )
    .await;
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("method m-cli (\"ops hook\")"), "{stdout}");
    let bodies = receiver.bodies("ops");
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["alarm_name"], "monasca-notification send-test");
    assert_eq!(bodies[0]["state"], "ALARM");

    // An id that is not there: a clear message, exit 1, nothing sent.
    let output = run(
        NOTIFICATION_ENGINE,
        &[
            "send-test",
            "--config",
            config_arg,
            "--method-id",
            "no-such",
        ],
        &[],
    )
    .await;
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("no notification method with id \"no-such\" in MySQL"),
        "{stderr}"
    );
    assert!(stderr.contains(db.name()), "{stderr}");
    assert_eq!(receiver.bodies("ops").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn send_test_to_a_failing_endpoint_exits_1_with_the_reason() {
    let receiver = Receiver::start().await;
    receiver.answer("down", 503);
    receiver.answer("gone", 404);
    let dir = tempfile::tempdir().unwrap();
    let config = webhook_only(&dir, "notification.toml", "");
    let config_arg = config.to_str().unwrap();
    for (path, words) in [
        (
            "down",
            [
                "503",
                "retryable: the engine would put it on the retry topic",
            ],
        ),
        (
            "gone",
            [
                "404",
                "not retryable: the engine would send it to the dead-letter",
            ],
        ),
    ] {
        let url = receiver.url(path);
        let args = [
            "send-test",
            "--config",
            config_arg,
            "--type",
            "webhook",
            "--address",
            &url,
        ];
        let output = run(NOTIFICATION_ENGINE, &args, &[]).await;
        let (stdout, stderr) = texts(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stdout.contains("failed: "), "{stdout}");
        for word in words {
            assert!(stdout.contains(word), "{word:?} missing in {stdout}");
        }
        assert_eq!(receiver.bodies(path).len(), 1, "the endpoint was called");
    }

    // A type that is not enabled is refused the way the engine refuses it.
    let url = receiver.url("hook");
    let args = [
        "send-test",
        "--config",
        config_arg,
        "--type",
        "slack",
        "--address",
        &url,
    ];
    let output = run(NOTIFICATION_ENGINE, &args, &[]).await;
    let (stdout, stderr) = texts(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("\"slack\" is not enabled"), "{stdout}");
    assert!(receiver.bodies("hook").is_empty());
}

/// The original's class path of its MySQL repository, as deployments have it.
const MYSQL_REPO: &str = "monasca_notification.common.repositories.mysql.mysql_repo:MysqlRepo";

/// The original's INI file, pointing at the test's broker and database.
fn ini_config(dir: &tempfile::TempDir, bootstrap: &str, db: &TestDatabase) -> PathBuf {
    let mysql = db.mysql_config();
    let text = format!(
        "[DEFAULT]\ndebug = True\n\n\
         [kafka]\nurl = {bootstrap}\ngroup = monasca-notification\n\
         periodic = 2:{PERIODIC_TOPIC}\nmax_offset_lag = 600\n\n\
         [mysql]\nhost = {host}\nport = {port}\nuser = {user}\npasswd = {passwd}\ndb = {name}\n\n\
         [database]\nrepo_driver = {MYSQL_REPO}\n\n\
         [notification_types]\nenabled = webhook\n\n\
         [webhook_notifier]\ntimeout = 2\n\n\
         [destinations]\nallow = 127.0.0.0/8\n\n\
         [engine]\ncommit_interval = 0.2\nshutdown_timeout = 10\n\n\
         [zookeeper]\nurl = 127.0.0.1:2181\n",
        host = mysql.host,
        port = mysql.port,
        user = mysql.user,
        passwd = mysql.passwd,
        name = mysql.db,
    );
    let path = dir.path().join("notification.conf");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_from_the_originals_ini_file() {
    let cluster = kafka();
    let bootstrap = cluster.bootstrap_servers();
    let db = TestDatabase::new().await.unwrap();
    let receiver = Receiver::start().await;
    db.add_method("m-ini", "ini hook", "WEBHOOK", &receiver.url("ini"), 0)
        .await
        .unwrap();
    db.attach("def-ini", "ALARM", "m-ini").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ini_config(&dir, &bootstrap, &db);
    let mut engine = Daemon::start(NOTIFICATION_ENGINE, &config, &dir);
    let producer = producer(&bootstrap);
    let msg = alarm(
        "alarm-ini",
        "def-ini",
        "OK",
        "ALARM",
        "from an INI-configured engine",
    );
    produce(
        &producer,
        ALARM_TOPIC,
        "alarm-ini",
        msg.to_string().as_bytes(),
    )
    .await;

    let bodies = receiver.wait_for("ini", 1, 30 * SECS).await;
    assert_eq!(bodies.len(), 1, "{}", engine.log_text());
    assert_eq!(bodies[0]["message"], "from an INI-configured engine");
    let mut sent = TopicReader::new(&bootstrap, NOTIFICATION_TOPIC);
    let records = sent.wait_for(1, 20 * SECS).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].json()["id"], "m-ini");

    assert!(
        engine.terminate(20 * SECS).success(),
        "{}",
        engine.log_text()
    );
    // The ignored keys were logged once each at start.
    let log = engine.log_text();
    for key in [
        "[zookeeper] url",
        "[kafka] max_offset_lag",
        "[DEFAULT] debug",
    ] {
        assert_eq!(log.matches(key).count(), 1, "{key} in:\n{log}");
    }
    drop(cluster);
}
