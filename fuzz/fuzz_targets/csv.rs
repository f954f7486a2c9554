//! The CSV reader on arbitrary bytes: no panic; the same table (or the same error) whatever the
//! block size and the thread count; and inside a block, the one-pass path for simple records
//! and the `memchr` record splitter agree with the general path and with `csv-core`.
#![no_main]

use iris_trainer::config::DEFAULT_MISSING_VALUES;
use iris_trainer::data::csv::{BLOCK_BYTES, CsvFile, CsvOptions, paths};
use iris_trainer::data::{ColumnKind, MissingValues, Table, TableBuilder};
use libfuzzer_sys::fuzz_target;

/// Reads `bytes` with `options`: the whole table or the error as shown.
fn read(bytes: &[u8], options: CsvOptions) -> Result<Table, String> {
    let file = CsvFile::open(Box::new(std::io::Cursor::new(bytes.to_vec())), options)
        .map_err(|e| e.to_string())?;
    let kinds = vec![ColumnKind::Auto; file.names.len()];
    let mut table = TableBuilder::new();
    for chunk in file.chunks(&kinds).map_err(|e| e.to_string())? {
        let chunk = chunk.map_err(|e| e.to_string())?;
        table
            .push(chunk.table)
            .unwrap_or_else(|e| panic!("chunks of one file disagree: {e}"));
    }
    Ok(table.finish())
}

const KINDS: [ColumnKind; 4] = [
    ColumnKind::Auto,
    ColumnKind::Numeric,
    ColumnKind::Text,
    ColumnKind::Skip,
];

fuzz_target!(|input: &[u8]| {
    // Two bytes of settings, the rest is the file.
    let &[a, b, ref bytes @ ..] = input else {
        return;
    };
    let delimiter = [None, Some(b','), Some(b';'), Some(b'\t')][usize::from(a & 3)];
    let has_header = [None, Some(true), Some(false), None][usize::from((a >> 2) & 3)];
    let extra_trailing_field = a & 16 != 0;
    let options = |block_bytes: usize, threads: usize| CsvOptions {
        delimiter,
        has_header,
        known_names: Vec::new(),
        missing: MissingValues::new(DEFAULT_MISSING_VALUES),
        threads,
        block_bytes,
        extra_trailing_field,
    };

    let small = usize::from(b) + 1;
    let whole = read(bytes, options(BLOCK_BYTES, 1));
    let blocks = read(bytes, options(small, 2));
    assert_eq!(
        whole, blocks,
        "one block and blocks of {small} bytes read differently"
    );

    let delimiter = delimiter.unwrap_or(b',');
    let kinds: Vec<ColumnKind> = (0..=(b >> 6))
        .map(|i| KINDS[usize::from((b >> (2 * i)) & 3)])
        .collect();
    let (simple, general) = paths::parse_both(bytes, delimiter, &kinds, extra_trailing_field);
    assert_eq!(
        simple, general,
        "the one-pass and the general path disagree"
    );
    if let Some((fast, slow)) = paths::split_both(bytes, delimiter) {
        assert_eq!(fast, slow, "the memchr splitter and csv-core disagree");
    }
});
