//! The checks a writer makes of a field it is given: the name a token, the value free of
//! control bytes but HTAB (so that no field can split a head).

use super::super::parse::{all_value_bytes, TCHAR};

#[inline]
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().fold(true, |ok, b| ok & TCHAR[b as usize])
}

#[inline]
pub(crate) fn valid_value(value: &[u8]) -> bool {
    all_value_bytes(value)
}
