//! Money in whole cents: sums of cents are exact and the same in any order, which sums
//! of floats are not (a window's revenue must not depend on how batches were cut).

/// `amount` in cents, rounded to the nearest cent.
pub fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

pub fn amount(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// `part / whole`, or `None` when there is no whole.
pub fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}
