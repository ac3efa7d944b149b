//! Walking a model folder (spec/format.md §7): which files a manifest covers.
//!
//! Symlinks and special files are refused outright: a symlink swapped in after signing
//! could point anywhere, and reading a FIFO could hang. Ignore rules are part of the
//! signed manifest so a verifier walks the folder exactly as the signer did.

use std::path::{Path, PathBuf};

/// The name of the signature file at the top of a signed folder. It is never part of a
/// manifest.
pub const DEFAULT_SIGNATURE_NAME: &str = "weightseal.sig";

/// The ignore rules used when the signer gives none: version-control and cache folders
/// that are never part of a release.
pub const DEFAULT_IGNORE_RULES: &[&str] = &[".git/", ".hg/", ".svn/", ".cache/", "__pycache__/", ".DS_Store"];

/// Most files a folder may hold.
const MAX_FILES: usize = 1_000_000;

/// A parsed ignore rule (spec/format.md §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRule {
    segments: Vec<String>,
    /// Ends in `/`: matches directories only.
    dir_only: bool,
    /// Has no `/` before its end: matches a name at any depth.
    any_depth: bool,
}

impl IgnoreRule {
    /// Parses a rule, refusing the syntax the spec reserves.
    pub fn parse(rule: &str) -> Result<Self, String> {
        if rule.is_empty() {
            return Err("an ignore rule cannot be empty".into());
        }
        if rule.contains(['[', ']', '\\', '{', '}']) || rule.starts_with('!') {
            return Err(format!(
                "ignore rule {rule:?} uses reserved syntax ([ ] {{ }} \\ or a leading !); only * ? and ** are supported"
            ));
        }
        let dir_only = rule.ends_with('/');
        let body = rule.strip_suffix('/').unwrap_or(rule);
        let body = body.strip_prefix('/').unwrap_or(body);
        let anchored = rule.trim_end_matches('/').contains('/');
        if body.is_empty() || body.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(format!("ignore rule {rule:?} has an empty, '.' or '..' segment"));
        }
        Ok(IgnoreRule {
            segments: body.split('/').map(str::to_string).collect(),
            dir_only,
            any_depth: !anchored,
        })
    }

    /// Whether the rule matches the relative path `rel` (a file, or a directory if `is_dir`).
    pub fn matches(&self, rel: &str, is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        let parts: Vec<&str> = rel.split('/').collect();
        if self.any_depth {
            // A single-segment rule without '/' matches the last component at any depth.
            parts.last().is_some_and(|name| glob_segment(&self.segments[0], name))
        } else {
            match_segments(&self.segments, &parts)
        }
    }
}

/// Whether the segment patterns match the path components, in O(segments × components)
/// glob checks: a dynamic programme over "which prefixes of the path can the patterns
/// seen so far consume". (Trying every split for each `**` by recursion is exponential
/// in the number of `**`: a signed rule of twelve of them hung verifiers on a deep folder.)
fn match_segments(pattern: &[String], parts: &[&str]) -> bool {
    // reach[j]: the patterns so far can match exactly parts[..j].
    let mut reach = vec![false; parts.len() + 1];
    reach[0] = true;
    for segment in pattern {
        let mut next = vec![false; parts.len() + 1];
        if segment == "**" {
            // Zero or more whole components: every j at or after a reachable one.
            let mut any = false;
            for (j, slot) in next.iter_mut().enumerate() {
                any |= reach[j];
                *slot = any;
            }
        } else {
            for (j, part) in parts.iter().enumerate() {
                if reach[j] && glob_segment(segment, part) {
                    next[j + 1] = true;
                }
            }
        }
        if !next.iter().any(|&r| r) {
            return false;
        }
        reach = next;
    }
    reach[parts.len()]
}

/// `*` matches any run of characters, `?` exactly one; everything else is literal.
fn glob_segment(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with one backtrack point: linear-ish, no recursion blow-up.
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut star_n) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            star_n = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            star_n += 1;
            ni = star_n;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A set of ignore rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRules {
    rules: Vec<IgnoreRule>,
    texts: Vec<String>,
}

impl IgnoreRules {
    /// Parses rules.
    pub fn new<S: AsRef<str>>(rules: &[S]) -> Result<Self, String> {
        Ok(IgnoreRules {
            rules: rules
                .iter()
                .map(|r| IgnoreRule::parse(r.as_ref()))
                .collect::<Result<_, _>>()?,
            texts: rules.iter().map(|r| r.as_ref().to_string()).collect(),
        })
    }

    /// The default rules.
    pub fn defaults() -> Self {
        // The defaults are valid by construction (tested below).
        Self::new(DEFAULT_IGNORE_RULES).unwrap_or(IgnoreRules {
            rules: vec![],
            texts: vec![],
        })
    }

    /// The rules as written.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    /// Whether any rule matches.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        self.rules.iter().any(|r| r.matches(rel, is_dir))
    }
}

/// A regular file found in a model folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// Relative `/`-separated path.
    pub rel: String,
    /// Full path on disk.
    pub path: PathBuf,
    /// Size when listed.
    pub size: u64,
}

/// Why a folder could not be walked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// Reading the folder failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A symlink sits where a file or folder should be.
    #[error("{path} is a symbolic link; weightseal refuses symlinks inside a model (copy the target in, or ignore the path)")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// A device, FIFO or socket.
    #[error("{path} is not a regular file or folder (device, FIFO or socket)")]
    SpecialFile {
        /// The path.
        path: PathBuf,
    },
    /// A name that is not UTF-8 or breaks the path rules.
    #[error("{path}: {reason}")]
    BadName {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// More files than the limit.
    #[error("the folder holds more than {MAX_FILES} files")]
    TooManyFiles,
}

