//! One value given as text, read as a number: a JSON field, a cell of a column read as text.
//! [`BadValue`] says why it is not one; the caller says where it was.

pub use crate::error::BadValue;

/// Parses one number, refusing empty, non-numeric and non-finite values.
pub fn parse_number(s: &str) -> std::result::Result<f32, BadValue> {
    if s.is_empty() {
        return Err(BadValue::Missing);
    }
    let shown = || match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    };
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(BadValue::NotFinite(shown())),
        Err(_) => Err(BadValue::NotANumber(shown())),
    }
}
