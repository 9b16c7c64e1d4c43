//! Fuzz target: `Notification::from_record` on arbitrary bytes (what the retry and periodic
//! topics may hold).
//!
//! It must never panic; a record it accepts must survive a write and a read unchanged, and an
//! error's text must stay short. Run: see docs/security.md.

#![no_main]

use libfuzzer_sys::fuzz_target;
use monasca_model::Notification;

fuzz_target!(|data: &[u8]| {
    match Notification::from_record(data) {
        Ok(notification) => {
            let back = Notification::from_record(&notification.to_record())
                .expect("a parsed record reads back");
            assert_eq!(back, notification);
        }
        Err(e) => assert!(e.to_string().len() < 512, "long reason: {e}"),
    }
});
