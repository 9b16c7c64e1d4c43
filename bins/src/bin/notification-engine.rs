//! `notification-engine`: reads alarm transitions and sends their notifications.
//! Everything is in the `monasca-pipeline` crate; see docs/ARCHITECTURE.md.

fn main() -> std::process::ExitCode {
    monasca_pipeline::daemon::main(monasca_pipeline::EngineKind::Notification)
}
