//! Instants passed in by callers, RFC 3339 on the wire, and the merchant's business day in
//! Europe/Paris time (totals close at a local hour, daylight saving included).

use crate::error::{CvcoError, ErrorCode};
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, UTC. Serialises as RFC 3339 ("2026-11-22T21:49:00.000Z").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// A calendar date, "YYYY-MM-DD" on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

const MS_PER_DAY: i64 = 86_400_000;
const MS_PER_HOUR: i64 = 3_600_000;
/// 9999-12-31T23:59:59.999Z, the last instant RFC 3339 timestamps are read and written for.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    Date {
        year: (if m <= 2 { y + 1 } else { y }) as i32,
        month: m,
        day: d,
    }
}

/// The value of 1 to 4 ASCII digits; `None` for anything else.
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 4 {
        return None;
    }
    b.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + (c - b'0') as u32)
    })
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl Date {
    pub fn new(year: i32, month: u8, day: u8) -> Result<Date, CvcoError> {
        if !(1970..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
        {
            return Err(CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail("Date invalide (AAAA-MM-JJ).", "Invalid date (YYYY-MM-DD)."));
        }
        Ok(Date { year, month, day })
    }

    pub fn parse(s: &str) -> Result<Date, CvcoError> {
        Date::parse_bytes(s.as_bytes().trim_ascii())
    }

    /// "YYYY-MM-DD" checked byte by byte: no slicing of the `str`, so no multi-byte character
    /// can land on a cut.
    fn parse_bytes(b: &[u8]) -> Result<Date, CvcoError> {
        let bad = || {
            CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail("Date invalide (AAAA-MM-JJ).", "Invalid date (YYYY-MM-DD).")
        };
        match b {
            [y @ .., b'-', m1, m2, b'-', d1, d2] if y.len() == 4 => Date::new(
                digits(y).ok_or_else(bad)? as i32,
                digits(&[*m1, *m2]).ok_or_else(bad)? as u8,
                digits(&[*d1, *d2]).ok_or_else(bad)? as u8,
            ),
            _ => Err(bad()),
        }
    }

    fn days(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    pub fn succ(self) -> Date {
        civil_from_days(self.days() + 1)
    }

    pub fn pred(self) -> Date {
        civil_from_days(self.days() - 1)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Last Sunday of a month at 01:00 UTC: when EU clocks change.
fn eu_switch(year: i32, month: u8) -> Timestamp {
    let last = days_from_civil(year, month, 31);
    let weekday = (last + 4).rem_euclid(7); // 0 = Sunday; 1970-01-01 was a Thursday
                                            // Saturating: `Timestamp`'s i64 is public, and a year near its ends must not overflow.
    Timestamp(
        (last - weekday)
            .saturating_mul(MS_PER_DAY)
            .saturating_add(MS_PER_HOUR),
    )
}

impl Timestamp {
    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus_secs(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    pub fn utc_date(self) -> Date {
        civil_from_days(self.0.div_euclid(MS_PER_DAY))
    }

    /// Europe/Paris offset from UTC at this instant, in hours (1 in winter, 2 in summer).
    pub fn paris_offset_hours(self) -> i64 {
        let year = self.utc_date().year;
        if self >= eu_switch(year, 3) && self < eu_switch(year, 10) {
            2
        } else {
            1
        }
    }

    /// Local Paris wall-clock time as (date, hour, minute).
    pub fn paris_local(self) -> (Date, u8, u8) {
        let local = self
            .0
            .saturating_add(self.paris_offset_hours() * MS_PER_HOUR);
        let date = civil_from_days(local.div_euclid(MS_PER_DAY));
        let in_day = local.rem_euclid(MS_PER_DAY);
        (
            date,
            (in_day / MS_PER_HOUR) as u8,
            ((in_day % MS_PER_HOUR) / 60_000) as u8,
        )
    }

    /// The instant of a Paris wall-clock time (the first one, across a clock change).
    pub fn from_paris_local(date: Date, hour: u8) -> Timestamp {
        let local = date
            .days()
            .saturating_mul(MS_PER_DAY)
            .saturating_add(hour as i64 * MS_PER_HOUR);
        let winter = Timestamp(local.saturating_sub(MS_PER_HOUR));
        let summer = Timestamp(local.saturating_sub(2 * MS_PER_HOUR));
        if summer.paris_offset_hours() == 2 {
            summer
        } else {
            winter
        }
    }

    /// The business day this instant counts for, when totals close at `closing_hour` local time:
    /// with a 22:00 closing, a sale at 23:00 on the 22nd counts for the 23rd.
    pub fn business_date(self, closing_hour: u8) -> Date {
        let (date, hour, _) = self.paris_local();
        if closing_hour > 0 && hour >= closing_hour {
            date.succ()
        } else {
            date
        }
    }

    /// `[start, end)` of a business day.
    pub fn business_day_bounds(date: Date, closing_hour: u8) -> (Timestamp, Timestamp) {
        if closing_hour == 0 {
            (
                Timestamp::from_paris_local(date, 0),
                Timestamp::from_paris_local(date.succ(), 0),
            )
        } else {
            (
                Timestamp::from_paris_local(date.pred(), closing_hour),
                Timestamp::from_paris_local(date, closing_hour),
            )
        }
    }

    pub fn to_rfc3339(self) -> String {
        let date = self.utc_date();
        let in_day = self.0.rem_euclid(MS_PER_DAY);
        let (h, m, s, ms) = (
            in_day / MS_PER_HOUR,
            (in_day / 60_000) % 60,
            (in_day / 1000) % 60,
            in_day % 1000,
        );
        format!("{date}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }

    /// Accepts "2026-11-22T21:49:00Z", with optional fraction and a "+01:00"-style offset.
    /// Works on bytes: arbitrary text (multi-byte characters included) is an error, never a panic.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, CvcoError> {
        let bad = || {
            CvcoError::new(ErrorCode::InvalidRequest).with_detail(
                "Horodatage invalide (RFC 3339).",
                "Invalid timestamp (RFC 3339).",
            )
        };
        let b = s.as_bytes().trim_ascii();
        if b.len() < 20 {
            return Err(bad());
        }
        let (date, rest) = b.split_at(10);
        let date = Date::parse_bytes(date)?;
        let (h, m, sec, tail) = match rest {
            [b'T' | b't' | b' ', h1, h2, b':', m1, m2, b':', s1, s2, tail @ ..] => (
                digits(&[*h1, *h2]).ok_or_else(bad)? as i64,
                digits(&[*m1, *m2]).ok_or_else(bad)? as i64,
                digits(&[*s1, *s2]).ok_or_else(bad)? as i64,
                tail,
            ),
            _ => return Err(bad()),
        };
        if h > 23 || m > 59 || sec > 60 {
            return Err(bad());
        }
        let mut tail = tail;
        let mut ms = 0i64;
        if let [b'.', frac @ ..] = tail {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(bad());
            }
            for (i, c) in frac.iter().take(n.min(3)).enumerate() {
                ms += (c - b'0') as i64 * [100, 10, 1][i];
            }
            tail = &frac[n..];
        }
        let offset_min = match tail {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let oh = digits(&[*h1, *h2]).ok_or_else(bad)? as i64;
                let om = digits(&[*m1, *m2]).ok_or_else(bad)? as i64;
                if oh > 23 || om > 59 {
                    return Err(bad());
                }
                let sign = if *sign == b'-' { -1 } else { 1 };
                sign * (oh * 60 + om)
            }
            _ => return Err(bad()),
        };
        let millis =
            date.days() * MS_PER_DAY + h * MS_PER_HOUR + m * 60_000 + sec.min(59) * 1000 + ms
                - offset_min * 60_000;
        // An offset may carry the instant out of 1970..=9999 UTC, which `to_rfc3339` would write
        // as a year this parser refuses: hosts store what we serialise and send it back.
        if !(0..=MAX_MILLIS).contains(&millis) {
            return Err(bad());
        }
        Ok(Timestamp(millis))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-22T21:49:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T21:49:00.000Z");
        assert_eq!(t.secs(), 1_795_384_140);
        let o = Timestamp::parse_rfc3339("2026-11-22T22:49:00.5+01:00").unwrap();
        let last = Timestamp::parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(Timestamp::parse_rfc3339(&last.to_rfc3339()).unwrap(), last);
        assert_eq!(o.0, t.0 + 500);
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22T25:00:00Z",
            "2026-11-22T21:49:00",
            "2026-11-22T21:49:00.Z",
            "2026-11-22T21:49:00+1:00",
            "2026-11-22T21:49:00-+1:00",
            "2026-11-22T21:49:00+24:00",
            "+026-11-22T21:49:00Z",
            "1970-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-00:01",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    /// The crafted `?from=` that used to panic: a two-byte character where a digit is expected,
    /// at every position of the timestamp and of a date.
    #[test]
    fn multi_byte_characters_are_typed_errors_not_panics() {
        assert!(Timestamp::parse_rfc3339("2026-01-01T12:00:0é").is_err());
        let good = "2026-11-22T22:49:00.5+01:00";
        for i in 0..good.len() {
            for c in ["é", "€", "😀", "\u{a0}"] {
                let mut s = good.to_string();
                s.replace_range(i..i + 1, c);
                let e = Timestamp::parse_rfc3339(&s).unwrap_err();
                assert_eq!(e.code, ErrorCode::InvalidRequest, "{s:?}");
                if i < 10 {
                    assert!(Date::parse(&s[..10 + c.len() - 1]).is_err(), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn paris_offsets_follow_eu_rules() {
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
        assert_eq!(at("2026-03-29T00:59:59Z").paris_offset_hours(), 1);
        assert_eq!(at("2026-03-29T01:00:00Z").paris_offset_hours(), 2);
        assert_eq!(at("2026-10-25T00:59:59Z").paris_offset_hours(), 2);
        assert_eq!(at("2026-10-25T01:00:00Z").paris_offset_hours(), 1);
        assert_eq!(at("2026-07-14T10:00:00Z").paris_local().1, 12);
    }

    #[test]
    fn business_day_with_closing_hour() {
        let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
        // 22:30 Paris on 22 Nov (winter) = 21:30 UTC.
        let late = at("2026-11-22T21:30:00Z");
        assert_eq!(late.business_date(0).to_string(), "2026-11-22");
        assert_eq!(late.business_date(22).to_string(), "2026-11-23");
        assert_eq!(late.business_date(23).to_string(), "2026-11-22");
        let d = Date::parse("2026-11-23").unwrap();
        let (start, end) = Timestamp::business_day_bounds(d, 22);
        assert_eq!(start.to_rfc3339(), "2026-11-22T21:00:00.000Z");
        assert_eq!(end.to_rfc3339(), "2026-11-23T21:00:00.000Z");
        assert!(start <= late && late < end);
        let (s0, e0) = Timestamp::business_day_bounds(Date::parse("2026-07-14").unwrap(), 0);
        assert_eq!(s0.to_rfc3339(), "2026-07-13T22:00:00.000Z");
        assert_eq!(e0.0 - s0.0, MS_PER_DAY);
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(ms in 0i64..253_402_300_799_000) {
            let t = Timestamp(ms);
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
        }

        #[test]
        fn business_date_lies_in_its_bounds(ms in 0i64..4_102_444_800_000, h in 0u8..24) {
            let t = Timestamp(ms);
            let d = t.business_date(h);
            let (start, end) = Timestamp::business_day_bounds(d, h);
            prop_assert!(start <= t && t < end, "{} {} {} {}", t, d, start, end);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = Timestamp::parse_rfc3339(&s);
            let _ = Date::parse(&s);
        }
    }
}
