//! Apache Parquet, read column by column (only the columns needed) into the same typed columns
//! as CSV: numbers as `f32` (null and NaN are missing), text, booleans and dictionaries
//! dictionary-encoded (null and the missing-value markers are missing).

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use super::csv::{Chunk, ColumnKind, CsvError, ReadError};
use super::table::{Column, ColumnData, MISSING, Table, format_number};

/// Rows per chunk.
const BATCH_ROWS: usize = 65_536;

fn error(message: impl Into<String>) -> ReadError {
    ReadError::Csv(CsvError {
        line: 0,
        message: message.into(),
    })
}

/// Whether a column of this type is read as numbers (`Some(true)`), as text (`Some(false)`),
/// or not at all (`None`).
fn numeric_type(t: &DataType) -> Option<bool> {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _) => Some(true),
        DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Some(false)
        }
        DataType::Dictionary(_, v) => numeric_type(v).filter(|n| !n),
        _ => None,
    }
}

/// A Parquet file (held in memory) whose schema has been read.
pub struct ParquetFile {
    /// Column names, in file order.
    pub names: Vec<String>,
    types: Vec<DataType>,
    input: Input,
    missing: Vec<String>,
    rows: usize,
}

/// Where the file's bytes are: read from disk as the row groups are needed (bounded memory
/// whatever the file's size), or already in memory.
enum Input {
    File(std::fs::File),
    Memory(Bytes),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Input::File(_) => "File",
            Input::Memory(_) => "Memory",
        })
    }
}

/// Runs one step of the Parquet reader, which panics on some malformed files (an assumption a
/// decoder does not check, such as a dictionary page that is missing): such a file is an error
/// like any other, never a crash.
fn guarded<T>(f: impl FnOnce() -> Result<T, ReadError>) -> Result<T, ReadError> {
    crate::error::catch_panic(f).unwrap_or_else(|detail| {
        Err(error(format!(
            "a malformed Parquet file: the reader stopped ({detail}); write the file again"
        )))
    })
}

/// The reader of the columns `read` (file positions), in batches of [`BATCH_ROWS`] rows.
fn batches<T: ChunkReader + 'static>(
    input: T,
    read: impl IntoIterator<Item = usize>,
) -> Result<ParquetRecordBatchReader, ReadError> {
    guarded(|| {
        let builder = ParquetRecordBatchReaderBuilder::try_new(input)
            .map_err(|e| error(format!("not a readable Parquet file: {e}")))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), read);
        builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| error(format!("cannot read the Parquet file: {e}")))
    })
}

impl ParquetFile {
    /// Reads the schema of a Parquet file's bytes.
    pub fn open(bytes: Vec<u8>, missing: &[String]) -> Result<Self, ReadError> {
        let bytes = Bytes::from(bytes);
        Self::with_input(bytes.clone(), Input::Memory(bytes), missing)
    }

    /// Reads the schema (the footer) of a Parquet file on disk; its row groups are read when
    /// [`ParquetFile::chunks`] needs them.
    pub fn open_file(file: std::fs::File, missing: &[String]) -> Result<Self, ReadError> {
        let footer = file.try_clone().map_err(ReadError::Io)?;
        Self::with_input(footer, Input::File(file), missing)
    }

