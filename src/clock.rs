//! The one place that reads the clock. Grading takes dates as arguments; only
//! the edges (CLI, HTTP handlers) ask what day it is.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The regulators' time zone: dates in records and on codes are local dates
/// in China Standard Time.
pub fn zone() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(8)))
}

/// Today in Asia/Shanghai (UTC+8 all year: China has no daylight saving
/// time). On the scan path, so the conversion is memoised per thread.
pub fn today() -> Date {
    use std::cell::Cell;
    thread_local! {
        static MEMO: Cell<(i64, Option<Date>)> = const { Cell::new((i64::MIN, None)) };
    }
    let days = (Timestamp::now().as_second() + 8 * 3600).div_euclid(86_400);
    MEMO.with(|m| match m.get() {
        (d, Some(date)) if d == days => date,
        _ => {
            let date = Timestamp::now().to_zoned(zone()).date();
            m.set((days, Some(date)));
            date
        }
    })
}

/// Now, as a UTC instant.
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// Converts a civil date to the codes crate's day number.
pub fn to_day(date: Date) -> Option<yisaozhi_codes::Day> {
    yisaozhi_codes::Day::from_ymd(i32::from(date.year()), date.month() as u8, date.day() as u8)
}

/// Converts the codes crate's day number to a civil date.
pub fn from_day(day: yisaozhi_codes::Day) -> Date {
    let (y, m, d) = day.to_ymd();
    jiff::civil::date(y as i16, m as i8, d as i8)
}
