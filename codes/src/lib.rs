//! The yisaozhi signed merchant code. (Module docs to be completed with the format.)
#![deny(missing_docs)]

mod day;
mod grade;

pub use day::Day;
pub use grade::Grade;

/// The longest merchant id a code can carry, in bytes.
pub const MAX_MERCHANT_LEN: usize = 32;
