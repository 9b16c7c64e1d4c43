//! Fuzz target: `AlarmTransition::parse` on arbitrary bytes (what the alarm topic may hold).
//!
//! It must never panic; when it accepts a message, the record built from it must read back
//! as the same notification, and an error's text must stay short (it becomes a dead-letter
//! header and a log line). Run: see docs/security.md.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use monasca_model::{AlarmTransition, Notification, NotificationMethod};

fuzz_target!(|data: &[u8]| {
    match AlarmTransition::parse(data) {
        Ok(alarm) => {
            let method = NotificationMethod {
                id: "m".into(),
                name: "n".into(),
                kind: "webhook".into(),
                address: "http://example.com/".into(),
                period: 0,
            };
            let notification = Notification::new(method, Arc::new(alarm));
            let back = Notification::from_record(&notification.to_record())
                .expect("a parsed alarm's record reads back");
            assert_eq!(back, notification);
        }
        Err(e) => assert!(e.to_string().len() < 512, "long reason: {e}"),
    }
});
