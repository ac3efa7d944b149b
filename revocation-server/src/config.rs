//! Small configuration helpers: durations such as `24h` and database locations.

use std::path::PathBuf;
use std::time::Duration;

/// The default SQLite database file, in the current folder.
pub const DEFAULT_DATABASE: &str = "sqlite:weightseal-revocations.db";
/// The default log origin (also the note key name), from the verifier.
pub use weightseal_verifier::revocation::snapshot::DEFAULT_ORIGIN;

/// Parses a duration: a whole number followed by `s`, `m`, `h` or `d` (`90s`, `30m`, `24h`,
/// `7d`); a bare number is seconds. Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!("{text:?} is not a duration (expected e.g. 90s, 30m, 24h, 7d)"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("{text:?}: number too large"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    let secs = n.checked_mul(scale).ok_or_else(|| format!("{text:?}: too large"))?;
    if secs == 0 {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(Duration::from_secs(secs))
}

/// Where the log is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (created on first use).
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite:PATH` (also `sqlite://PATH`) or `postgres://…` / `postgresql://…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:weightseal-revocations.db".to_owned());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_owned()));
        }
        Err(format!(
            "unsupported database {:?}: use sqlite:PATH or postgres://USER@HOST:PORT/DB",
            redact(text)
        ))
    }

    /// A description safe to log (no password).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite:{}", p.display()),
            Self::Postgres(url) => redact(url),
        }
    }
}

/// Removes a password from a connection URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn databases() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:x.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("x.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert_eq!(redact("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
