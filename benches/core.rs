//! In-process benchmarks of the pieces a regression would show up in:
//! CSV parsing, a training epoch, and a forward pass of 1 and 1,024 rows.
//!
//!   cargo bench --bench core

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use iris_trainer::backend::{self, Backend, TrainBackend};
use iris_trainer::config::{Activation, DataConfig, TrainConfig};
use iris_trainer::data::{Dataset, Encoded, TrainingData};
use iris_trainer::model::{Inputs, MlpConfig};
use iris_trainer::train::{self, Interrupter};
use rand::SeedableRng;
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
        b.iter(|| {
            train::fit::<TrainBackend>(
                prepared.clone(),
                &config,
                &device,
                &mut (),
                &Interrupter::new(),
                &mut (),
            )
            .unwrap()
        })
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
}

criterion_group!(core, benches);
criterion_main!(core);
