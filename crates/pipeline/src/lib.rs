//! The pipeline stages of both engines, and the engines composed from them.
//!
//! The path of one alarm reads top to bottom in [`notify`]: consume → parse → check → look up
//! → send → record → commit. The retry and periodic paths in [`retry`] and [`periodic`] reuse
//! the same stages from [`stages`]; every send goes through [`destinations`], which keeps one
//! slow or dead destination from taking the slots of all the others. [`engine`] is the loop both daemons share: it consumes,
//! keeps the messages of one alarm in order ([`dispatch`]), commits finished work, watches the
//! brokers, and shuts down cleanly. [`daemon`] is everything a binary does, so that the
//! binaries stay a few lines; [`commands`] holds its `check-config` and `send-test`
//! subcommands; [`dev`] is the one-command demo (`--dev`). [`admin`] starts the admin HTTP
//! server and feeds it from the engine.

pub mod admin;
pub mod commands;
pub mod daemon;
pub mod destinations;
pub mod dev;
pub mod dispatch;
pub mod engine;
pub mod notify;
pub mod periodic;
pub mod retry;
pub mod stages;

pub use engine::{EngineError, EngineKind, Services};
