//! Time matches (`meta hour`, `meta time`) as nft turns them into what the
//! kernel compares: times of day and dates are in the runtime's local time
//! zone, and nft converts them to UTC with the zone's offset from UTC when
//! it encodes them, and back when it lists them. nft takes the offset at
//! the current moment for a time of day and at the date itself for a date;
//! so does validation, from the offsets it is given ([`LocalTime`]), which
//! keeps it pure.
//!
//! A time of day therefore holds the offset of the moment the rule was
//! made: after a daylight-saving change the kernel compares the old UTC
//! times (the rule fires an hour off) and nft lists them an hour off, until
//! the policy's rules are validated again, which gives a new text and so
//! replaces the rule. Dates keep their own offset and are not affected.
//!
//! nft 1.0.6 misprints a time of day in a zone west of UTC when its UTC
//! seconds are fewer than the offset (it adds a negative offset to an
//! unsigned number: `"20:00"` in New York lists as `"1193042:28:16"`); the
//! runtime's text gives the time, so such a rule's listing differs from
//! its text.

use crate::ir::time::{SECONDS_PER_DAY, days_from_civil};
use crate::ir::{DateRange, HourRange};
use crate::text::quote;

/// The runtime's local time zone: its offset from UTC, in seconds east.
#[derive(Debug, Clone, Copy)]
pub struct LocalTime {
    /// The offset now: nft converts times of day with it.
    pub offset_now: fn() -> i64,
    /// The offset at a Unix time: nft converts dates with it.
    pub offset_at: fn(i64) -> i64,
}

impl LocalTime {
    /// UTC: no offset.
    pub const UTC: LocalTime = LocalTime {
        offset_now: || 0,
        offset_at: |_| 0,
    };

