//! Calendar values of the time matches: [`TimeOfDay`] (`meta hour`),
//! [`Weekday`] (`meta day`) and [`Date`] (`meta time`), checked when made,
//! so that only the shapes the contract documents reach the runtime.

use std::fmt;
use std::str::FromStr;

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Weekday {
    /// Sunday.
    Sunday,
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
}

/// A time of day in the runtime's local time zone, to the minute or to the
/// second: `TimeOfDay::hm(21, 0)`, or parsed from "21:00" or "21:00:30".
///
/// ```
/// use wasmwall_sdk::TimeOfDay;
/// let night: TimeOfDay = "21:00".parse().unwrap();
/// assert_eq!(night, TimeOfDay::hm(21, 0));
/// assert_eq!(night.to_string(), "21:00");
/// assert!("21:60".parse::<TimeOfDay>().is_err());
/// assert!("9:00".parse::<TimeOfDay>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
    second: Option<u8>,
}

impl TimeOfDay {
    /// `hour:minute`.
    ///
    /// # Panics
    ///
    /// When `hour` is above 23 or `minute` above 59 (at compile time in a
    /// `const`); a time from the configuration is parsed instead.
    pub const fn hm(hour: u8, minute: u8) -> TimeOfDay {
        assert!(hour < 24 && minute < 60, "a time of day is 00:00 to 23:59");
        TimeOfDay {
            hour,
            minute,
            second: None,
        }
    }

    /// `hour:minute:second`.
    ///
    /// # Panics
    ///
    /// As [`TimeOfDay::hm`], or when `second` is above 59.
    pub const fn hms(hour: u8, minute: u8, second: u8) -> TimeOfDay {
        assert!(
            hour < 24 && minute < 60 && second < 60,
            "a time of day is 00:00:00 to 23:59:59"
        );
        TimeOfDay {
            hour,
            minute,
            second: Some(second),
        }
    }

    /// The hour, 0-23.
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// The minute, 0-59.
    pub fn minute(&self) -> u8 {
        self.minute
    }

    /// The second, if the time was given to the second.
    pub fn second(&self) -> Option<u8> {
        self.second
    }
}

/// "HH:MM" or "HH:MM:SS", as the contract takes it.
impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)?;
        match self.second {
            Some(s) => write!(f, ":{s:02}"),
            None => Ok(()),
        }
    }
}

/// Reads "HH:MM" or "HH:MM:SS", two digits each.
impl FromStr for TimeOfDay {
    type Err = TimeError;
    fn from_str(text: &str) -> Result<TimeOfDay, TimeError> {
        let err = || TimeError::new(text, "a time of day \"HH:MM\" or \"HH:MM:SS\"");
        let parts: Vec<&str> = text.split(':').collect();
        let numbers = parts
            .iter()
            .map(|p| two_digits(p).ok_or_else(err))
            .collect::<Result<Vec<u8>, _>>()?;
        let (hour, minute, second) = match numbers[..] {
            [h, m] => (h, m, None),
            [h, m, s] => (h, m, Some(s)),
            _ => return Err(err()),
        };
        if hour > 23 || minute > 59 || second.is_some_and(|s| s > 59) {
            return Err(err());
        }
        Ok(TimeOfDay {
            hour,
            minute,
            second,
        })
    }
}

/// A date, or a date and a time, in the runtime's local time zone:
/// `Date::ymd(2025, 12, 24)`, `Date::ymd(2025, 12, 24).at(18, 0, 0)`, or
/// parsed from "2025-12-24" or "2025-12-24 18:00:00".
///
/// ```
/// use wasmwall_sdk::Date;
/// let eve: Date = "2025-12-24 18:00:00".parse().unwrap();
/// assert_eq!(eve, Date::ymd(2025, 12, 24).at(18, 0, 0));
/// assert!("2025-02-29".parse::<Date>().is_err());
/// assert_eq!(Date::ymd(2024, 2, 29).to_string(), "2024-02-29");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
    time: Option<(u8, u8, u8)>,
}