    fn with_input<T: ChunkReader + 'static>(
        footer: T,
        input: Input,
        missing: &[String],
    ) -> Result<Self, ReadError> {
        let builder = guarded(|| {
            ParquetRecordBatchReaderBuilder::try_new(footer)
                .map_err(|e| error(format!("not a readable Parquet file: {e}")))
        })?;
        let schema = builder.schema();
        Ok(ParquetFile {
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            types: schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect(),
            input,
            missing: missing.to_vec(),
            rows: usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0),
        })
    }

    /// Rows in the file, from its footer.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Reads the columns not skipped, in chunks of up to 65,536 rows.
    pub fn chunks(self, kinds: &[ColumnKind]) -> Result<ParquetChunks, ReadError> {
        let mut read = Vec::new();
        for (i, (kind, t)) in kinds.iter().zip(&self.types).enumerate() {
            if *kind == ColumnKind::Skip {
                continue;
            }
            let name = &self.names[i];
            let Some(numeric) = numeric_type(t) else {
                return Err(error(format!(
                    "column `{name}` has Parquet type {t}, which iris-trainer cannot read \
                     (numbers, text, booleans and dictionaries of text are supported); leave it \
                     out with --ignore {name}, or convert it"
                )));
            };
            let as_numbers = match kind {
                ColumnKind::Numeric if !numeric => {
                    return Err(error(format!(
                        "column `{name}` holds text ({t}) in the Parquet file, but numbers are \
                         expected; declare it categorical or convert it"
                    )));
                }
                ColumnKind::Numeric => true,
                ColumnKind::Text => false,
                _ => numeric,
            };
            read.push((i, as_numbers));
        }
        let columns = read.iter().map(|&(i, _)| i);
        let reader = match self.input {
            Input::File(f) => batches(f, columns)?,
            Input::Memory(b) => batches(b, columns)?,
        };
        Ok(ParquetChunks {
            reader,
            columns: read
                .into_iter()
                .map(|(i, n)| (self.names[i].clone(), n))
                .collect(),
            missing: self.missing,
            row: 0,
            failed: false,
        })
    }
}

/// The rows of a Parquet file in chunks.
pub struct ParquetChunks {
    reader: ParquetRecordBatchReader,
    columns: Vec<(String, bool)>,
    missing: Vec<String>,
    row: usize,
    failed: bool,
}

impl ParquetChunks {
    fn convert(&self, batch: &RecordBatch) -> Result<Table, ReadError> {
        let mut columns = Vec::with_capacity(self.columns.len());
        for (name, as_numbers) in &self.columns {
            let array = batch
                .column_by_name(name)
                .ok_or_else(|| error(format!("column `{name}` is missing from a row group")))?;
            let data = if *as_numbers {
                ColumnData::Numeric(numbers(array, name)?)
            } else {
                text(array, name, &self.missing)?
            };
            columns.push(Column {
                name: name.clone(),
                data,
            });
        }
        Table::new(columns).ok_or_else(|| error("columns of different lengths"))
    }
}

/// A numeric array as `f32`, null and NaN as `NaN`.
fn numbers(array: &ArrayRef, name: &str) -> Result<Vec<f32>, ReadError> {
    fn collect<T: arrow_array::ArrowPrimitiveType>(
        array: &ArrayRef,
        f: impl Fn(T::Native) -> f32,
    ) -> Vec<f32> {
        let a = array.as_primitive::<T>();
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    f32::NAN
                } else {
                    f(a.value(i))
                }
            })
            .collect()
    }
    Ok(match array.data_type() {
        DataType::Int8 => collect::<Int8Type>(array, f32::from),
        DataType::Int16 => collect::<Int16Type>(array, f32::from),
        DataType::Int32 => collect::<Int32Type>(array, |v| v as f32),
        DataType::Int64 => collect::<Int64Type>(array, |v| v as f32),
        DataType::UInt8 => collect::<UInt8Type>(array, f32::from),
        DataType::UInt16 => collect::<UInt16Type>(array, f32::from),
        DataType::UInt32 => collect::<UInt32Type>(array, |v| v as f32),
        DataType::UInt64 => collect::<UInt64Type>(array, |v| v as f32),
        DataType::Float16 => collect::<Float16Type>(array, f32::from),
        DataType::Float32 => collect::<Float32Type>(array, |v| v),
        DataType::Float64 => collect::<Float64Type>(array, |v| v as f32),
        DataType::Decimal128(_, scale) => {
            let div = 10f64.powi(i32::from(*scale));
            collect::<arrow_array::types::Decimal128Type>(array, |v| (v as f64 / div) as f32)
        }
        t => {
            return Err(error(format!(
                "column `{name}`: Parquet type {t} cannot be read as numbers"
            )));
        }
    })
}