/// Lists every regular file under `root` not matched by `ignore`, sorted by path bytes.
/// `exclude` lists absolute paths (the signature file in use) left out silently.
pub fn walk_folder(root: &Path, ignore: &IgnoreRules, exclude: &[PathBuf]) -> Result<Vec<FoundFile>, WalkError> {
    let excluded = excluded_paths(root, exclude);
    let mut out = Vec::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let io = |source| WalkError::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().ok_or_else(|| WalkError::BadName {
                path: path.clone(),
                reason: "file name is not valid UTF-8".into(),
            })?;
            let rel = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            let file_type = entry.file_type().map_err(|source| WalkError::Io {
                path: path.clone(),
                source,
            })?;
            let is_dir = file_type.is_dir();
            if ignore.is_ignored(&rel, is_dir) {
                continue;
            }
            if prefix.is_empty() && rel == DEFAULT_SIGNATURE_NAME && file_type.is_file() {
                continue;
            }
            if excluded.contains(&rel) {
                continue;
            }
            crate::manifest::check_path(&rel).map_err(|e| WalkError::BadName {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if file_type.is_symlink() {
                return Err(WalkError::Symlink { path });
            } else if is_dir {
                pending.push((path, rel));
            } else if file_type.is_file() {
                let size = entry
                    .metadata()
                    .map_err(|source| WalkError::Io {
                        path: path.clone(),
                        source,
                    })?
                    .len();
                out.push(FoundFile { rel, path, size });
                if out.len() > MAX_FILES {
                    return Err(WalkError::TooManyFiles);
                }
            } else {
                return Err(WalkError::SpecialFile { path });
            }
        }
    }
    out.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    Ok(out)
}

/// The excluded paths that lie inside `root`, as relative paths to compare with each
/// entry's. Resolved once per walk (a `stat` per exclusion, not per entry). The walk
/// refuses symlinks, so the canonical root joined with an entry's relative path is that
/// entry's canonical path; an exclusion that resolves elsewhere excludes nothing here.
fn excluded_paths(root: &Path, exclude: &[PathBuf]) -> Vec<String> {
    let Ok(root) = std::fs::canonicalize(root) else {
        return Vec::new();
    };
    exclude
        .iter()
        // The folder part resolved, the final name kept as given: like the walk itself,
        // an exclusion names a directory entry and does not follow a final symlink.
        .filter_map(|e| {
            let parent = match e.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            Some(std::fs::canonicalize(parent).ok()?.join(e.file_name()?))
        })
        .filter_map(|e| {
            let rel = e.strip_prefix(&root).ok()?;
            let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
            Some(parts?.join("/"))
        })
        .filter(|rel| !rel.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        assert_eq!(IgnoreRules::defaults().texts().len(), DEFAULT_IGNORE_RULES.len());
    }

    #[test]
    fn rule_semantics() {
        let r = |s| IgnoreRule::parse(s).unwrap();
        assert!(r(".git/").matches(".git", true));
        assert!(r(".git/").matches("sub/.git", true));
        assert!(!r(".git/").matches(".git", false));
        assert!(r("*.pyc").matches("a/b/c.pyc", false));
        assert!(!r("*.pyc").matches("a/b/c.py", false));
        assert!(r("logs/*.txt").matches("logs/a.txt", false));
        assert!(!r("logs/*.txt").matches("x/logs/a.txt", false));
        assert!(r("**/tmp").matches("a/b/tmp", true));
        assert!(r("**/tmp").matches("tmp", false));
        assert!(r("a/**/z").matches("a/z", false));
        assert!(r("a/**/z").matches("a/b/c/z", false));
        assert!(r("file?.bin").matches("file1.bin", false));
        assert!(!r("file?.bin").matches("file10.bin", false));
        assert!(r("*").matches("anything", false));
    }

    #[test]
    fn reserved_syntax_refused() {
        for bad in ["", "[ab]", "!keep", "a\\b", "{a,b}", "a//b", "../x", "/"] {
            assert!(IgnoreRule::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    /// Regression (issue 10, F3): twelve `**` segments against a path 25 deep took more
    /// than a minute with the recursive matcher. Every split is still explored, in
    /// polynomial time: the non-matching case below is the worst one.
    #[test]
    fn many_double_stars_against_a_deep_path_is_polynomial() {
        let rule = IgnoreRule::parse(&format!("{}x", "**/".repeat(12))).unwrap();
        let deep = vec!["d"; 200].join("/");
        let started = std::time::Instant::now();
        assert!(!rule.matches(&deep, false));
        assert!(rule.matches(&format!("{deep}/x"), false));
        // Generous for any machine; the exponential matcher needs hours on this input.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn double_star_semantics_are_unchanged() {
        let r = |s| IgnoreRule::parse(s).unwrap();
        assert!(r("a/**/b/**/c").matches("a/b/c", false));
        assert!(r("a/**/b/**/c").matches("a/x/b/y/z/c", false));
        assert!(!r("a/**/b/**/c").matches("a/x/c", false));
        assert!(r("**").matches("anything/at/all", false));
        assert!(!r("a/**").matches("b/c", false));
        assert!(r("a/**").matches("a", true));
        assert!(r("*/x/**").matches("q/x/r/s", false));
    }

    #[test]
    fn star_backtracking_terminates_quickly() {
        let p = "*a*a*a*a*a*a*a*a*b";
        assert!(!glob_segment(p, &"a".repeat(200)));
    }
}