impl Date {
    /// The day `year`-`month`-`day`.
    ///
    /// # Panics
    ///
    /// When the year has more than four digits or the day does not exist
    /// (at compile time in a `const`); a date from the configuration is
    /// parsed instead.
    pub const fn ymd(year: u16, month: u8, day: u8) -> Date {
        assert!(
            year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= days_in(year, month),
            "no such date"
        );
        Date {
            year,
            month,
            day,
            time: None,
        }
    }

    /// This date at `hour:minute:second`.
    ///
    /// # Panics
    ///
    /// When the time is not 00:00:00 to 23:59:59.
    pub const fn at(self, hour: u8, minute: u8, second: u8) -> Date {
        assert!(
            hour < 24 && minute < 60 && second < 60,
            "a time of day is 00:00:00 to 23:59:59"
        );
        Date {
            time: Some((hour, minute, second)),
            ..self
        }
    }

    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month, 1-12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month, from 1.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The time of day as (hour, minute, second), if one was given.
    pub fn time(&self) -> Option<(u8, u8, u8)> {
        self.time
    }
}

/// "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS", as the contract takes it.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)?;
        match self.time {
            Some((h, m, s)) => write!(f, " {h:02}:{m:02}:{s:02}"),
            None => Ok(()),
        }
    }
}

/// Reads "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS".
impl FromStr for Date {
    type Err = TimeError;
    fn from_str(text: &str) -> Result<Date, TimeError> {
        let err = || TimeError::new(text, "a date \"YYYY-MM-DD\" or \"YYYY-MM-DD HH:MM:SS\"");
        let (day_text, time_text) = match text.split_once(' ') {
            Some((d, t)) => (d, Some(t)),
            None => (text, None),
        };
        let mut parts = day_text.split('-');
        let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let year: u16 = y.parse().map_err(|_| err())?;
        let (month, day) = (
            two_digits(m).ok_or_else(err)?,
            two_digits(d).ok_or_else(err)?,
        );
        if !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
            return Err(err());
        }
        let time = match time_text {
            None => None,
            Some(t) => match t.parse::<TimeOfDay>() {
                Ok(TimeOfDay {
                    hour,
                    minute,
                    second: Some(second),
                }) => Some((hour, minute, second)),
                _ => return Err(err()),
            },
        };
        Ok(Date {
            year,
            month,
            day,
            time,
        })
    }
}

/// Two ASCII digits.
fn two_digits(text: &str) -> Option<u8> {
    match text.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

const fn days_in(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A time or date that is not in the shape the contract takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError {
    input: String,
    expected: &'static str,
}

impl TimeError {
    fn new(input: &str, expected: &'static str) -> TimeError {
        TimeError {
            input: input.to_string(),
            expected,
        }
    }
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not {}", self.input, self.expected)
    }
}

impl std::error::Error for TimeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_take_only_the_documented_shapes() {
        assert_eq!("07:00".parse(), Ok(TimeOfDay::hm(7, 0)));
        assert_eq!("23:59:59".parse(), Ok(TimeOfDay::hms(23, 59, 59)));
        assert_eq!(TimeOfDay::hms(7, 5, 3).to_string(), "07:05:03");
        for bad in [
            "24:00",
            "7:00",
            "07:0",
            "07:00:60",
            "07",
            "07:00:00:00",
            "",
            "ab:cd",
        ] {
            let err = bad.parse::<TimeOfDay>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{bad:?} is not a time of day \"HH:MM\" or \"HH:MM:SS\"")
            );
        }
    }

    #[test]
    fn dates_exist_and_times_on_them_have_seconds() {
        assert_eq!("2024-02-29".parse(), Ok(Date::ymd(2024, 2, 29)));
        assert_eq!(
            "2025-01-31 00:00:59".parse(),
            Ok(Date::ymd(2025, 1, 31).at(0, 0, 59))
        );
        assert_eq!(
            Date::ymd(2025, 1, 2).at(3, 4, 5).to_string(),
            "2025-01-02 03:04:05"
        );
        for bad in [
            "1900-02-29",
            "2025-04-31",
            "2025-13-01",
            "2025-00-10",
            "25-01-01",
            "2025-1-01",
            "2025-01-01 10:00",
            "2025-01-01T10:00:00",
            "2025-01-01-01",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    #[should_panic(expected = "no such date")]
    fn a_day_that_does_not_exist_is_refused() {
        let _ = Date::ymd(2023, 2, 29);
    }
}
