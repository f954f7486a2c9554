//! CSV read straight into typed columns: numbers as `f32`, text dictionary-encoded, no string
//! kept per cell. The input is cut into blocks at record boundaries and the blocks are parsed on
//! every core; chunks come back in file order, so a caller can stream a file of any size in
//! bounded memory or collect it into one [`Table`].
//!
//! The delimiter (comma, semicolon or tab) and the header are detected from the first rows
//! unless given. Fields are trimmed; a UTF-8 byte-order mark is skipped.

use std::collections::HashMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use csv_core::ReadRecordResult;

use super::table::{Column, ColumnData, MISSING, Table};

/// Delimiters tried when none is given, in order of preference on a tie.
pub const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// Bytes per block handed to one parsing thread.
pub const BLOCK_BYTES: usize = 4 << 20;

/// UTF-8's byte-order mark, skipped at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Most fields accepted in one record.
const MAX_FIELDS: usize = 100_000;

/// Rows looked at to detect the delimiter and the header.
const SNIFF_ROWS: usize = 200;

/// What to do with one column while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Decide from the first block: numeric when its values are numbers, text otherwise.
    Auto,
    /// Numbers: any other value (not a missing marker) is an error naming its line.
    Numeric,
    /// Text, dictionary-encoded (numbers become levels as written).
    Text,
    /// Not read at all.
    Skip,
}

/// The strings that mean "no value" (compared after trimming, case-sensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingValues(Vec<Vec<u8>>);

/// The default missing-value markers: empty, `NA`, `NaN`, `null` and `?` (UCI's marker).
pub const DEFAULT_MISSING: [&str; 5] = ["", "NA", "NaN", "null", "?"];

impl Default for MissingValues {
    fn default() -> Self {
        Self::new(DEFAULT_MISSING)
    }
}

impl MissingValues {
    /// Markers from strings (trimmed).
    pub fn new<S: AsRef<str>>(markers: impl IntoIterator<Item = S>) -> Self {
        MissingValues(
            markers
                .into_iter()
                .map(|m| m.as_ref().trim().as_bytes().to_vec())
                .collect(),
        )
    }

    /// Whether a trimmed field is a missing marker.
    #[inline]
    pub fn contains(&self, field: &[u8]) -> bool {
        self.0.iter().any(|m| m.as_slice() == field)
    }

    /// Whether a string (trimmed) is a missing marker.
    pub fn contains_str(&self, field: &str) -> bool {
        self.contains(field.trim().as_bytes())
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The field delimiter; `None` detects comma, semicolon or tab.
    pub delimiter: Option<u8>,
    /// Whether the first row is a header; `None` detects it.
    pub has_header: Option<bool>,
    /// Names that, found in the first row, make it a header (a model's column names).
    pub known_names: Vec<String>,
    /// Values that mean "missing".
    pub missing: MissingValues,
    /// Parsing threads; 0 uses every core.
    pub threads: usize,
    /// Bytes per block.
    pub block_bytes: usize,
    /// Accept rows with one field more than the first row, ignoring it (a headerless file of
    /// features where some rows also hold the label).
    pub extra_trailing_field: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: None,
            has_header: None,
            known_names: Vec::new(),
            missing: MissingValues::default(),
            threads: 0,
            block_bytes: BLOCK_BYTES,
            extra_trailing_field: false,
        }
    }
}

/// A problem found in the CSV text, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line in the file (0 when the problem has no line).
    pub line: u64,
    /// What is wrong (without the line).
    pub message: String,
}

impl CsvError {
    fn new(line: u64, message: impl Into<String>) -> Self {
        CsvError {
            line,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 && self.message.starts_with("has ") {
            write!(f, "line {} {}", self.line, self.message)
        } else if self.line > 0 {
            write!(f, "line {}, {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// Why a field of a numeric column is not a number, naming the column; the caller adds the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FieldError {
    /// The field is empty and the empty field is not a missing-value marker.
    #[error(
        "column `{column}`: missing value (empty field); add \"\" to `data.missing_values` to \
         impute it"
    )]
    Missing { column: String },
    /// The field is a number, but NaN, infinite or out of range.
    #[error("column `{column}`: `{value}` is not a finite number (NaN, infinity or out of range)")]
    NotFinite { column: String, value: String },
    /// The field is not a number.
    #[error(
        "column `{column}`: `{value}` is not a number; fix the value, list it in \
         `data.missing_values` if it means \"missing\", or declare the column categorical \
         (`[data.types]` {} = \"categorical\")",
        toml_key(.column)
    )]
    NotANumber { column: String, value: String },
}

/// A failure while reading: the CSV text is wrong, or the input could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The text is not usable CSV for this purpose.
    Csv(CsvError),
    /// Reading the input failed (or a gzip stream is corrupt).
    Io(std::io::Error),
}

impl From<CsvError> for ReadError {
    fn from(e: CsvError) -> Self {
        ReadError::Csv(e)
    }
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Csv(e) => e.fmt(f),
            ReadError::Io(e) => write!(f, "cannot read: {e}"),
        }
    }
}

/// A chunk of rows in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The rows, one column per non-skipped column.
    pub table: Table,
    /// Index of the chunk's first row among all data rows of the file (0-based).
    pub first_row: usize,
    /// Bytes of input the rows came from (0 where the format does not say).
    pub bytes: usize,
}

/// Trims ASCII whitespace.
#[inline]
fn trim(f: &[u8]) -> &[u8] {
    f.trim_ascii()
}

/// A field parsed as a number, when it is one (straight from the bytes: the same syntax as
/// `str::parse::<f32>`, without checking UTF-8 first).
#[inline]
fn parse_number(f: &[u8]) -> Option<f32> {
    fast_float2::parse::<f32, _>(f).ok()
}

/// Powers of ten exact in an `f32` (10^10 = 2^10 * 5^10, and 5^10 < 2^24).
const POW10: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// The number at the start of `f` and its length in bytes, when it is a plain decimal
/// (`-`? digits, `.`, digits) of at most 9 digits whose digits make at most 2^24: then
/// `digits / 10^decimals` is one correctly rounded division of two exact `f32`s (Clinger's fast
/// path), the value `str::parse` gives. `None` for anything else (an exponent, a `+`, more
/// digits), which [`fast_float2::parse_partial`] reads.
#[inline]
fn parse_short_decimal(f: &[u8]) -> Option<(f32, usize)> {
    let negative = f.first() == Some(&b'-');
    let mut i = usize::from(negative);
    let (mut mantissa, mut digits, mut decimals) = (0u32, 0u32, 0usize);
    let mut dot = false;
    while let Some(&c) = f.get(i) {
        match c {
            b'0'..=b'9' if digits < 9 => {
                mantissa = mantissa * 10 + u32::from(c - b'0');
                digits += 1;
                decimals += usize::from(dot);
            }
            b'.' if !dot => dot = true,
            b'0'..=b'9' | b'.' | b'e' | b'E' => return None,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 || mantissa > 1 << 24 {
        return None;
    }
    let v = mantissa as f32 / POW10[decimals];
    Some((if negative { -v } else { v }, i))
}

fn is_number(f: &[u8]) -> bool {
    std::str::from_utf8(f).is_ok_and(|s| s.parse::<f64>().is_ok())
}

fn shown(f: &[u8]) -> String {
    let s = String::from_utf8_lossy(f);
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.into_owned(),
    }
}

/// Records of a byte slice, blank records skipped. Parsed with `csv-core`, or, when the slice
/// holds no quote and no carriage return but in a `\r\n` line ending (most numeric tables), cut
/// at delimiters and newlines with `memchr`: the same fields, several times faster.
struct Records<'a> {
    rdr: csv_core::Reader,
    input: &'a [u8],
    pos: usize,
    /// Where the current record's bytes start in `input`.
    start: usize,
    out: Vec<u8>,
    ends: Vec<usize>,
    nfields: usize,
    done: bool,
    /// Quote-free input: fields are `input[spans[i].0..spans[i].1]`, lines counted here.
    plain: bool,
    delimiter: u8,
    spans: Vec<(usize, usize)>,
    line: u64,
}

