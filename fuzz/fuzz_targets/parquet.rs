//! A Parquet file of arbitrary bytes (the seeds are real files): read as the program reads a
//! data file, an error or a table, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = iris_trainer_fuzz::write("table.parquet", bytes);
    let _ = iris_trainer_fuzz::read_table(&path);
});