/// A text, boolean or text-dictionary array as strings (`None` for null).
fn strings(array: &ArrayRef, name: &str) -> Result<Vec<Option<String>>, ReadError> {
    let get = |a: &dyn Array, i: usize, v: String| (!a.is_null(i)).then_some(v);
    Ok(match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            (0..a.len())
                .map(|i| get(a, i, a.value(i).to_string()))
                .collect()
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            (0..a.len())
                .map(|i| get(a, i, a.value(i).to_string()))
                .collect()
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            (0..a.len())
                .map(|i| get(a, i, a.value(i).to_string()))
                .collect()
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..a.len())
                .map(|i| get(a, i, a.value(i).to_string()))
                .collect()
        }
        DataType::Dictionary(_, _) => {
            let d = array.as_any_dictionary();
            let values = strings(d.values(), name)?;
            let keys = d.normalized_keys();
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) {
                        None
                    } else {
                        values.get(keys[i]).cloned().flatten()
                    }
                })
                .collect()
        }
        t => {
            return Err(error(format!(
                "column `{name}`: Parquet type {t} cannot be read as text"
            )));
        }
    })
}

/// A text (or boolean, or numeric read as categories) array, dictionary-encoded.
fn text(array: &ArrayRef, name: &str, missing: &[String]) -> Result<ColumnData, ReadError> {
    let mut codes = Vec::with_capacity(array.len());
    let mut levels: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut push = |value: Option<String>| match value {
        Some(v) if !missing.iter().any(|m| m == v.trim()) => {
            let v = v.trim().to_string();
            let next = levels.len() as u32;
            let code = *index.entry(v.clone()).or_insert_with(|| {
                levels.push(v);
                next
            });
            codes.push(code);
        }
        _ => codes.push(MISSING),
    };
    if numeric_type(array.data_type()) == Some(true) {
        // Numbers declared categorical: their shortest text, as a CSV column would give.
        for v in numbers(array, name)? {
            push((!v.is_nan()).then(|| format_number(v)));
        }
    } else {
        for v in strings(array, name)? {
            push(v);
        }
    }
    Ok(ColumnData::Text { codes, levels })
}