/// Whether `input` can be cut into records without a CSV state machine: no quotes, and every
/// carriage return ends a line (`\r\n`).
fn is_plain(input: &[u8]) -> bool {
    memchr::memchr(b'"', input).is_none()
        && memchr::memchr_iter(b'\r', input).all(|i| input.get(i + 1) == Some(&b'\n'))
}

impl<'a> Records<'a> {
    fn new(input: &'a [u8], delimiter: u8) -> Self {
        Records {
            rdr: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            input,
            pos: 0,
            start: 0,
            out: vec![0; 1024],
            ends: vec![0; 64],
            nfields: 0,
            done: false,
            plain: is_plain(input),
            delimiter,
            spans: Vec::with_capacity(64),
            line: 1,
        }
    }

    /// The same records through `csv-core`, whatever the input (to compare the two paths).
    #[cfg(any(test, fuzzing))]
    fn without_fast_path(mut self) -> Self {
        self.plain = false;
        self
    }

    /// The next record of quote-free input (blank ones included), as [`Records::next_any`].
    fn next_plain(&mut self) -> Result<Option<u64>, CsvError> {
        if self.pos >= self.input.len() {
            self.done = true;
            return Ok(None);
        }
        self.start = self.pos;
        let rest = &self.input[self.pos..];
        let (end, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (self.pos + i, self.pos + i + 1),
            None => (self.input.len(), self.input.len()),
        };
        let line_end = if end > self.pos && self.input[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        let line = self.line;
        self.spans.clear();
        let mut field_start = self.pos;
        for i in memchr::memchr_iter(self.delimiter, &self.input[self.pos..line_end]) {
            if self.spans.len() >= MAX_FIELDS {
                return Err(CsvError::new(
                    line,
                    format!("more than {MAX_FIELDS} fields in one row"),
                ));
            }
            self.spans.push((field_start, self.pos + i));
            field_start = self.pos + i + 1;
        }
        self.spans.push((field_start, line_end));
        self.nfields = self.spans.len();
        if next > end {
            self.line += 1;
        }
        self.pos = next;
        Ok(Some(line))
    }

    /// The next record of quote-free input read in one pass, when it is simple: each field of a
    /// `numeric` column a number and nothing else (no spaces, no missing-value marker), parsed
    /// straight into `numbers[i]`, the other fields cut at the next delimiter, and exactly as
    /// many fields as `numeric` has entries. Anything else (a blank line, a field to trim, a
    /// missing value, a wrong field count) leaves the reader where it was and returns `None`,
    /// for [`Records::next`] to read; so does a record with no numeric field, which could be
    /// blank. Returns the record's line, as `next` does; its fields are `field(i)`.
    #[inline]
    fn next_simple(&mut self, numeric: &[bool], numbers: &mut [f32]) -> Option<u64> {
        debug_assert!(self.plain && !self.done);
        if !numeric.contains(&true) {
            return None;
        }
        let input = self.input;
        let last = numeric.len() - 1;
        let mut pos = self.pos;
        let mut ended_by_newline = false;
        self.spans.clear();
        for (i, &is_number) in numeric.iter().enumerate() {
            // Where the field's text ends: after the number, or at the next delimiter or newline.
            let end = if is_number {
                let rest = &input[pos..];
                let (v, n) = match parse_short_decimal(rest) {
                    Some(short) => short,
                    None => fast_float2::parse_partial::<f32, _>(rest).ok()?,
                };
                if n == 0 || !v.is_finite() {
                    return None;
                }
                numbers[i] = v;
                pos + n
            } else {
                memchr::memchr2(self.delimiter, b'\n', &input[pos..])
                    .map_or(input.len(), |k| pos + k)
            };
            let (field_end, next) = match input.get(end) {
                Some(&d) if d == self.delimiter && i < last => (end, end + 1),
                _ if i < last => return None,
                None => (end, end),
                Some(b'\n') => {
                    ended_by_newline = true;
                    // Text before `\r\n`: the `\r` is not part of the field.
                    let trimmed = if end > pos && input[end - 1] == b'\r' {
                        end - 1
                    } else {
                        end
                    };
                    (trimmed, end + 1)
                }
                // A number before `\r\n` (quote-free input has no other `\r`).
                Some(b'\r') if input.get(end + 1) == Some(&b'\n') => {
                    ended_by_newline = true;
                    (end, end + 2)
                }
                _ => return None,
            };
            self.spans.push((pos, field_end));
            pos = next;
        }
        let line = self.line;
        self.start = self.pos;
        self.pos = pos;
        self.nfields = numeric.len();
        if ended_by_newline {
            self.line += 1;
        }
        Some(line)
    }

    /// Advances to the next non-blank record and returns its (1-based, block-relative) line.
    fn next(&mut self) -> Result<Option<u64>, CsvError> {
        loop {
            let Some(line) = self.next_any()? else {
                return Ok(None);
            };
            if (0..self.nfields).any(|i| !trim(self.field(i)).is_empty()) {
                return Ok(Some(line));
            }
        }
    }

    fn next_any(&mut self) -> Result<Option<u64>, CsvError> {
        if self.done {
            return Ok(None);
        }
        if self.plain {
            return self.next_plain();
        }
        let (mut nout, mut nend) = (0, 0);
        self.start = self.pos;
        loop {
            // csv-core drops a byte-order mark at the start of its input. The file's own mark
            // is gone before any block is cut (`CsvFile::open`), so one here is the start of a
            // field and is kept: its first byte alone goes first, past the check.
            let end = if self.pos == 0 && self.input.starts_with(BOM) {
                1
            } else {
                self.input.len()
            };
            let (res, nin, o, e) = self.rdr.read_record(
                &self.input[self.pos..end],
                &mut self.out[nout..],
                &mut self.ends[nend..],
            );
            self.pos += nin;
            nout += o;
            nend += e;
            match res {
                // Once the input is used up, the next call (with empty input) tells csv-core the
                // data ended, and it returns the last record or `End`.
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() >= MAX_FIELDS {
                        return Err(CsvError::new(
                            self.rdr.line(),
                            format!("more than {MAX_FIELDS} fields in one row"),
                        ));
                    }
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    self.nfields = nend;
                    // Each field's end offset is relative to the whole output buffer.
                    let ended_by_newline = self.pos > 0 && self.input[self.pos - 1] == b'\n';
                    return Ok(Some(self.rdr.line() - u64::from(ended_by_newline)));
                }
                ReadRecordResult::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.nfields
    }

    /// The (block-relative) line on which the current record starts; `end_line` is the one
    /// [`Records::next`] returned. Counted only when needed, for messages.
    fn start_line(&self, end_line: u64) -> u64 {
        let bytes = &self.input[self.start..self.pos];
        // Blank lines before the record were skipped in the same call.
        let body = bytes.trim_ascii_start();
        let body = body.strip_suffix(b"\n").unwrap_or(body);
        end_line - memchr::memchr_iter(b'\n', body).count() as u64
    }

    fn field(&self, i: usize) -> &[u8] {
        if self.plain {
            let (a, b) = self.spans[i];
            return &self.input[a..b];
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    /// The line the reader is on (1-based): the one after a record that ended with a newline.
    fn line_now(&self) -> u64 {
        if self.plain {
            self.line
        } else {
            self.rdr.line()
        }
    }

    /// Lines consumed so far (newlines seen).
    fn newlines(&self) -> u64 {
        if self.plain {
            return self.line - 1;
        }
        self.rdr.line() - 1
    }
}

/// Picks the delimiter whose field count is the same (and above one) on every sampled row; the
/// most fields wins, comma on a tie or when none qualifies.
pub fn detect_delimiter(sample: &[u8]) -> u8 {
    let mut best: Option<(u8, usize)> = None;
    for d in DELIMITERS {
        let mut rec = Records::new(sample, d);
        let mut counts = Vec::new();
        while let Ok(Some(_)) = rec.next() {
            counts.push(rec.len());
            if counts.len() >= SNIFF_ROWS {
                break;
            }
        }
        // The last sampled row may be cut short by the end of the sample.
        if counts.len() > 1 {
            counts.pop();
        }
        let consistent =
            counts.first().is_some_and(|&n| n > 1) && counts.iter().all(|&c| c == counts[0]);
        if consistent && best.is_none_or(|(_, n)| counts[0] > n) {
            best = Some((d, counts[0]));
        }
    }
    best.map_or(b',', |(d, _)| d)
}

/// The end of the last complete record in `buf` (an offset just past a record), if any.
fn last_record_end(buf: &[u8], delimiter: u8) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    // With quotes, only the parser knows where records end.
    let mut rdr = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let mut out = vec![0u8; 1 << 16];
    let mut ends = vec![0usize; 1024];
    let (mut pos, mut last) = (0, None);
    loop {
        let (res, nin, _, _) = rdr.read_record(&buf[pos..], &mut out, &mut ends);
        pos += nin;
        match res {
            ReadRecordResult::Record => last = Some(pos),
            ReadRecordResult::InputEmpty | ReadRecordResult::End => return last,
            ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
        }
        if pos >= buf.len() {
            return last;
        }
    }
}

/// Whether the first row is a header: some column holds text there and numbers below, or every
/// first-row value is text that never appears again in its column; or it names a known column.
fn looks_like_header(rows: &[Vec<Vec<u8>>], known: &[String]) -> bool {
    let Some(first) = rows.first() else {
        return false;
    };
    if first
        .iter()
        .any(|f| known.iter().any(|k| k.as_bytes() == f.as_slice()))
    {
        return true;
    }
    let rest = &rows[1..];
    if rest.is_empty() {
        return !first.iter().any(|f| is_number(f));
    }
    let text_over_number = first
        .iter()
        .enumerate()
        .any(|(i, f)| !is_number(f) && rest.iter().any(|r| r.get(i).is_some_and(|v| is_number(v))));
    text_over_number
        || first.iter().enumerate().all(|(i, f)| {
            !f.is_empty() && !is_number(f) && rest.iter().all(|r| r.get(i).is_none_or(|v| v != f))
        })
}

/// A CSV input whose header has been read; [`CsvFile::chunks`] reads the rows.
pub struct CsvFile {
    /// The field delimiter used.
    pub delimiter: u8,
    /// Whether the first row was taken as a header.
    pub has_header: bool,
    /// Column names (`column_N` without a header).
    pub names: Vec<String>,
    /// The start of the input (complete records), from which types are detected.
    sample: Vec<u8>,
    /// Where the rows start in `sample` (after the header).
    rows_start: usize,
    /// Line of `sample[rows_start]`.
    rows_line: u64,
    rest: Box<dyn Read + Send>,
    /// Whether `sample` holds the whole input.
    eof: bool,
    options: CsvOptions,
}

impl std::fmt::Debug for CsvFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvFile")
            .field("delimiter", &(self.delimiter as char))
            .field("has_header", &self.has_header)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// Reads until `buf` holds `want` bytes or the input ends; returns whether it ended.
fn fill(input: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let need = want.saturating_sub(buf.len());
    if need == 0 {
        return Ok(false);
    }
    buf.reserve_exact(need);
    let n = input.take(need as u64).read_to_end(buf)?;
    Ok(n < need)
}

/// Reads the next block: complete records only, the remainder carried in `carry`.
/// Returns `None` at the end of the input.
fn next_block(
    input: &mut dyn Read,
    carry: &mut Vec<u8>,
    eof: &mut bool,
    block_bytes: usize,
    delimiter: u8,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut want = block_bytes.max(carry.len() + 1);
    loop {
        if !*eof {
            *eof = fill(input, carry, want)?;
        }
        if *eof {
            if carry.is_empty() {
                return Ok(None);
            }
            return Ok(Some(std::mem::take(carry)));
        }
        if let Some(end) = last_record_end(carry, delimiter) {
            let rest = carry[end..].to_vec();
            let mut block = std::mem::replace(carry, rest);
            block.truncate(end);
            return Ok(Some(block));
        }
        // One record longer than a block: read more.
        want = carry.len() * 2;
    }
}

/// Bytes read first to detect the delimiter, the header and the column types.
pub const SAMPLE_BYTES: usize = 1 << 20;

impl CsvFile {
    /// Accepts rows with one extra trailing field (ignored) from now on.
    pub fn allow_extra_trailing_field(&mut self) {
        self.options.extra_trailing_field = true;
    }

    /// Reads the start of `input`, detects the delimiter and header, and reads the names.
    pub fn open(mut input: Box<dyn Read + Send>, options: CsvOptions) -> Result<Self, ReadError> {
        let mut carry = Vec::new();
        let mut eof = false;
        let mut sample = next_block(
            &mut input,
            &mut carry,
            &mut eof,
            SAMPLE_BYTES,
            options.delimiter.unwrap_or(b','),
        )?
        .unwrap_or_default();
        if sample.starts_with(BOM) {
            sample.drain(..3);
        }
        let delimiter = options
            .delimiter
            .unwrap_or_else(|| detect_delimiter(&sample[..sample.len().min(64 << 10)]));
        if options.delimiter.is_none() && delimiter != b',' && !eof {
            // The sample was cut at a record boundary as a comma-separated file would be; with
            // quotes the boundary can differ, so cut it again for the detected delimiter.
            let mut all = sample;
            all.extend_from_slice(&carry);
            match last_record_end(&all, delimiter) {
                Some(end) => {
                    carry = all.split_off(end);
                    sample = all;
                }
                None => {
                    sample = Vec::new();
                    carry = all;
                }
            }
        }
        let rest: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(carry).chain(input));

        let mut rec = Records::new(&sample, delimiter);
        let mut rows: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut first_end = None;
        while rec.next().map_err(ReadError::Csv)?.is_some() {
            rows.push(
                (0..rec.len())
                    .map(|i| trim(rec.field(i)).to_vec())
                    .collect(),
            );
            if first_end.is_none() {
                first_end = Some((rec.pos, rec.line_now()));
            }
            if rows.len() >= SNIFF_ROWS {
                break;
            }
        }
        let Some((after_first, line_after_first)) = first_end else {
            return Err(CsvError::new(
                0,
                "the file is empty: no rows; expected a header and data rows",
            )
            .into());
        };
        let first = &rows[0];
        let has_header = options
            .has_header
            .unwrap_or_else(|| looks_like_header(&rows, &options.known_names));
        let names: Vec<String> = if has_header {
            let mut names = Vec::with_capacity(first.len());
            for (i, f) in first.iter().enumerate() {
                let name = String::from_utf8(f.clone()).map_err(|_| {
                    CsvError::new(
                        line_after_first.saturating_sub(1).max(1),
                        format!(
                            "header field {}: not UTF-8 text; save the file as UTF-8",
                            i + 1
                        ),
                    )
                })?;
                names.push(if name.is_empty() {
                    format!("column_{i}")
                } else {
                    name
                });
            }
            if let Some(dup) = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n))
                .map(|(_, n)| n.clone())
            {
                return Err(CsvError::new(
                    line_after_first.saturating_sub(1).max(1),
                    format!("the header names column `{dup}` twice"),
                )
                .into());
            }
            names
        } else {
            (0..first.len()).map(|i| format!("column_{i}")).collect()
        };
        // The rows start after the header (a header ended by `\r` leaves its `\n` to the rows,
        // which csv-core skips as a blank line and counts), or at the first byte.
        let (rows_start, rows_line) = if has_header {
            (after_first, line_after_first)
        } else {
            (0, 1)
        };
        Ok(CsvFile {
            delimiter,
            has_header,
            names,
            sample,
            rows_start,
            rows_line,
            rest,
            eof,
            options,
        })
    }

