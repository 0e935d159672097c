//! Lambda trigger events: any JSON value through the ingest, alarm and
//! GuardDuty decoders (they promise never to panic), and S3 key decoding.
#![no_main]

use fail2waf_core::aws::events::{
    decode_alarm, decode_finding, decode_ingest, decode_s3_key, is_schedule,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_s3_key(&String::from_utf8_lossy(data));
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match decode_ingest(&value) {
        Ok(ev) => {
            let _ = format!("{ev:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match decode_alarm(&value) {
        Ok(change) => {
            let _ = format!("{change:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(f) = decode_finding(&value) {
        // Addresses to block exactly when there is no reason to skip.
        assert_eq!(f.remote.is_empty(), f.skip.is_some(), "{f:?}");
    }
    let _ = is_schedule(&value);
});
