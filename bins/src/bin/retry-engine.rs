//! `retry-engine`: retries failed notifications and repeats periodic ones.
//! Everything is in the `monasca-pipeline` crate; see docs/ARCHITECTURE.md.

fn main() -> std::process::ExitCode {
    monasca_pipeline::daemon::main(monasca_pipeline::EngineKind::Retry)
}