    /// Reads the rows in chunks, in file order, parsing on every core.
    ///
    /// `kinds` has one entry per column of [`CsvFile::names`]; `Auto` columns are decided from
    /// the first rows (about [`SAMPLE_BYTES`] of the file).
    pub fn chunks(self, kinds: &[ColumnKind]) -> Result<CsvChunks, ReadError> {
        if kinds.len() != self.names.len() {
            return Err(CsvError::new(
                0,
                format!(
                    "{} column kinds for {} columns",
                    kinds.len(),
                    self.names.len()
                ),
            )
            .into());
        }
        let rows = &self.sample[self.rows_start..];
        let kinds = sniff_kinds(
            rows,
            self.delimiter,
            &self.names,
            kinds,
            &self.options.missing,
        )
        .map_err(|e| ReadError::Csv(shift(e, self.rows_line)))?;
        let parser = Arc::new(BlockParser {
            delimiter: self.delimiter,
            names: self.names.clone(),
            kinds,
            missing: self.options.missing.clone(),
            extra_trailing_field: self.options.extra_trailing_field,
            simple_records: true,
        });
        let block_bytes = self.options.block_bytes.max(1);
        let (pending, next) = if self.eof && rows.len() <= block_bytes {
            (Some(parser.parse(rows)), None)
        } else {
            let threads = match self.options.threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            let mut sample = self.sample;
            sample.drain(..self.rows_start);
            let input = Box::new(std::io::Cursor::new(sample).chain(self.rest));
            (
                None,
                Some(spawn_producer(
                    input,
                    Arc::clone(&parser),
                    threads,
                    block_bytes,
                )),
            )
        };
        Ok(CsvChunks {
            pending,
            next,
            line: self.rows_line,
            row: 0,
            failed: false,
            kinds: parser.kinds.clone(),
        })
    }
}

