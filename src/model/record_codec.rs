//! The compact binary form of a record, for the stores' temporary files: a
//! bulk import's sorted runs carry each record in it so that the regrade
//! after a first load reads them back without the JSON parser (the record
//! passed every input check when it was parsed).

use jiff::civil::Date;

use super::newtypes::MerchantId;
use super::record::{
    ListAction, ListKind, Record, RecordBody, ReportType, Severity, MAX_LIST_ITEMS,
};

/// Appends a compact binary form of `r` to `out`, without its merchant id
/// (which whoever keeps it has already): for the batch job's own temporary
/// files only, never for anything kept across versions. [`decode_record`]
/// gives the same record back without the JSON parser or its checks, which
/// the record passed when it was parsed.
pub fn encode_record(r: &Record, out: &mut Vec<u8>) {
    fn text(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn opt_text(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            Some(s) => {
                out.push(1);
                text(out, s);
            }
            None => out.push(0),
        }
    }
    fn date(out: &mut Vec<u8>, d: Date) {
        out.extend_from_slice(&d.year().to_le_bytes());
        out.push(d.month() as u8);
        out.push(d.day() as u8);
    }
    fn opt_date(out: &mut Vec<u8>, d: Option<Date>) {
        match d {
            Some(d) => {
                out.push(1);
                date(out, d);
            }
            None => out.push(0),
        }
    }
    fn index<T: PartialEq>(all: &[T], v: &T) -> u8 {
        all.iter().position(|a| a == v).unwrap_or(0) as u8
    }
    text(out, &r.id);
    date(out, r.date);
    opt_text(out, r.source.as_deref());
    match &r.body {
        RecordBody::Inspection {
            hazards,
            deadline,
            rectified,
            rectified_on,
            plan,
        } => {
            out.push(0);
            out.extend_from_slice(&hazards.to_le_bytes());
            opt_date(out, *deadline);
            out.push(u8::from(*rectified));
            opt_date(out, *rectified_on);
            opt_text(out, plan.as_deref());
        }
        RecordBody::Sampling {
            product,
            standard,
            passed,
            failed_items,
        } => {
            out.push(1);
            text(out, product);
            opt_text(out, standard.as_deref());
            out.push(u8::from(*passed));
            out.extend_from_slice(&(failed_items.len() as u32).to_le_bytes());
            for item in failed_items {
                text(out, item);
            }
        }
        RecordBody::Penalty {
            decision_no,
            severity,
            fine_cny,
            publicity_until,
        } => {
            out.push(2);
            text(out, decision_no);
            out.push(index(Severity::ALL, severity));
            out.extend_from_slice(&fine_cny.to_bits().to_le_bytes());
            opt_date(out, *publicity_until);
        }
        RecordBody::Complaint {
            substantiated,
            summary,
        } => {
            out.push(3);
            out.push(u8::from(*substantiated));
            opt_text(out, summary.as_deref());
        }
        RecordBody::List {
            list,
            action,
            reason,
        } => {
            out.push(4);
            out.push(index(ListKind::ALL, list));
            out.push(index(ListAction::ALL, action));
            opt_text(out, reason.as_deref());
        }
        RecordBody::SelfReport {
            report_type,
            summary,
        } => {
            out.push(5);
            out.push(index(ReportType::ALL, report_type));
            opt_text(out, summary.as_deref());
        }
        RecordBody::Commitment { summary } => {
            out.push(6);
            opt_text(out, summary.as_deref());
        }
        RecordBody::Repair { record } => {
            out.push(7);
            text(out, record);
        }
        RecordBody::Reply {
            record,
            rule,
            text: t,
        } => {
            out.push(8);
            opt_text(out, record.as_deref());
            opt_text(out, rule.as_deref());
            text(out, t);
        }
    }
}

/// The record [`encode_record`] wrote to `bytes`, of `merchant`.
pub fn decode_record(merchant: &MerchantId, bytes: &[u8]) -> Result<Record, String> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], String> {
            if self.0.len() < n {
                return Err("truncated binary record".into());
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn u8(&mut self) -> Result<u8, String> {
            Ok(self.take(1)?[0])
        }
        fn flag(&mut self) -> Result<bool, String> {
            Ok(self.u8()? != 0)
        }
        fn u32(&mut self) -> Result<u32, String> {
            let b = self.take(4)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        fn text(&mut self) -> Result<String, String> {
            let n = self.u32()? as usize;
            let b = self.take(n)?;
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|e| e.to_string())
        }
        fn opt_text(&mut self) -> Result<Option<String>, String> {
            if self.flag()? {
                self.text().map(Some)
            } else {
                Ok(None)
            }
        }
        fn date(&mut self) -> Result<Date, String> {
            let b = self.take(4)?;
            let year = i16::from_le_bytes([b[0], b[1]]);
            Date::new(year, b[2] as i8, b[3] as i8).map_err(|e| e.to_string())
        }
        fn opt_date(&mut self) -> Result<Option<Date>, String> {
            if self.flag()? {
                self.date().map(Some)
            } else {
                Ok(None)
            }
        }
        fn pick<T: Copy>(&mut self, all: &[T]) -> Result<T, String> {
            let i = self.u8()? as usize;
            all.get(i)
                .copied()
                .ok_or_else(|| format!("bad enum index {i} in binary record"))
        }
    }
    let mut r = Reader(bytes);
    let id = r.text()?;
    let date = r.date()?;
    let source = r.opt_text()?;
    let body = match r.u8()? {
        0 => RecordBody::Inspection {
            hazards: r.u32()?,
            deadline: r.opt_date()?,
            rectified: r.flag()?,
            rectified_on: r.opt_date()?,
            plan: r.opt_text()?,
        },
        1 => RecordBody::Sampling {
            product: r.text()?,
            standard: r.opt_text()?,
            passed: r.flag()?,
            failed_items: {
                let n = r.u32()? as usize;
                let mut items = Vec::with_capacity(n.min(MAX_LIST_ITEMS));
                for _ in 0..n {
                    items.push(r.text()?);
                }
                items
            },
        },
        2 => RecordBody::Penalty {
            decision_no: r.text()?,
            severity: r.pick(Severity::ALL)?,
            fine_cny: {
                let b = r.take(8)?;
                f64::from_bits(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            },
            publicity_until: r.opt_date()?,
        },
        3 => RecordBody::Complaint {
            substantiated: r.flag()?,
            summary: r.opt_text()?,
        },
        4 => RecordBody::List {
            list: r.pick(ListKind::ALL)?,
            action: r.pick(ListAction::ALL)?,
            reason: r.opt_text()?,
        },
        5 => RecordBody::SelfReport {
            report_type: r.pick(ReportType::ALL)?,
            summary: r.opt_text()?,
        },
        6 => RecordBody::Commitment {
            summary: r.opt_text()?,
        },
        7 => RecordBody::Repair { record: r.text()? },
        8 => RecordBody::Reply {
            record: r.opt_text()?,
            rule: r.opt_text()?,
            text: r.text()?,
        },
        k => return Err(format!("bad kind {k} in binary record")),
    };
    if !r.0.is_empty() {
        return Err("trailing bytes after a binary record".into());
    }
    Ok(Record {
        id,
        merchant: merchant.clone(),
        date,
        source,
        body,
    })
}
