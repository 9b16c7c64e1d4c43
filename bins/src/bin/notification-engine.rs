//! `notification-engine`: reads alarm transitions and sends their notifications.
//! Everything is in the `monasca-pipeline` crate; see docs/ARCHITECTURE.md.

/// mimalloc instead of glibc's malloc: the engines allocate and free many small, short-lived
/// buffers across threads, where glibc spent a quarter of the engine's instructions and kept
/// per-thread arenas that inflated RSS (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    monasca_pipeline::daemon::main(monasca_pipeline::EngineKind::Notification)
}