fn shift(e: CsvError, base: u64) -> CsvError {
    CsvError {
        line: if e.line == 0 { 0 } else { base + e.line - 1 },
        message: e.message,
    }
}

/// Decides `Auto` columns from the rows of the first block: numeric when every present value is
/// a number; a mostly numeric column with a few words is an error (a stray word is far likelier
/// than a category column whose values are nearly all numbers).
fn sniff_kinds(
    block: &[u8],
    delimiter: u8,
    names: &[String],
    hints: &[ColumnKind],
    missing: &MissingValues,
) -> Result<Vec<ColumnKind>, CsvError> {
    if !hints.contains(&ColumnKind::Auto) {
        return Ok(hints.to_vec());
    }
    struct Seen {
        numbers: usize,
        words: usize,
        first_word: Option<(u64, Vec<u8>)>,
    }
    let mut seen: Vec<Seen> = hints
        .iter()
        .map(|_| Seen {
            numbers: 0,
            words: 0,
            first_word: None,
        })
        .collect();
    let mut rec = Records::new(block, delimiter);
    while let Some(line) = rec.next()? {
        if rec.len() != names.len() {
            // Reported with the rows; the counts here only decide types.
            continue;
        }
        for (i, s) in seen.iter_mut().enumerate() {
            if hints[i] != ColumnKind::Auto {
                continue;
            }
            let f = trim(rec.field(i));
            if missing.contains(f) {
                continue;
            }
            if is_number(f) {
                s.numbers += 1;
            } else {
                s.words += 1;
                if s.first_word.is_none() {
                    s.first_word = Some((rec.start_line(line), f.to_vec()));
                }
            }
        }
    }
    let mut kinds = hints.to_vec();
    for (i, s) in seen.into_iter().enumerate() {
        if hints[i] != ColumnKind::Auto {
            continue;
        }
        kinds[i] = if s.words == 0 && s.numbers > 0 {
            ColumnKind::Numeric
        } else if s.numbers >= 20 && s.words * 20 <= s.numbers {
            let (line, word) = s.first_word.unwrap_or_default();
            return Err(CsvError::new(
                line,
                format!(
                    "column `{}`: `{}` is not a number, but {} of the column's first {} values are; \
                     fix the value, list it in `data.missing_values` if it means \"missing\", or \
                     declare the column categorical (`[data.types]` {} = \"categorical\")",
                    names[i],
                    shown(&word),
                    s.numbers,
                    s.numbers + s.words,
                    toml_key(&names[i]),
                ),
            ));
        } else {
            ColumnKind::Text
        };
    }
    Ok(kinds)
}

/// A column name as a TOML key (quoted when it is not a bare key).
pub fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

/// Parses blocks of complete records into typed columns.
#[derive(Debug)]
struct BlockParser {
    delimiter: u8,
    names: Vec<String>,
    kinds: Vec<ColumnKind>,
    missing: MissingValues,
    extra_trailing_field: bool,
    /// Whether simple records take the one-pass path (off only to compare the two paths).
    simple_records: bool,
}

/// A parsed block: its rows and the newlines it held.
#[derive(Debug)]
struct Parsed {
    table: Table,
    newlines: u64,
    bytes: usize,
}

enum Builder {
    Numeric(Vec<f32>),
    Text {
        codes: Vec<u32>,
        levels: Vec<String>,
        index: HashMap<Vec<u8>, u32, foldhash::fast::FixedState>,
        last: Option<(Vec<u8>, u32)>,
    },
    Skip,
}

