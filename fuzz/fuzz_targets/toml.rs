//! The configuration file and the sweep file: parsed, checked and turned into a recipe (or each
//! sweep point applied to the default configuration); errors, never a panic.
#![no_main]

use iris_trainer::TrainConfig;
use iris_trainer::sweep::Sweep;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [kind, bytes @ ..] = input else { return };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if kind & 1 == 0 {
        if let Ok(config) = TrainConfig::from_toml_str(text, "fuzz.toml")
            && config.validate("fuzz.toml").is_ok()
        {
            let _ = config.recipe();
        }
    } else if let Ok(sweep) = Sweep::from_toml_str(text, "sweep.toml") {
        let base = TrainConfig::default();
        if sweep.validate_all(&base, "the defaults").is_ok() {
            for i in 0..sweep.len().min(16) {
                let config = sweep.apply(&base, i).expect("a validated point applies");
                let _ = config.recipe();
                let _ = sweep.info(i);
            }
        }
    }
});
