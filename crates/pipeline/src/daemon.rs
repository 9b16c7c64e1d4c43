//! What a daemon does from `main`: flags, logging, configuration, signals, exit codes.
//!
//! Without a subcommand the binary runs its engine; `check-config` and `send-test` (the same
//! in both binaries) are parsed here and run by [`crate::commands`].
//!
//! Exit codes: 0 after a clean shutdown; 2 when the configuration is wrong; 1 when the engine
//! cannot go on (Kafka unreachable past its bound, a setup failure). Each failure is reported
//! as clear lines on stderr, for the supervisor's log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::commands::Command;
use crate::engine::{self, EngineKind, Services};

/// Flags common to both daemons.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Instead of running the daemon: check the configuration, or send a test notification.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The configuration file, with the original's sections and keys: TOML (see
    /// etc/notification.toml), or the original's oslo INI notification.conf as it is (a name
    /// with a .conf, .ini or .cfg part; see docs/migration.md). Without it, the built-in
    /// defaults and the environment (MONASCA_NOTIFICATION_<SECTION>__<KEY>) are used.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run a self-contained demo: both engines, an in-process Kafka-protocol broker, methods
    /// from a file, a local webhook receiver and a stream of sample alarms. Needs neither
    /// Kafka nor MySQL.
    #[arg(long)]
    pub dev: bool,

    /// Log format on stderr. The level comes from RUST_LOG, else [logging] level (default:
    /// info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Sets up tracing on stderr, the level from `RUST_LOG` (default `default_level`).
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only on a terminal: under systemd or Kubernetes the escapes would end up in
    // the log store.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The whole life of a daemon binary.
pub fn main(kind: EngineKind) -> ExitCode {
    let about = match kind {
        EngineKind::Notification => {
            "Reads Monasca alarm transitions from Kafka and sends their notifications."
        }
        EngineKind::Retry => "Retries failed Monasca notifications and repeats periodic ones.",
    };
    let matches = Args::command().name(kind.name()).about(about).get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    // The demo tells its story on stdout; its failures are on purpose, so only errors are
    // logged unless RUST_LOG asks for more. The subcommands print their own report.
    // Otherwise the level is read from the configuration before it is fully checked (a bad
    // file is reported by run_daemon), so that logging is up before anything else happens.
    let early = if args.dev || args.command.is_some() {
        None
    } else {
        monasca_config::load(args.config.as_deref()).ok()
    };
    let level = match &early {
        _ if args.dev || args.command.is_some() => "error",
        Some(config) => &config.logging.level,
        None => "info",
    };
    init_logging(args.log_format, level);
    let workers = early.map_or(1, |config| config.engine.worker_threads.max(1));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", kind.name());
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        if let Some(command) = args.command {
            return crate::commands::run(kind, command).await;
        }
        if args.dev {
            return match crate::dev::run(args.config.as_deref()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{}: --dev: {e:#}", kind.name());
                    ExitCode::FAILURE
                }
            };
        }
        run_daemon(kind, args.config).await
    });
    // librdkafka's blocking calls (a commit to a coordinator that went away) have no timeout
    // of their own; the process must still exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    code
}

async fn run_daemon(kind: EngineKind, config_file: Option<PathBuf>) -> ExitCode {
    let name = kind.name();
    let config = match crate::commands::load_config(config_file.as_deref()) {
        Ok((config, warnings)) => {
            for warning in warnings {
                tracing::warn!("configuration: {warning}");
            }
            config
        }
        Err(e) => {
            for problem in &e.problems {
                eprintln!("{name}: configuration: {problem}");
            }
            return ExitCode::from(2);
        }
    };
    let store = match monasca_store::open(&config).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let services = match Services::new(config, store, shutdown) {
        Ok(services) => services,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if kind == EngineKind::Notification {
        spawn_register_types(services.clone());
    }
    if let Err(e) = crate::admin::start(kind, &services).await {
        eprintln!("{name}: {e}");
        return ExitCode::FAILURE;
    }
    match engine::run(kind, services).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Inserts the enabled notifier types into `notification_method_type`, waiting for the
/// database if it is not there yet.
pub fn spawn_register_types(services: std::sync::Arc<Services>) {
    tokio::spawn(async move {
        let types: Vec<String> = services
            .notifiers
            .kinds()
            .iter()
            .map(|k| k.to_ascii_uppercase())
            .collect();
        let registered = crate::stages::from_store(&services, "registering notifier types", || {
            services.store.ensure_method_types(&types)
        })
        .await;
        if registered.is_ok() {
            tracing::info!(?types, "notifier types registered");
        }
    });
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
pub fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    tracing::error!("cannot listen for SIGTERM: {e}");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = terminate => tracing::info!("SIGTERM: finishing in-flight work"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing in-flight work"),
        }
        shutdown.cancel();
    });
}