impl BlockParser {
    fn parse(&self, block: &[u8]) -> Result<Parsed, CsvError> {
        let ncols = self.names.len();
        // A first guess at the row count from the block's size, to size the columns.
        let guess = memchr::memchr_iter(b'\n', block).count() + 1;
        let mut cols: Vec<Builder> = self
            .kinds
            .iter()
            .map(|k| match k {
                ColumnKind::Numeric | ColumnKind::Auto => {
                    Builder::Numeric(Vec::with_capacity(guess))
                }
                ColumnKind::Text => Builder::Text {
                    codes: Vec::with_capacity(guess),
                    levels: Vec::new(),
                    index: HashMap::default(),
                    last: None,
                },
                ColumnKind::Skip => Builder::Skip,
            })
            .collect();
        let mut rec = Records::new(block, self.delimiter);
        // Simple records of quote-free blocks are read in one pass, numbers parsed as they are
        // met; any other record goes through `Records::next`.
        let numeric: Vec<bool> = cols
            .iter()
            .map(|c| matches!(c, Builder::Numeric(_)))
            .collect();
        // (Not with a delimiter that could be part of a number, which the number would swallow.)
        let simple = self.simple_records
            && rec.plain
            && !self.delimiter.is_ascii_alphanumeric()
            && !b"+-.".contains(&self.delimiter);
        let mut numbers = vec![0f32; ncols];
        loop {
            let simple_line = if simple && !rec.done {
                rec.next_simple(&numeric, &mut numbers)
            } else {
                None
            };
            let line = match simple_line {
                Some(line) => line,
                None => match rec.next()? {
                    Some(line) => line,
                    None => break,
                },
            };
            let parsed = simple_line.is_some();
            if rec.len() != ncols && !(self.extra_trailing_field && rec.len() == ncols + 1) {
                return Err(CsvError::new(
                    rec.start_line(line),
                    format!(
                        "has {} fields, expected {ncols} like the first row",
                        rec.len()
                    ),
                ));
            }
            for (i, col) in cols.iter_mut().enumerate() {
                match col {
                    Builder::Skip => {}
                    Builder::Numeric(v) if parsed => v.push(numbers[i]),
                    Builder::Numeric(v) => v.push(
                        self.number(trim(rec.field(i)), i)
                            .map_err(|e| CsvError::new(rec.start_line(line), e.to_string()))?,
                    ),
                    Builder::Text {
                        codes,
                        levels,
                        index,
                        last,
                    } => {
                        let f = trim(rec.field(i));
                        if self.missing.contains(f) {
                            codes.push(MISSING);
                            continue;
                        }
                        if let Some((prev, code)) = last
                            && prev.as_slice() == f
                        {
                            codes.push(*code);
                            continue;
                        }
                        let code = match index.get(f) {
                            Some(&c) => c,
                            None => {
                                let s = std::str::from_utf8(f).map_err(|_| {
                                    CsvError::new(
                                        rec.start_line(line),
                                        format!(
                                            "column `{}`: not UTF-8 text; save the file as UTF-8",
                                            self.names[i]
                                        ),
                                    )
                                })?;
                                let c = levels.len() as u32;
                                levels.push(s.to_string());
                                index.insert(f.to_vec(), c);
                                c
                            }
                        };
                        *last = Some((f.to_vec(), code));
                        codes.push(code);
                    }
                }
            }
        }
        let newlines = rec.newlines();
        let columns = cols
            .into_iter()
            .zip(&self.names)
            .filter_map(|(c, name)| {
                let data = match c {
                    Builder::Skip => return None,
                    Builder::Numeric(v) => ColumnData::Numeric(v),
                    Builder::Text { codes, levels, .. } => ColumnData::Text { codes, levels },
                };
                Some(Column {
                    name: name.clone(),
                    data,
                })
            })
            .collect::<Vec<_>>();
        let table = if columns.is_empty() {
            // Every column skipped: keep the row count through an empty numeric column.
            Table::default()
        } else {
            Table::new(columns).unwrap_or_default()
        };
        Ok(Parsed {
            table,
            newlines,
            bytes: block.len(),
        })
    }

    #[inline]
    fn number(&self, f: &[u8], col: usize) -> Result<f32, FieldError> {
        if let Some(v) = parse_number(f)
            && v.is_finite()
        {
            return Ok(v);
        }
        if self.missing.contains(f) {
            return Ok(f32::NAN);
        }
        let column = self.names[col].clone();
        Err(if f.is_empty() {
            FieldError::Missing { column }
        } else if is_number(f) {
            FieldError::NotFinite {
                column,
                value: shown(f),
            }
        } else {
            FieldError::NotANumber {
                column,
                value: shown(f),
            }
        })
    }
}

type BlockResult = Result<Parsed, ReadError>;

/// Reads blocks on one thread and parses them on `threads` others; the receivers come back in
/// file order, each holding one block's result.
fn spawn_producer(
    mut input: Box<dyn Read + Send>,
    parser: Arc<BlockParser>,
    threads: usize,
    block_bytes: usize,
) -> Receiver<Receiver<BlockResult>> {
    // Bounded queues keep memory bounded: at most `threads` blocks wait to be parsed and
    // `threads` parsed blocks wait to be consumed.
    let (order_tx, order_rx) = sync_channel::<Receiver<BlockResult>>(threads);
    std::thread::spawn(move || {
        let (work_tx, work_rx) = sync_channel::<(Vec<u8>, SyncSender<BlockResult>)>(threads);
        let work_rx = Arc::new(Mutex::new(work_rx));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let work_rx = Arc::clone(&work_rx);
                let parser = Arc::clone(&parser);
                scope.spawn(move || {
                    loop {
                        let job = match work_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok((block, reply)) = job else { return };
                        let _ = reply.send(parser.parse(&block).map_err(ReadError::Csv));
                    }
                });
            }
            let mut carry = Vec::new();
            let mut eof = false;
            loop {
                let (reply_tx, reply_rx) = sync_channel(1);
                match next_block(
                    &mut input,
                    &mut carry,
                    &mut eof,
                    block_bytes,
                    parser.delimiter,
                ) {
                    Ok(None) => break,
                    Ok(Some(block)) => {
                        if order_tx.send(reply_rx).is_err()
                            || work_tx.send((block, reply_tx)).is_err()
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = reply_tx.send(Err(ReadError::Io(e)));
                        let _ = order_tx.send(reply_rx);
                        break;
                    }
                }
            }
            drop(work_tx);
        });
    });
    order_rx
}

/// The rows of a CSV file in chunks, in file order. Dropping it stops the reading threads.
pub struct CsvChunks {
    pending: Option<Result<Parsed, CsvError>>,
    next: Option<Receiver<Receiver<BlockResult>>>,
    line: u64,
    row: usize,
    failed: bool,
    kinds: Vec<ColumnKind>,
}

impl std::fmt::Debug for CsvChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvChunks")
            .field("line", &self.line)
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

impl CsvChunks {
    /// The kind each column was read as (`Auto` resolved), in file order.
    pub fn kinds(&self) -> &[ColumnKind] {
        &self.kinds
    }
}

