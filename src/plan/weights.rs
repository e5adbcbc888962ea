//! Grade weights (`--weights red=4,yellow=2,green=1`), kept as whole
//! thousandths so that every sum and comparison of a draw is exact.

use serde::{Deserialize, Serialize};

use crate::model::{truncate, Grade};

/// The largest weight of a grade.
pub const MAX_WEIGHT: u64 = 1000;

/// The weight of each grade, in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub red: u64,
    pub yellow: u64,
    pub green: u64,
}

impl Default for Weights {
    /// red 4, yellow 2, green 1 (CONTRACT §7).
    fn default() -> Self {
        Weights {
            red: 4000,
            yellow: 2000,
            green: 1000,
        }
    }
}

impl Weights {
    /// The weight of a grade, in thousandths.
    pub fn of(&self, g: Grade) -> u64 {
        match g {
            Grade::Red => self.red,
            Grade::Yellow => self.yellow,
            Grade::Green => self.green,
        }
    }

    /// Parses `grade=number,...`: each of red, yellow, green at most once
    /// (one left out keeps its default), a number from 0 to 1000 with at
    /// most three decimals, and at least one weight above zero.
    pub fn parse(raw: &str) -> Result<Weights, String> {
        let mut w = Weights::default();
        let mut seen: Vec<&str> = Vec::new();
        for part in raw.split(',') {
            let part = part.trim();
            let Some((grade, number)) = part.split_once('=') else {
                return Err(format!(
                    "weights: expected grade=number (e.g. red=4,yellow=2,green=1), got `{}`",
                    truncate(part)
                ));
            };
            let grade = grade.trim();
            let g = Grade::from_name(grade).ok_or_else(|| {
                format!(
                    "weights: unknown grade `{}` (expected red, yellow or green)",
                    truncate(grade)
                )
            })?;
            if seen.contains(&grade) {
                return Err(format!("weights: `{grade}` is given twice"));
            }
            seen.push(grade);
            let milli = parse_milli(number.trim()).ok_or_else(|| {
                format!(
                    "weights: {grade}=`{}`: expected a number from 0 to {MAX_WEIGHT} with at most 3 decimals",
                    truncate(number.trim())
                )
            })?;
            match g {
                Grade::Red => w.red = milli,
                Grade::Yellow => w.yellow = milli,
                Grade::Green => w.green = milli,
            }
        }
        if w.red == 0 && w.yellow == 0 && w.green == 0 {
            return Err("weights: at least one grade needs a weight above 0".into());
        }
        Ok(w)
    }

    /// `red=4,yellow=2,green=1`.
    pub fn to_text(&self) -> String {
        format!(
            "red={},yellow={},green={}",
            milli_text(self.red),
            milli_text(self.yellow),
            milli_text(self.green)
        )
    }
}

/// `2.5` → 2500; `None` unless 0 ≤ x ≤ [`MAX_WEIGHT`] with at most three
/// decimals (digits only: no sign, exponent or spaces).
fn parse_milli(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 4 || frac.len() > 3 || !digits(int) || !digits(frac) {
        return None;
    }
    if s.contains('.') && frac.is_empty() {
        return None;
    }
    let mut milli = int.parse::<u64>().ok()? * 1000;
    let mut scale = 100;
    for b in frac.bytes() {
        milli += u64::from(b - b'0') * scale;
        scale /= 10;
    }
    (milli <= MAX_WEIGHT * 1000).then_some(milli)
}

/// Thousandths as the shortest decimal: 4000 → `4`, 2500 → `2.5`.
pub fn milli_text(m: u64) -> String {
    let (int, frac) = (m / 1000, m % 1000);
    if frac == 0 {
        int.to_string()
    } else {
        format!("{int}.{:03}", frac)
            .trim_end_matches('0')
            .to_owned()
    }
}

/// Thousandths as a JSON number: whole when it is one.
pub fn milli_json(m: u64) -> serde_json::Value {
    if m % 1000 == 0 {
        serde_json::Value::from(m / 1000)
    } else {
        serde_json::Value::from(m as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_to_thousandths_or_name_what_is_wrong() {
        assert_eq!(
            Weights::parse("red=4,yellow=2,green=1").unwrap(),
            Weights::default()
        );
        let w = Weights::parse(" red = 2.5 , green=0").unwrap();
        assert_eq!((w.red, w.yellow, w.green), (2500, 2000, 0));
        assert_eq!(w.to_text(), "red=2.5,yellow=2,green=0");
        assert_eq!(Weights::parse("green=0.125").unwrap().green, 125);
        let bad = [
            ("red", "expected grade=number"),
            ("blue=1", "unknown grade `blue`"),
            ("red=1,red=2", "given twice"),
            ("red=-1", "expected a number from 0 to 1000"),
            ("red=1e3", "expected a number"),
            ("red=1001", "expected a number"),
            ("red=0.0001", "at most 3 decimals"),
            ("red=NaN", "expected a number"),
            ("red=1.", "expected a number"),
            ("red=", "expected a number"),
            ("red=0,yellow=0,green=0", "at least one grade"),
            ("", "expected grade=number"),
        ];
        for (raw, want) in bad {
            let err = Weights::parse(raw).unwrap_err();
            assert!(err.contains(want), "{raw}: {err}");
        }
    }

    #[test]
    fn thousandths_print_as_short_decimals() {
        assert_eq!(milli_text(0), "0");
        assert_eq!(milli_text(1000), "1");
        assert_eq!(milli_text(1500), "1.5");
        assert_eq!(milli_text(1005), "1.005");
        assert_eq!(milli_json(4000), serde_json::json!(4));
        assert_eq!(milli_json(2500), serde_json::json!(2.5));
    }
}
