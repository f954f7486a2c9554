//! gzip-compressed CSV, as a file: arbitrary bytes (a damaged or truncated stream is an error,
//! never a panic), and a CSV compressed here, which must read exactly as the plain file does.
#![no_main]

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [mode, bytes @ ..] = input else { return };
    if mode & 1 == 0 {
        let path = iris_trainer_fuzz::write("raw.csv.gz", bytes);
        let _ = iris_trainer_fuzz::read_table(&path);
        return;
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).expect("compressing in memory");
    let gz = gz.finish().expect("compressing in memory");
    let packed = iris_trainer_fuzz::read_table(&iris_trainer_fuzz::write("table.csv.gz", &gz));
    let plain = iris_trainer_fuzz::read_table(&iris_trainer_fuzz::write("table.csv", bytes));
    match (&packed, &plain) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the gzip file reads other rows than the plain one"),
        (Err(_), Err(_)) => {}
        _ => panic!("gzip and plain disagree: {packed:?} against {plain:?}"),
    }
});
