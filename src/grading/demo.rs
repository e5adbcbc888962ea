//! The demo's merchants graded: samples for tests, and of the text every
//! answer holds (the scan path's shared wording).

use jiff::civil::Date;

use crate::model::{Override, Projection};
use crate::records::{parse_merchant, parse_record};

use super::project::project;
use super::rules::Rules;

/// The demo's projections as of `as_of` (updated that morning), with
/// `override_` on each.
pub fn demo_projections(as_of: Date, override_: Option<&Override>) -> Vec<Projection> {
    graded(as_of, override_, true)
}

/// Samples for learning the wording every answer holds: the demo's
/// merchants in order, each as of one of two days a year apart by turns,
/// and two in every four graded without their records. A sample and those
/// 1 and 3 after it differ in the merchant, the day and every date; a
/// sample and the next have records, or have none, alike.
pub fn wording_samples() -> Vec<Projection> {
    let days = [
        jiff::civil::date(2026, 3, 1),
        jiff::civil::date(2027, 4, 15),
    ];
    let by_day = days.map(|day| [graded(day, None, true), graded(day, None, false)]);
    (0..by_day[0][0].len())
        .map(|i| by_day[i % 2][usize::from(i % 4 >= 2)][i].clone())
        .collect()
}

/// The demo's merchants graded as of `as_of`, with their records or none.
fn graded(as_of: Date, override_: Option<&Override>, with_records: bool) -> Vec<Projection> {
    let sample = crate::demo_data::sample(as_of);
    let records: Vec<_> = sample
        .records
        .iter()
        .filter(|_| with_records)
        .map(|r| parse_record(&r.to_string()).expect("the demo's records parse"))
        .collect();
    let updated_at = as_of
        .at(6, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("a day in range")
        .timestamp();
    sample
        .merchants
        .iter()
        .map(|m| {
            let m = parse_merchant(&m.to_string()).expect("the demo's merchants parse");
            let own: Vec<_> = records
                .iter()
                .filter(|r| r.merchant == m.id)
                .cloned()
                .collect();
            project(&m, &own, override_, &Rules::default(), as_of, updated_at)
        })
        .collect()
}
