//! A model directory someone handed over: `model.json` and `model.mpk` of arbitrary bytes
//! (seeds: the committed model directories). Loading is an error or a model, never a panic (a
//! malformed tensor inside the record included), and a model that loads answers a row.
//!
//! The input is `model.json`, [`SEPARATOR`], then `model.mpk`. With the first byte odd, the
//! SHA-256 that `model.json` records for the record is set to the record's own (when the JSON
//! parses), so that mutated records get past the checksum to the record decoder.
#![no_main]

use std::sync::OnceLock;

use iris_trainer::Predictor;
use iris_trainer::backend::{self, Backend, Device};
use iris_trainer::data::sha256_hex;
use libfuzzer_sys::fuzz_target;

/// Between `model.json` and `model.mpk` in an input (JSON text never holds a NUL byte).
const SEPARATOR: &[u8] = b"\0\0mpk\0\0";

fn device() -> &'static Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE.get_or_init(|| backend::init(false).expect("the CPU device").device)
}

fn with_record_checksum(json: &[u8], record: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return json.to_vec();
    };
    let Some(sha) = value.pointer_mut("/record/sha256") else {
        return json.to_vec();
    };
    *sha = sha256_hex(record).into();
    serde_json::to_vec(&value).expect("a JSON value serialises")
}

fuzz_target!(|input: &[u8]| {
    let [mode, bytes @ ..] = input else { return };
    let (json, record) = match bytes.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(at) => (&bytes[..at], &bytes[at + SEPARATOR.len()..]),
        None => (bytes, &[][..]),
    };
    let json = if mode & 1 == 1 {
        with_record_checksum(json, record)
    } else {
        json.to_vec()
    };
    let dir = iris_trainer_fuzz::write_model("model", &json, record);
    if let Ok(predictor) = Predictor::<Backend>::load(&dir, device()) {
        let row = vec!["1".to_string(); predictor.features().len()];
        let _ = predictor.predict_values(&row);
    }
});
