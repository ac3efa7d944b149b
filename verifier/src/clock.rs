//! The one wall clock of the workspace.
//!
//! Freshness decisions (snapshot expiry, staleness, issue times) depend on it, so a clock
//! that cannot be read is an error the caller must handle, never "time 0" (which would make
//! every expired snapshot look fresh: fail open).

use std::time::{SystemTime, UNIX_EPOCH};

/// The system clock reads before the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the system clock cannot be read: it is {seconds_before_epoch} s before 1970-01-01 UTC")]
pub struct ClockError {
    /// How far before the epoch it reads.
    pub seconds_before_epoch: u64,
}

/// Unix seconds now.
pub fn now_unix() -> Result<u64, ClockError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|e| ClockError {
            seconds_before_epoch: e.duration().as_secs(),
        })
}

/// `secs` (Unix seconds) as `YYYY-MM-DD HH:MM:SS UTC`, for messages: people read times,
/// not Unix seconds.
pub fn utc(secs: u64) -> String {
    UtcTime(secs).to_string()
}

/// Unix seconds shown as a UTC date and time (`2026-12-01 21:15:00 UTC`) in messages meant
/// for people; error values keep the seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime(pub u64);

impl std::fmt::Display for UtcTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0;
        let (days, rest) = (secs / 86_400, secs % 86_400);
        // Days since 1970-01-01 to a civil date (Howard Hinnant's civil_from_days),
        // counting in 400-year eras of 146097 days that start on March 1st, so the leap
        // day is the last day of the year.
        let z = i128::from(days) + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i128::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
        // The largest time a u64 holds still formats (no overflow in the date arithmetic).
        assert!(utc(u64::MAX).ends_with(" UTC"));
    }
}
