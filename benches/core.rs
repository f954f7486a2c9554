//! In-process benchmarks of the pieces a regression would show up in:
//! CSV parsing, a training epoch, and a forward pass of 1 and 1,024 rows, for the narrow Iris
//! network (4-16-3, full batch) and the wide network of the tabular recipes (32-256-256-256-10,
//! batch 256, on 10,240 synthetic rows).
//!
//!   cargo bench --bench core

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use iris_trainer::backend::{self, Backend, TrainBackend};
use iris_trainer::config::{Activation, DataConfig, TrainConfig};
use iris_trainer::data::{Dataset, Encoded, TrainingData};
use iris_trainer::model::{Inputs, MlpConfig};
use iris_trainer::train::{self, Interrupter};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn benches(c: &mut Criterion) {
    let data = DataConfig::default();
    c.bench_function(
        "csv/read embedded iris (150 rows) and decide its schema",
        |b| b.iter(|| Dataset::load(&data).unwrap()),
    );

    let device = backend::init(false).unwrap().device;
    let mut config = TrainConfig::default();
    config.training.epochs = 100;
    let dataset = Dataset::load(&data).unwrap();
    let prepared = TrainingData::new(&dataset, &config, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let mut g = c.benchmark_group("train");
    g.throughput(Throughput::Elements(100));
    g.bench_function("100 epochs, iris, full batch (elements = epochs)", |b| {
        b.iter(|| fit(&prepared, &config, &device))
    });
    g.finish();

    let model = MlpConfig {
        inputs: 4,
        hidden: vec![16],
        outputs: 3,
        activation: Activation::Relu,
        dropout: 0.0,
    }
    .init::<Backend>(&device);
    let mut g = c.benchmark_group("forward");
    for rows in [1usize, 1024] {
        let values: Vec<f32> = (0..rows * 4).map(|i| (i % 7) as f32 * 0.5).collect();
        g.throughput(Throughput::Elements(rows as u64));
        g.bench_with_input(BenchmarkId::from_parameter(rows), &values, |b, v| {
            b.iter(|| {
                let x = Inputs::<Backend>::new(
                    Encoded::dense_only(v.clone(), 4).expect("whole rows"),
                    &device,
                );
                model.logits_to_host(x)
            })
        });
    }
    g.finish();

    wide(c, &device);
}

/// The wide network: one epoch at batch 256 over 8,192 training rows (of 10,240, the rest held
/// out), and a forward pass of 1,024 rows. Throughput is rows.
fn wide(c: &mut Criterion, device: &backend::Device) {
    use std::fmt::Write;
    const ROWS: usize = 10_240;
    const FEATURES: usize = 32;
    // Ten seeded Gaussian-ish clusters, written as a CSV the loader reads like a user's file.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut text = (0..FEATURES).map(|i| format!("f{i},")).collect::<String>() + "label\n";
    for _ in 0..ROWS {
        let class = rng.random_range(0..10u32);
        for j in 0..FEATURES {
            let centre = ((class as usize * 7 + j * 3) % 11) as f32 * 0.3;
            let v = centre + rng.random_range(-1.0f32..1.0);
            write!(text, "{v:.4},").unwrap();
        }
        writeln!(text, "c{class}").unwrap();
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let data = DataConfig {
        path: Some(file.path().to_path_buf()),
        ..DataConfig::default()
    };
    let mut config = TrainConfig {
        data: data.clone(),
        ..TrainConfig::default()
    };
    config.model.hidden = vec![256, 256, 256];
    config.training.epochs = 1;
    config.training.batch_size = Some(256);
    let dataset = Dataset::load(&data).unwrap();
    let prepared = TrainingData::new(&dataset, &config, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let train_rows = prepared.train.rows() as u64;
    let mut g = c.benchmark_group("train-wide");
    g.sample_size(10);
    g.throughput(Throughput::Elements(train_rows));
    g.bench_function(
        "one epoch, 32-256-256-256-10, batch 256, Adam (elements = training rows)",
        |b| b.iter(|| fit(&prepared, &config, device)),
    );
    g.finish();

    let model = MlpConfig {
        inputs: FEATURES,
        hidden: vec![256, 256, 256],
        outputs: 10,
        activation: Activation::Relu,
        dropout: 0.0,
    }
    .init::<Backend>(device);
    let values: Vec<f32> = (0..1024 * FEATURES).map(|i| (i % 7) as f32 * 0.5).collect();
    let mut g = c.benchmark_group("forward-wide");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("1024 rows, 32-256-256-256-10", |b| {
        b.iter(|| {
            let x = Inputs::<Backend>::new(
                Encoded::dense_only(values.clone(), FEATURES).expect("whole rows"),
                device,
            );
            model.logits_to_host(x)
        })
    });
    g.finish();
}

/// One training run of `config` on a copy of `prepared`, silent and uninterrupted.
fn fit(
    prepared: &TrainingData,
    config: &TrainConfig,
    device: &backend::Device,
) -> train::TrainedModel<Backend> {
    train::fit::<TrainBackend>(
        prepared.clone(),
        config,
        device,
        &mut (),
        &Interrupter::new(),
        &mut (),
    )
    .unwrap()
}

criterion_group!(core, benches);
criterion_main!(core);
