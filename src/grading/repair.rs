//! Credit repair (信用修复) in grading: a `repair` record names a penalty or
//! a list entry; from the repair's date, the rules the rules file marks
//! `repairable` stop counting it. A repaired penalty's publicity ends the
//! day before the repair; a repaired list entry counts as removed on the
//! repair's date (unless a later entry had already replaced it). Rules
//! that are not repairable (every red rule) see the records as they are.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::ToSpan;

use crate::model::{Record, RecordBody};

/// The earliest repair of each repaired record id, with the repair's index.
pub(super) struct Repairs<'a>(HashMap<&'a str, (Date, usize)>);

impl<'a> Repairs<'a> {
    pub(super) fn of(records: &'a [Record]) -> Repairs<'a> {
        let mut map: HashMap<&str, (Date, usize)> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if let RecordBody::Repair { record } = &r.body {
                let e = map.entry(record.as_str()).or_insert((r.date, i));
                if r.date < e.0 {
                    *e = (r.date, i);
                }
            }
        }
        Repairs(map)
    }

    /// The date of the earliest repair of `id`, if it is not dated before
    /// the record it repairs (`from`): a repair cannot precede its record.
    pub(super) fn of_record(&self, id: &str, from: Date) -> Option<(Date, usize)> {
        self.0.get(id).copied().filter(|(d, _)| *d >= from)
    }
}

/// The last day a penalty dated `from` is in publicity, given its
/// `publicity_until` and its repair: `None` if no day is left.
pub(super) fn publicity_last_day(from: Date, until: Date, repaired: Option<Date>) -> Option<Date> {
    let last = match repaired {
        Some(d) => until.min(d.checked_sub(1.day()).ok()?),
        None => until,
    };
    (last >= from).then_some(last)
}

/// One list's entries, sorted by date (same-day ties in slice order), each
/// `(date, record index, is an add)`, with a removal added on the date of
/// each repair of an `add` entry that is still the entry in force then.
pub(super) fn with_repairs(
    mut entries: Vec<(Date, usize, bool)>,
    records: &[Record],
    repairs: &Repairs,
) -> Vec<(Date, usize, bool)> {
    let mut k = 0;
    while k < entries.len() {
        let (date, i, add) = entries[k];
        let repair = add
            .then(|| repairs.of_record(&records[i].id, date))
            .flatten();
        if let Some((on, by)) = repair {
            // Still in force on the repair's date: no later entry by then.
            if entries.get(k + 1).is_none_or(|next| next.0 > on) {
                entries.insert(k + 1, (on, by, false));
                k += 1;
            }
        }
        k += 1;
    }
    entries
}
