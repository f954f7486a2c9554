//! The training-time encoders on a CSV of arbitrary bytes (the last column the label): the
//! dataset loads or is refused with an error, the split's preprocessor (category levels with
//! their shared `<other>` input, imputation, scaling) is fitted, every encoded input is finite,
//! and the preprocessor read back from its JSON (as `model.json` carries it) encodes the table
//! exactly as the fitted one does.
#![no_main]

use iris_trainer::TrainConfig;
use iris_trainer::data::{Dataset, Preprocessor, TrainingData};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|bytes: &[u8]| {
    let path = iris_trainer_fuzz::write("train.csv", bytes);
    let mut config = TrainConfig::default();
    config.data.path = Some(path);
    let Ok(dataset) = Dataset::load(&config.data) else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let Ok(data) = TrainingData::new(&dataset, &config, &mut rng) else {
        return;
    };
    for split in [&data.train, &data.test] {
        assert!(
            split.inputs.dense().iter().all(|v| v.is_finite()),
            "an encoded input is not finite"
        );
    }
    // model.json keeps the encoders and the scaling, each as JSON.
    let p = &data.preprocessor;
    let encoding = serde_json::to_string(&p.encoding).expect("the encoders serialise");
    let scaling = serde_json::to_string(&p.scaling).expect("the scaling serialises");
    let back = Preprocessor {
        encoding: serde_json::from_str(&encoding).expect("the encoders read back"),
        scaling: serde_json::from_str(&scaling).expect("the scaling reads back"),
    };
    let fitted = data.preprocessor.encode(&dataset.table, None);
    let loaded = back.encode(&dataset.table, None);
    match (fitted, loaded) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the preprocessor read back encodes differently"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("the preprocessor read back disagrees: {a:?} against {b:?}"),
    }
});