impl Iterator for ParquetChunks {
    type Item = Result<Chunk, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let reader = &mut self.reader;
        let next = guarded(|| {
            reader
                .next()
                .transpose()
                .map_err(|e| error(format!("cannot read the Parquet file: {e}")))
        });
        let batch = match next.transpose()? {
            Ok(b) => b,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        match self.convert(&batch) {
            Ok(table) => {
                let chunk = Chunk {
                    first_row: self.row,
                    table,
                    bytes: 0,
                };
                self.row += batch.num_rows();
                Some(Ok(chunk))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringDictionaryBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::{BooleanArray, Float64Array, Int64Array, StringArray};
    use parquet::arrow::ArrowWriter;

    use super::*;

    /// A Parquet file with the column types a pandas or Polars user writes.
    fn file() -> Vec<u8> {
        let mut dict = StringDictionaryBuilder::<Int32Type>::new();
        for v in ["Biscoe", "Dream", "Biscoe"] {
            dict.append_value(v);
        }
        let mut list = ListBuilder::new(arrow_array::builder::Int64Builder::new());
        for _ in 0..3 {
            list.values().append_value(1);
            list.append(true);
        }
        let batch = RecordBatch::try_from_iter(vec![
            (
                "bill",
                Arc::new(Float64Array::from(vec![Some(39.1), None, Some(f64::NAN)])) as ArrayRef,
            ),
            (
                "year",
                Arc::new(Int64Array::from(vec![2007, 2008, 2009])) as ArrayRef,
            ),
            (
                "sex",
                Arc::new(StringArray::from(vec![Some("male"), None, Some("NA")])) as ArrayRef,
            ),
            (
                "ok",
                Arc::new(BooleanArray::from(vec![true, false, true])) as ArrayRef,
            ),
            ("island", Arc::new(dict.finish()) as ArrayRef),
            ("tags", Arc::new(list.finish()) as ArrayRef),
        ])
        .unwrap();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    }

    fn read(kinds: &[ColumnKind]) -> Result<Table, ReadError> {
        let f = ParquetFile::open(file(), &["NA".into()])?;
        let mut chunks = f.chunks(kinds)?;
        Ok(chunks.next().unwrap()?.table)
    }

    #[test]
    fn reads_numbers_text_booleans_and_dictionaries() {
        use ColumnKind::*;
        let t = read(&[Auto, Text, Auto, Auto, Auto, Skip]).unwrap();
        assert_eq!(t.names(), ["bill", "year", "sex", "ok", "island"]);
        let bill = &t.column("bill").unwrap().data;
        assert_eq!(bill.text(0).as_deref(), Some("39.1"));
        assert!(bill.is_missing(1) && bill.is_missing(2));
        let text = |c: &str| {
            let d = &t.column(c).unwrap().data;
            (0..3).map(|i| d.text(i)).collect::<Vec<_>>()
        };
        assert_eq!(
            text("year"),
            ["2007", "2008", "2009"].map(|s| Some(s.to_string()))
        );
        assert_eq!(text("sex"), [Some("male".to_string()), None, None]);
        assert_eq!(text("ok")[1].as_deref(), Some("false"));
        assert_eq!(text("island")[2].as_deref(), Some("Biscoe"));
    }

    #[test]
    fn malformed_files_that_panicked_the_parquet_reader_are_errors() {
        // Each one panicked the Parquet reader (parquet 60.1) until its steps were guarded;
        // found by the `parquet` fuzz target.
        let files: [(&str, &[u8]); 4] = [
            // RLE_DICTIONARY pages with no dictionary page: "Decoder for dict should have
            // been set".
            (
                "dictionary page missing",
                include_bytes!(
                    "../../tests/fixtures/malformed/parquet-dictionary-page-missing.parquet"
                ),
            ),
            // A column chunk's offset below zero: "column start and length should not be
            // negative".
            (
                "negative column offset",
                include_bytes!(
                    "../../tests/fixtures/malformed/parquet-negative-column-offset.parquet"
                ),
            ),
            // Row groups whose row counts overflow when summed.
            (
                "row count overflow",
                include_bytes!("../../tests/fixtures/malformed/parquet-row-count-overflow.parquet"),
            ),
            // Definition levels that claim more values than the page holds (an assertion in
            // arrow's bit-chunk iterator).
            (
                "definition levels past the buffer",
                include_bytes!(
                    "../../tests/fixtures/malformed/parquet-definition-levels-past-the-buffer.parquet"
                ),
            ),
        ];
        for (what, bytes) in files {
            let read = ParquetFile::open(bytes.to_vec(), &[]).and_then(|file| {
                let kinds = vec![ColumnKind::Auto; file.names.len()];
                file.chunks(&kinds)?.collect::<Result<Vec<_>, _>>()
            });
            let message = read.expect_err(what).to_string();
            assert!(message.contains("Parquet"), "{what}: {message}");
        }
    }

    #[test]
    fn unsupported_and_mismatched_columns_are_named() {
        use ColumnKind::*;
        let m = read(&[Auto, Auto, Auto, Auto, Auto, Auto])
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("column `tags`") && m.contains("--ignore tags"),
            "{m}"
        );
        let m = read(&[Auto, Auto, Numeric, Auto, Auto, Skip])
            .unwrap_err()
            .to_string();
        assert!(m.contains("column `sex` holds text"), "{m}");
        let m = ParquetFile::open(b"PAR1 not really".to_vec(), &[])
            .err()
            .unwrap()
            .to_string();
        assert!(m.contains("not a readable Parquet file"), "{m}");
    }
}