impl Iterator for CsvChunks {
    type Item = Result<Chunk, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = match self.pending.take() {
            Some(r) => r.map_err(ReadError::Csv),
            None => {
                let rx = self.next.as_ref()?;
                match rx.recv() {
                    Ok(reply) => reply.recv().unwrap_or_else(|_| {
                        Err(ReadError::Io(std::io::Error::other(
                            "a parsing thread stopped unexpectedly",
                        )))
                    }),
                    Err(_) => {
                        self.next = None;
                        return None;
                    }
                }
            }
        };
        match result {
            Ok(parsed) => {
                let chunk = Chunk {
                    first_row: self.row,
                    table: parsed.table,
                    bytes: parsed.bytes,
                };
                self.line += parsed.newlines;
                self.row += chunk.table.rows();
                Some(Ok(chunk))
            }
            Err(ReadError::Csv(e)) => {
                self.failed = true;
                Some(Err(ReadError::Csv(shift(e, self.line))))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The reader's two ways through a block, side by side, for the fuzz targets (`fuzz/`) and the
/// unit tests: what they read must be the same wherever both apply. Not part of the API: built
/// only under `cfg(test)` and `cfg(fuzzing)` (which `cargo fuzz` sets).
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod paths {
    use super::{BlockParser, ColumnKind, MissingValues, Records};
    use crate::data::table::Table;

    /// A block's rows and newlines, or its error as shown.
    pub type Parsed = Result<(Table, u64), String>;

    /// Records as cut: each one's line, starting line and fields; then the newlines counted.
    pub type Split = Result<(Vec<(u64, u64, Vec<Vec<u8>>)>, u64), String>;

    /// `block` parsed with its simple records taken in one pass, and through the general path
    /// only (`Auto` columns read as numbers, as after detection).
    pub fn parse_both(
        block: &[u8],
        delimiter: u8,
        kinds: &[ColumnKind],
        extra_trailing_field: bool,
    ) -> (Parsed, Parsed) {
        let parse = |simple_records| {
            BlockParser {
                delimiter,
                names: (0..kinds.len()).map(|i| format!("c{i}")).collect(),
                kinds: kinds.to_vec(),
                missing: MissingValues::default(),
                extra_trailing_field,
                simple_records,
            }
            .parse(block)
            .map(|p| (p.table, p.newlines))
            .map_err(|e| e.to_string())
        };
        (parse(true), parse(false))
    }

    /// A quote-free block's records cut by the `memchr` path and by `csv-core`; `None` when the
    /// block has quotes (or a lone carriage return), which only `csv-core` reads.
    pub fn split_both(block: &[u8], delimiter: u8) -> Option<(Split, Split)> {
        let fast = Records::new(block, delimiter);
        if !fast.plain {
            return None;
        }
        let split = |mut r: Records| -> Split {
            let mut out = Vec::new();
            while let Some(line) = r.next().map_err(|e| e.to_string())? {
                let fields = (0..r.len()).map(|i| r.field(i).to_vec()).collect();
                out.push((line, r.start_line(line), fields));
            }
            Ok((out, r.newlines()))
        };
        let slow = Records::new(block, delimiter).without_fast_path();
        Some((split(fast), split(slow)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::TableBuilder;

    fn open(text: &str, options: CsvOptions) -> Result<CsvFile, ReadError> {
        CsvFile::open(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            options,
        )
    }

    fn read_with(
        text: &str,
        options: CsvOptions,
        kinds: Option<Vec<ColumnKind>>,
    ) -> Result<Table, ReadError> {
        let file = open(text, options)?;
        let kinds = kinds.unwrap_or_else(|| vec![ColumnKind::Auto; file.names.len()]);
        let mut b = TableBuilder::new();
        for chunk in file.chunks(&kinds)? {
            // A mismatch (a reader bug) is an error like any other here, shown as it is.
            b.push(chunk?.table)
                .map_err(|e| ReadError::Csv(CsvError::new(0, e.to_string())))?;
        }
        Ok(b.finish())
    }

    fn read(text: &str) -> Result<Table, ReadError> {
        read_with(text, CsvOptions::default(), None)
    }

    /// A field that starts with the bytes of a byte-order mark, where a block (parsed on its
    /// own) starts, keeps them: csv-core drops a mark at the start of its input, and a block
    /// with quotes goes through csv-core. Found by the `csv` fuzz target: the `memchr` path
    /// kept the mark and csv-core did not.
    #[test]
    fn a_byte_order_mark_starting_a_block_stays_in_its_field() {
        let block = "\u{feff}b,\"2\"\n".as_bytes();
        let mut rec = Records::new(block, b',');
        assert!(!rec.plain);
        assert_eq!(rec.next().unwrap(), Some(1));
        assert_eq!(rec.field(0), "\u{feff}b".as_bytes());
        assert_eq!(rec.field(1), b"2");
        let (fast, slow) = paths::split_both("\u{feff}a,b\n1,2\n".as_bytes(), b',').unwrap();
        assert_eq!(fast, slow);

        // A file: its own mark is skipped; a later block starting with the same bytes is data.
        let text = "\u{feff}name,x\n\"q\",1\n\u{feff}b,2\n";
        let second = text.find("\n\"q").unwrap() + 1;
        let blocks = CsvOptions {
            block_bytes: text.len() - second - "\u{feff}b,2\n".len(),
            threads: 1,
            ..CsvOptions::default()
        };
        for table in [read(text).unwrap(), read_with(text, blocks, None).unwrap()] {
            assert_eq!(
                texts(&table, "name"),
                [Some("q".into()), Some("\u{feff}b".into())]
            );
        }
    }

    fn num(t: &Table, name: &str) -> Vec<f32> {
        match &t.column(name).unwrap().data {
            ColumnData::Numeric(v) => v.clone(),
            other => panic!("{name} is {other:?}"),
        }
    }

    fn texts(t: &Table, name: &str) -> Vec<Option<String>> {
        let d = &t.column(name).unwrap().data;
        assert_eq!(d.kind(), "text", "{name}");
        (0..d.len()).map(|i| d.text(i)).collect()
    }

    #[test]
    fn types_missing_values_and_header() {
        let t = read("species,island,bill,sex\nAdelie,Torgersen,39.1,male\nAdelie,Dream,NA,\nGentoo,Biscoe,47.5,?\n").unwrap();
        assert_eq!(t.names(), ["species", "island", "bill", "sex"]);
        assert_eq!(t.rows(), 3);
        let bill = num(&t, "bill");
        assert_eq!(bill[0], 39.1);
        assert!(bill[1].is_nan());
        assert_eq!(texts(&t, "sex"), [Some("male".to_string()), None, None]);
        assert_eq!(
            texts(&t, "island"),
            ["Torgersen", "Dream", "Biscoe"].map(|s| Some(s.to_string()))
        );
    }

    #[test]
    fn delimiters_are_detected() {
        assert_eq!(detect_delimiter(b"a;b;c\n1;2;3\n"), b';');
        assert_eq!(detect_delimiter(b"a\tb\n1\t2\n"), b'\t');
        assert_eq!(detect_delimiter(b"a,b\n1,2\n"), b',');
        // Commas inside quoted fields do not count.
        assert_eq!(detect_delimiter(b"name;x\n\"a,b\";1\n\"c,d,e\";2\n"), b';');
        // Nothing consistent: comma.
        assert_eq!(detect_delimiter(b"just text\n"), b',');
        // Decimal commas are not numbers: such a column is read as text.
        let t = read("x;y\n1,5;a\n2;b\n").unwrap();
        assert_eq!(texts(&t, "x")[0].as_deref(), Some("1,5"));
        let t = read("x\ty\n1.5\ta\n2\tb\n").unwrap();
        assert_eq!(num(&t, "x"), [1.5, 2.0]);
    }

    #[test]
    fn headerless_files_get_column_names() {
        let t = read("5.1,3.5,Iris-setosa\n7.0,3.2,Iris-versicolor\n").unwrap();
        assert_eq!(t.names(), ["column_0", "column_1", "column_2"]);
        assert_eq!(t.rows(), 2);
        // Text only: a first row whose values never recur is a header.
        let t = read("color,size\nred,big\nblue,big\n").unwrap();
        assert_eq!(t.names(), ["color", "size"]);
        let t = read("red,big\nblue,big\nred,small\n").unwrap();
        assert_eq!(t.names(), ["column_0", "column_1"]);
        // A known name makes the first row a header.
        let opts = CsvOptions {
            known_names: vec!["a".into()],
            ..CsvOptions::default()
        };
        let t = read_with("a,b\n1,2\n", opts, None).unwrap();
        assert_eq!(t.names(), ["a", "b"]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let m = read("a,b,y\n1,2,x\n1,2\n").unwrap_err().to_string();
        assert!(
            m.contains("line 3") && m.contains("2 fields, expected 3"),
            "{m}"
        );
        let m = read_with(
            "a,b\n1,x\n2,oops\n",
            CsvOptions::default(),
            Some(vec![ColumnKind::Numeric, ColumnKind::Text]),
        )
        .unwrap();
        assert_eq!(m.rows(), 2);
        let m = read_with(
            "a,b\n1,x\noops,y\n",
            CsvOptions::default(),
            Some(vec![ColumnKind::Numeric, ColumnKind::Text]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            m.contains("line 3") && m.contains("`a`") && m.contains("`oops` is not a number"),
            "{m}"
        );
        let m = read_with(
            "a,b\n1,x\ninf,y\n",
            CsvOptions::default(),
            Some(vec![ColumnKind::Numeric, ColumnKind::Text]),
        )
        .unwrap_err()
        .to_string();
        assert!(m.contains("line 3") && m.contains("finite"), "{m}");
        let m = read("").unwrap_err().to_string();
        assert!(m.contains("empty"), "{m}");
        let m = read("a,a\n1,2\n").unwrap_err().to_string();
        assert!(m.contains("`a` twice"), "{m}");
    }

    #[test]
    fn a_stray_word_in_a_numeric_column_is_an_error() {
        let mut text = String::from("x,y\n");
        for i in 0..40 {
            text.push_str(&format!("{i}.5,a\n"));
        }
        text.push_str("oops,b\n");
        let m = read(&text).unwrap_err().to_string();
        assert!(
            m.contains("line 42") && m.contains("`x`") && m.contains("oops"),
            "{m}"
        );
        assert!(m.contains("categorical"), "{m}");
        // A column of words with a few numbers is text.
        let t = read("x,y\na,1\nb,2\n3,3\n").unwrap();
        assert_eq!(texts(&t, "x")[2].as_deref(), Some("3"));
    }

    #[test]
    fn non_utf8_text_is_an_error() {
        let bytes = b"a,b\n1,\xff\xfe\n".to_vec();
        let file =
            CsvFile::open(Box::new(std::io::Cursor::new(bytes)), CsvOptions::default()).unwrap();
        let err = file
            .chunks(&[ColumnKind::Auto, ColumnKind::Auto])
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn quoted_fields_crlf_bom_and_blank_lines() {
        let t =
            read("\u{feff}name,x\r\n\"a, b\",1\r\n\r\n\"multi\nline\",2\r\n,\r\n\"q\"\"\",3\r\n")
                .unwrap();
        assert_eq!(t.names(), ["name", "x"]);
        assert_eq!(num(&t, "x"), [1.0, 2.0, 3.0]);
        assert_eq!(
            texts(&t, "name"),
            ["a, b", "multi\nline", "q\""].map(|s| Some(s.to_string()))
        );
        // Line numbers stay right after CRLF and blank lines.
        let m = read_with("a,b\r\n1,x\r\n\r\n2,y,z\r\n", CsvOptions::default(), None)
            .unwrap_err()
            .to_string();
        assert!(m.starts_with("line 4"), "{m}");
    }

    #[test]
    fn skipped_columns_are_not_parsed() {
        let t = read_with(
            "id,x\nanything at all,1\n\u{1}weird,2\n",
            CsvOptions::default(),
            Some(vec![ColumnKind::Skip, ColumnKind::Numeric]),
        )
        .unwrap();
        assert_eq!(t.names(), ["x"]);
        assert_eq!(num(&t, "x"), [1.0, 2.0]);
    }

    /// Small blocks and several threads give the same table as one block, with the same
    /// line numbers in errors.
    #[test]
    fn blocks_and_threads_do_not_change_the_result() {
        let mut text = String::from("x,c,q\n");
        for i in 0..2000 {
            text.push_str(&format!(
                "{},{},\"{}\n{}\"\n",
                i as f32 / 4.0,
                ["r", "g", "b", ""][i % 4],
                i,
                i % 7
            ));
        }
        let whole = read(&text).unwrap();
        for (block_bytes, threads) in [(1024, 1), (1024, 2), (3000, 3), (64, 2)] {
            let opts = CsvOptions {
                block_bytes,
                threads,
                ..CsvOptions::default()
            };
            let t = read_with(&text, opts, None).unwrap();
            assert_eq!(t, whole, "{block_bytes} {threads}");
        }
        // An error deep in the file names its line, whatever the blocks.
        let bad = text.clone() + "oops,r,\"1\n2\"\n";
        let expected = 1 + 2000 * 2 + 1;
        for (block_bytes, threads) in [(1024, 2), (1 << 20, 1)] {
            let opts = CsvOptions {
                block_bytes,
                threads,
                ..CsvOptions::default()
            };
            let m = read_with(&bad, opts, None).unwrap_err().to_string();
            assert!(m.starts_with(&format!("line {expected}, ")), "{m}");
        }
    }

    #[test]
    fn chunks_are_bounded_and_numbered() {
        let mut text = String::from("x\n");
        for i in 0..10_000 {
            text.push_str(&format!("{i}\n"));
        }
        let opts = CsvOptions {
            block_bytes: 4096,
            threads: 2,
            ..CsvOptions::default()
        };
        let file = open(&text, opts).unwrap();
        let mut next_row = 0;
        let mut chunks = 0;
        for chunk in file.chunks(&[ColumnKind::Auto]).unwrap() {
            let chunk = chunk.unwrap();
            assert_eq!(chunk.first_row, next_row);
            assert!(chunk.table.rows() <= 4096);
            assert_eq!(num(&chunk.table, "x")[0], next_row as f32);
            next_row += chunk.table.rows();
            chunks += 1;
        }
        assert_eq!(next_row, 10_000);
        assert!(chunks > 5, "{chunks}");
    }

    #[test]
    fn a_delimiter_that_could_be_part_of_a_number_still_splits_fields() {
        // With a third, ignored field the number swallowing the first delimiter would still
        // leave two fields.
        for d in [b'.', b'-', b'e'] {
            let text = format!("a{0}b\n1{0}5{0}9\n2{0}25\n", d as char);
            let opts = CsvOptions {
                delimiter: Some(d),
                extra_trailing_field: true,
                ..CsvOptions::default()
            };
            let t = read_with(&text, opts, None).unwrap();
            assert_eq!(
                (num(&t, "a"), num(&t, "b")),
                (vec![1.0, 2.0], vec![5.0, 25.0])
            );
        }
    }

    #[test]
    fn custom_missing_markers() {
        let opts = CsvOptions {
            missing: MissingValues::new(["-"]),
            ..CsvOptions::default()
        };
        let t = read_with("a,b\n1,x\n-,y\n", opts.clone(), None).unwrap();
        assert!(num(&t, "a")[1].is_nan());
        // An empty field is no longer missing.
        let m = read_with(
            "a,b\n1,x\n,y\n",
            opts,
            Some(vec![ColumnKind::Numeric, ColumnKind::Text]),
        )
        .unwrap_err()
        .to_string();
        assert!(m.contains("missing value (empty field)"), "{m}");
    }

    mod properties {
        use super::*;
        use crate::data::fixtures::cells;
        use crate::data::table::{TableBuilder, format_number};
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary bytes never panic the reader, with any block size.
            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in proptest::collection::vec(any::<u8>(), 0..600),
                block in 1usize..200,
            ) {
                let opts = CsvOptions { block_bytes: block, threads: 2, ..CsvOptions::default() };
                if let Ok(file) = CsvFile::open(Box::new(std::io::Cursor::new(bytes)), opts) {
                    let kinds = vec![ColumnKind::Auto; file.names.len()];
                    if let Ok(chunks) = file.chunks(&kinds) {
                        for c in chunks {
                            if c.is_err() { break; }
                        }
                    }
                }
            }

            /// Quote-free input is cut into the same records, fields and line numbers by the
            /// `memchr` path as by `csv-core`.
            #[test]
            fn the_fast_path_splits_records_as_csv_core_does(
                text in "([0-9]{1,3}(\\.[0-9])?|[a-z ]{1,3}|NA|,|;|\t|\n|\r\n| ){0,150}",
                delimiter in prop::sample::select(vec![b',', b';', b'\t']),
            ) {
                let (fast, slow) = paths::split_both(text.as_bytes(), delimiter)
                    .expect("quote-free text takes the fast path");
                prop_assert!(fast.is_ok());
                prop_assert_eq!(fast, slow);
            }

            /// A block reads the same with simple records taken in one pass as through the
            /// general path: the same columns, or the same error at the same line.
            #[test]
            fn simple_records_read_as_the_general_path_reads_them(
                text in "(-?[0-9]{1,3}(\\.[0-9]{1,4})?(e-?[0-9])?|[a-z ]{1,3}|NA|nan|inf|1e99|\\.|,|\n|\r\n| ){0,200}",
                kinds in proptest::collection::vec(
                    prop::sample::select(vec![ColumnKind::Auto, ColumnKind::Numeric, ColumnKind::Text, ColumnKind::Skip]),
                    1..5,
                ),
                extra in any::<bool>(),
            ) {
                let (simple, general) = paths::parse_both(text.as_bytes(), b',', &kinds, extra);
                prop_assert_eq!(simple, general);
            }

            /// A short decimal is read as `str::parse::<f32>` reads its text, and as far as
            /// `fast-float2` reads it; what it declines, `fast-float2` reads.
            #[test]
            fn short_decimals_parse_as_the_standard_library_parses_them(
                text in "[-+]?[0-9]{0,10}(\\.[0-9]{0,10})?([eE.,][-+0-9]{0,3})?[,a-z\n]?",
            ) {
                if let Some((v, n)) = parse_short_decimal(text.as_bytes()) {
                    prop_assert_eq!(Ok(v.to_bits()), text[..n].parse::<f32>().map(f32::to_bits));
                    let (w, m) = fast_float2::parse_partial::<f32, _>(text.as_bytes()).unwrap();
                    prop_assert_eq!((v.to_bits(), n), (w.to_bits(), m));
                }
            }

            /// Numbers parse from the bytes as `str::parse::<f32>` parses them.
            #[test]
            fn numbers_parse_as_the_standard_library_parses_them(
                text in "[-+]?([0-9]{0,12}(\\.[0-9]{0,9})?([eE][-+]?[0-9]{1,3})?|inf|NaN|nan|infinity|[0-9a-z.]{1,6})",
            ) {
                let bits = |v: f32| if v.is_nan() { u32::MAX } else { v.to_bits() };
                prop_assert_eq!(
                    parse_number(text.as_bytes()).map(bits),
                    text.parse::<f32>().ok().map(bits)
                );
            }

            /// CSV-like text reads the same in one block as in many: the same rows, or the
            /// same error.
            #[test]
            fn block_size_does_not_change_what_is_read(
                text in "([0-9]{1,3}(\\.[0-9])?|[a-z]{1,3}|NA|\"|,|;|\n| ){0,120}",
                block in 1usize..100,
            ) {
                let one = read(&text);
                let many = read_with(&text, CsvOptions { block_bytes: block, threads: 2, ..CsvOptions::default() }, None);
                prop_assert_eq!(one.map_err(|e| e.to_string()), many.map_err(|e| e.to_string()));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// The delimiter of any rectangular table of plain cells is detected.
            #[test]
            fn delimiters_are_detected(
                table in (2usize..6).prop_flat_map(|c| proptest::collection::vec(
                    proptest::collection::vec("[a-z0-9.]{1,5}", c), 2..10)),
                sep in prop::sample::select(vec![b',', b';', b'\t']),
            ) {
                let text: String = table
                    .iter()
                    .map(|r| r.join(&(sep as char).to_string()) + "\n")
                    .collect();
                prop_assert_eq!(detect_delimiter(text.as_bytes()), sep);
            }

            /// With any list of missing-value markers, a cell is missing exactly when it is
            /// one of them (after trimming), in numeric and text columns alike.
            #[test]
            fn missing_value_markers_are_missing_and_nothing_else(
                markers in proptest::collection::vec("[A-Za-z?_]{1,4}", 1..4),
                rows in proptest::collection::vec((any::<bool>(), 0usize..4, -1e3f32..1e3, "[a-z]{1,3}"), 1..30),
            ) {
                let mut text = String::from("x,word\n");
                let mut expected = (Vec::new(), Vec::new());
                for (marked, m, x, w) in &rows {
                    let marker = &markers[m % markers.len()];
                    if *marked {
                        text += &format!(" {marker},{marker}\n");
                        expected.0.push(None);
                        expected.1.push(None);
                    } else {
                        text += &format!("{x},{w}\n");
                        expected.0.push(Some(format_number(*x)));
                        expected.1.push((!markers.contains(w)).then(|| w.clone()));
                    }
                }
                let options = CsvOptions {
                    has_header: Some(true),
                    delimiter: Some(b','),
                    missing: MissingValues::new(&markers),
                    threads: 1,
                    ..CsvOptions::default()
                };
                let file = CsvFile::open(Box::new(std::io::Cursor::new(text.clone().into_bytes())), options).unwrap();
                let mut builder = TableBuilder::new();
                for chunk in file.chunks(&[ColumnKind::Numeric, ColumnKind::Text]).unwrap() {
                    builder.push(chunk.unwrap().table).unwrap();
                }
                let t = builder.finish();
                prop_assert_eq!(cells(&t), vec![expected.0, expected.1], "{}", text);
            }
        }
    }
}
