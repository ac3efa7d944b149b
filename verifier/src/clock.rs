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
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
