//! Printing: stdout (a closed pipe is not an error), stderr errors, JSON, progress bars
//! and small formatting helpers.

use std::io::{ErrorKind, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Writes `text` to stdout. A reader that went away (`| head`) is not an error.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes pretty JSON and a newline to stdout.
pub fn print_json(value: &serde_json::Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    print_stdout(&text)
}

/// `error: ...` (and `hint: ...`) on stderr. Nothing sensible is left to do if stderr
/// itself is gone, so write failures are ignored.
pub fn print_error(message: &str, hint: Option<&str>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {message}");
    if let Some(hint) = hint {
        let _ = writeln!(err, "hint: {hint}");
    }
}

/// `warning: ...` on stderr.
pub fn print_warning(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {message}");
}

/// `note: ...` on stderr.
pub fn print_note(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "note: {message}");
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// An error and its causes on one line, each message once: library errors often repeat
/// their source's text in their own message.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let s = cause.to_string();
        if s.is_empty() || text.contains(&s) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s);
    }
    text
}

/// A progress bar on stderr counting hashed bytes, or nothing.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `total`: bytes expected, when known.
    pub fn new(enabled: bool, label: &str, total: Option<u64>) -> Self {
        if !enabled {
            return Progress { bar: None };
        }
        let template = match total {
            Some(_) => "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            None => "{spinner} {msg} {bytes} ({bytes_per_sec})",
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// Adds hashed bytes.
    pub fn inc(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    pub fn enabled(&self) -> bool {
        self.bar.is_some()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs `f` with a progress callback suitable for the library's `ProgressFn`.
pub fn with_progress<T>(
    enabled: bool,
    label: &str,
    total: Option<u64>,
    f: impl FnOnce(Option<&(dyn Fn(u64) + Sync)>) -> T,
) -> T {
    let progress = Progress::new(enabled, label, total);
    let callback = |n: u64| progress.inc(n);
    if progress.enabled() {
        f(Some(&callback))
    } else {
        f(None)
    }
}

/// `230656` → `230,656 bytes (225.3 KiB)`.
pub fn bytes(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let unit = if n == 1 { "byte" } else { "bytes" };
    if n < 1024 {
        return format!("{grouped} {unit}");
    }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64 / 1024.0;
    let mut i = 0;
    while value >= 1024.0 && i + 1 < units.len() {
        value /= 1024.0;
        i += 1;
    }
    format!("{grouped} {unit} ({value:.1} {})", units[i])
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_time(secs: u64) -> String {
    weightseal_verifier::clock::utc(secs)
}

/// Indents every line of `text` by `n` spaces.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

/// `1 file` / `2 files`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(230_656), "230,656 bytes (225.2 KiB)");
        assert_eq!(bytes(8 << 20), "8,388,608 bytes (8.0 MiB)");
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(indent("a\n\nb\n", 2), "  a\n\n  b\n");
    }

    #[test]
    fn error_chain_printed_once() {
        let inner = std::io::Error::new(ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(inner).context("cannot read x: gone");
        assert_eq!(error_text(&e), "cannot read x: gone");
        let e = anyhow::anyhow!("root").context("outer");
        assert_eq!(error_text(&e), "outer: root");
    }
}
