//! Dates and times of day as nft reads and lists them: civil dates of the
//! proleptic Gregorian calendar to and from days since 1970-01-01, and the
//! text nft gives a time of day and a moment.

/// Seconds in a day (the kernel's `meta hour` counts them from midnight UTC).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of the date `year`-`month`-`day` (month 1-12).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Years counted from March, so that the leap day ends the year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month 1-12, day) `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A time of day as nft lists it: `"07:00"`, `"10:00:30"` (seconds only
/// when there are some).
pub fn time_of_day_text(seconds: u32) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if s == 0 {
        format!("\"{h:02}:{m:02}\"")
    } else {
        format!("\"{h:02}:{m:02}:{s:02}\"")
    }
}

/// A moment (seconds since 1970-01-01 in the local time nft lists it in)
/// as nft lists it: `"2026-01-01 00:00:00"`.
pub fn moment_text(local_seconds: i64) -> String {
    let days = local_seconds.div_euclid(SECONDS_PER_DAY);
    let second = local_seconds.rem_euclid(SECONDS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "\"{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}\"",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in [-1, 0, 59, 60, 365, 11_016, 11_017, 20_454, 200_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn times_read_as_nft_lists_them() {
        assert_eq!(time_of_day_text(7 * 3600), "\"07:00\"");
        assert_eq!(time_of_day_text(10 * 3600 + 30), "\"10:00:30\"");
        // 2026-12-31 23:59:59 UTC
        assert_eq!(
            moment_text(days_from_civil(2026, 12, 31) * SECONDS_PER_DAY + 86_399),
            "\"2026-12-31 23:59:59\""
        );
    }
}
