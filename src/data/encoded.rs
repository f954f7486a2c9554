//! [`Encoded`]: rows as a network takes them, the one batch type that training, prediction and
//! scoring pass around.
//!
//! A row is dense numbers (scaled numeric inputs, missing-value indicators, one-hot levels) and,
//! for each category column the recipe embeds, an integer code that the network's embedding
//! table looks up. Recipe `mlp` version 1 embeds no column: its batches have no codes.

/// Rows encoded for a network: `rows` x `dense_width` numbers and `rows` x `code_width`
/// category codes, both row-major.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Encoded {
    rows: usize,
    dense: Vec<f32>,
    dense_width: usize,
    codes: Vec<u32>,
    code_width: usize,
}

/// Why buffers do not make a batch: a buffer's length is not its rows times its width.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} has {len} values, not {rows} rows of {width}")]
pub struct ShapeError {
    /// `dense` or `codes`.
    pub what: &'static str,
    /// The buffer's length.
    pub len: usize,
    /// Rows asked for.
    pub rows: usize,
    /// The width asked for.
    pub width: usize,
}

impl Encoded {
    /// A batch of `rows` rows from row-major `dense` numbers (`dense_width` per row) and `codes`
    /// (`code_width` per row).
    pub fn new(
        rows: usize,
        dense: Vec<f32>,
        dense_width: usize,
        codes: Vec<u32>,
        code_width: usize,
    ) -> Result<Self, ShapeError> {
        for (what, len, width) in [
            ("dense", dense.len(), dense_width),
            ("codes", codes.len(), code_width),
        ] {
            if rows.checked_mul(width) != Some(len) {
                return Err(ShapeError {
                    what,
                    len,
                    rows,
                    width,
                });
            }
        }
        Ok(Encoded {
            rows,
            dense,
            dense_width,
            codes,
            code_width,
        })
    }

    /// A batch of dense numbers only: `dense.len() / width` rows (none when `width` is 0).
    pub fn dense_only(dense: Vec<f32>, width: usize) -> Result<Self, ShapeError> {
        let rows = dense.len().checked_div(width).unwrap_or(0);
        Self::new(rows, dense, width, Vec::new(), 0)
    }

    /// `rows` rows of `width` dense numbers, built by the encoder with the lengths right.
    pub(crate) fn from_dense(rows: usize, dense: Vec<f32>, width: usize) -> Self {
        debug_assert_eq!(dense.len(), rows * width);
        Encoded {
            rows,
            dense,
            dense_width: width,
            codes: Vec::new(),
            code_width: 0,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Dense numbers per row.
    pub fn dense_width(&self) -> usize {
        self.dense_width
    }

    /// Category codes per row.
    pub fn code_width(&self) -> usize {
        self.code_width
    }

    /// The dense numbers, row-major.
    pub fn dense(&self) -> &[f32] {
        &self.dense
    }

    /// The dense numbers, row-major, to change in place (scaling).
    pub fn dense_mut(&mut self) -> &mut [f32] {
        &mut self.dense
    }

    /// The category codes, row-major.
    pub fn codes(&self) -> &[u32] {
        &self.codes
    }

    /// The buffers, for a device upload that takes them without a copy.
    pub fn into_parts(self) -> (Vec<f32>, Vec<u32>) {
        (self.dense, self.codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_whole_rows_of_both_buffers() {
        let b = Encoded::new(2, vec![1.0; 6], 3, vec![0, 1, 2, 3], 2).unwrap();
        assert_eq!((b.rows(), b.dense_width(), b.code_width()), (2, 3, 2));
        assert_eq!(b.codes(), [0, 1, 2, 3]);
        let e = Encoded::new(2, vec![1.0; 5], 3, Vec::new(), 0).unwrap_err();
        assert_eq!(e.to_string(), "dense has 5 values, not 2 rows of 3");
        let e = Encoded::new(2, vec![1.0; 6], 3, vec![0; 3], 2).unwrap_err();
        assert_eq!(e.what, "codes");
        let d = Encoded::dense_only(vec![0.0; 8], 4).unwrap();
        assert_eq!((d.rows(), d.code_width(), d.codes().len()), (2, 0, 0));
        assert!(Encoded::dense_only(vec![0.0; 7], 4).is_err());
    }
}