    /// The zone the C library gives this process (`TZ`, else
    /// /etc/localtime), as nft reads it.
    pub fn system() -> LocalTime {
        LocalTime {
            offset_now: || system_offset(unix_now()),
            offset_at: system_offset,
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `tm_gmtoff` of `localtime_r` at `at`.
fn system_offset(at: i64) -> i64 {
    let t: libc::time_t = at;
    // SAFETY: an all-zero tm is a valid value for localtime_r to fill.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live values of the right types.
    let filled = unsafe { libc::localtime_r(&t, &mut tm) };
    if filled.is_null() { 0 } else { tm.tm_gmtoff }
}

/// "HH:MM" or "HH:MM:SS" as seconds since midnight.
fn time_of_day(text: &str) -> Option<u32> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let n = |i: usize| -> Option<u32> {
        let p: &str = parts.get(i).copied().unwrap_or("00");
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (h, m, s) = (n(0)?, n(1)?, n(2)?);
    (h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

/// A time-of-day range in the local zone as nft holds it: both ends in
/// UTC, and a range that then wraps midnight turned into the negation of
/// the range between them.
pub(super) fn hour_range(
    from: &str,
    to: &str,
    negate: bool,
    zone: LocalTime,
) -> Result<HourRange, String> {
    let parse = |t: &str| {
        time_of_day(t).ok_or_else(|| {
            format!(
                "{} is not a time of day (\"HH:MM\" or \"HH:MM:SS\", 00:00 to 23:59:59)",
                quote(t)
            )
        })
    };
    let (from, to) = (parse(from)?, parse(to)?);
    if from == to {
        return Err("the time range starts and ends at the same time".into());
    }
    let offset = (zone.offset_now)();
    let utc = |local: u32| (i64::from(local) - offset).rem_euclid(SECONDS_PER_DAY) as u32;
    let (mut utc_from, mut utc_to) = (utc(from), utc(to));
    let (mut local_from, mut local_to) = (from, to);
    let mut negate = negate;
    if utc_from > utc_to {
        std::mem::swap(&mut utc_from, &mut utc_to);
        std::mem::swap(&mut local_from, &mut local_to);
        negate = !negate;
    }
    Ok(HourRange {
        utc: (utc_from, utc_to),
        local: (local_from, local_to),
        negate,
    })
}

/// "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS" as seconds since 1970-01-01
/// as if it were UTC, for a year from 1970 to 2500.
fn wall_clock(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once(' ') {
        Some((d, t)) if t.len() == 8 => (d, time_of_day(t)?),
        Some(_) => return None,
        None => (text, 0),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    if !date.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1970..=2500).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // A day past the month's end would roll into the next month.
    if crate::ir::time::civil_from_days(days) != (y, m, d) {
        return None;
    }
    Some(days * SECONDS_PER_DAY + i64::from(time))
}

/// A range of local dates as nft holds it: nanoseconds since 1970-01-01
/// UTC, each end converted with the offset at it, and the local time nft
/// lists each end in.
pub(super) fn date_range(from: &str, to: &str, zone: LocalTime) -> Result<DateRange, String> {
    let parse = |t: &str| -> Result<(u64, i64), String> {
        let wall = wall_clock(t).ok_or_else(|| {
            format!(
                "{} is not a date (\"YYYY-MM-DD\" or \"YYYY-MM-DD HH:MM:SS\", years 1970 to 2500)",
                quote(t)
            )
        })?;
        // As nft: the offset at the wall-clock time read as UTC.
        let utc = wall - (zone.offset_at)(wall);
        let ns = u64::try_from(utc)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000_000))
            .ok_or_else(|| format!("{} is before 1970-01-01 00:00:00 UTC", quote(t)))?;
        Ok((ns, utc + (zone.offset_at)(utc)))
    };
    let ((from_ns, from_local), (to_ns, to_local)) = (parse(from)?, parse(to)?);
    if from_ns >= to_ns {
        return Err(format!(
            "the date range {}-{} is empty or a single moment (from must be before to)",
            quote(from),
            quote(to)
        ));
    }
    Ok(DateRange {
        utc_ns: (from_ns, to_ns),
        local: (from_local, to_local),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN_WINTER: LocalTime = LocalTime {
        offset_now: || 3600,
        offset_at: |_| 3600,
    };
    const NEW_YORK: LocalTime = LocalTime {
        offset_now: || -5 * 3600,
        offset_at: |_| -5 * 3600,
    };

    #[test]
    fn a_range_that_wraps_midnight_is_the_negated_range_between() {
        let h = hour_range("21:00", "07:00", false, LocalTime::UTC).unwrap();
        assert_eq!(h.utc, (7 * 3600, 21 * 3600));
        assert_eq!(h.local, (7 * 3600, 21 * 3600));
        assert!(h.negate);
        let h = hour_range("21:00", "07:00", true, LocalTime::UTC).unwrap();
        assert!(!h.negate, "a negated wrapping range is the range between");
        let h = hour_range("07:00", "21:00", false, LocalTime::UTC).unwrap();
        assert_eq!((h.utc, h.negate), ((7 * 3600, 21 * 3600), false));
    }

    /// As nft 1.0.6 sends them with TZ=Europe/Berlin in winter and
    /// TZ=America/New_York (measured with `nft --debug=netlink -c`).
    #[test]
    fn times_of_day_are_converted_with_the_offset_now() {
        // 00:30-05:00 in Berlin is 23:30-04:00 UTC: it wraps in UTC.
        let h = hour_range("00:30", "05:00", false, BERLIN_WINTER).unwrap();
        assert_eq!(h.utc, (4 * 3600, 23 * 3600 + 1800));
        assert_eq!(h.local, (5 * 3600, 1800));
        assert!(h.negate);
        let h = hour_range("08:00", "17:00:30", false, BERLIN_WINTER).unwrap();
        assert_eq!(h.utc, (7 * 3600, 16 * 3600 + 30));
        assert!(!h.negate);
        let h = hour_range("20:00", "22:00", false, NEW_YORK).unwrap();
        assert_eq!(h.utc, (3600, 3 * 3600));
        assert!(!h.negate);
    }

    #[test]
    fn bad_times_of_day_are_named() {
        for bad in [
            "24:00",
            "7:00",
            "07:60",
            "07:00:60",
            "07",
            "07:00:00:00",
            "ab:cd",
        ] {
            let err = hour_range(bad, "08:00", false, LocalTime::UTC).unwrap_err();
            assert!(
                err.contains(&format!("\"{bad}\" is not a time of day")),
                "{err}"
            );
        }
        let err = hour_range("08:00", "08:00", false, LocalTime::UTC).unwrap_err();
        assert!(err.contains("starts and ends at the same time"), "{err}");
    }

    #[test]
    fn dates_are_converted_with_the_offset_at_them() {
        let d = date_range("2026-01-01", "2026-12-31 23:59:59", LocalTime::UTC).unwrap();
        // As nft sends them (0x18867251edfa0000 and 0x18f67c24e0023600 ns).
        assert_eq!(d.utc_ns, (0x1886_7251_edfa_0000, 0x18f6_7c24_e002_3600));
        let d = date_range("2026-01-01", "2026-01-02", BERLIN_WINTER).unwrap();
        assert_eq!(d.utc_ns.0 / 1_000_000_000, 1_767_225_600 - 3600);
        assert_eq!(d.local.0, 1_767_225_600);
    }

    #[test]
    fn bad_dates_are_named() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-01-01 25:00:00",
            "2026-01-01 10:00",
            "1969-12-31",
            "2026/01/01",
            "+026-01-01",
        ] {
            let err = date_range(bad, "2027-01-01", LocalTime::UTC).unwrap_err();
            assert!(err.contains(&format!("\"{bad}\" is not a date")), "{err}");
        }
        let err = date_range("1970-01-01", "2027-01-01", BERLIN_WINTER).unwrap_err();
        assert!(err.contains("before 1970-01-01 00:00:00 UTC"), "{err}");
        let err = date_range("2027-01-01", "2026-01-01", LocalTime::UTC).unwrap_err();
        assert!(err.contains("is empty or a single moment"), "{err}");
    }
}
