//! Lineage tests on fingerprints (spec/fingerprint.md §5).
//!
//! *Derived from a base*: every derivative of a base stays close to it, tensor by tensor,
//! while independently trained models of the same shapes are uncorrelated. The score is
//! the median, over the suspect's informative tensors, of the correlation with the base
//! tensor it matches best.
//!
//! *Derived from a fork*: closeness to the fork cannot tell the fork's descendants from
//! sibling fine-tunes (all are close to the base), so the test asks whether the suspect
//! carries the fork's own change: the pooled cosine between the suspect's change from the
//! base and the fork's change from the base, over every sampled value of every tensor the
//! fork changed. A sibling's change is independent of the fork's and scores near zero; a
//! cast, quantization or further training adds noise but keeps the fork's change.
//!
//! Tensors are matched by content (shape, then the best correlation), never by name;
//! a tensor whose rows are all sampled is also matched under a permutation of its rows.

use std::collections::HashMap;

use super::{plan, Fingerprint, TensorPrint};

/// The derived-from-base threshold on the median correlation. On the calibration corpus
/// (`bench lineage-calibrate`, README "Lineage") unrelated models scored at most 0.08 and
/// derivatives at least 0.67 (a fork with 90% of its weights pruned); 0.5 sits between.
pub const BASE_THRESHOLD: f64 = 0.5;
/// The derived-from-fork threshold on the fork score. On the 16-fork calibration corpus
/// the smallest threshold with FPR <= 1% over all negatives pooled was 0.2227 (siblings
/// reach 0.25: fine-tunes on similar data share a direction); 0.24 keeps every
/// transformation's own FPR at or under 1% there.
pub const FORK_THRESHOLD: f64 = 0.24;

/// Below this correlation a tensor whose rows are all sampled is retried under the row
/// permutation that best matches its rows.
const ROW_MATCH_BELOW: f64 = 0.5;
/// Row matching is quadratic in rows; past this it is not tried.
const ROW_MATCH_MAX_ROWS: u64 = 1024;
/// A correlation this high is taken as the match without looking further.
const EARLY_ACCEPT: f64 = 0.9;
/// The quick test looks at this many tensors…
const QUICK_TENSORS: usize = 4;
/// …on this many leading values, and gives up on the base below this correlation.
const QUICK_VALUES: usize = 128;
const QUICK_BELOW: f64 = 0.2;
/// Suspect changes are clipped at this many median absolute changes, so that one flipped
/// exponent bit cannot swamp a tensor.
const CLIP_MEDIANS: f64 = 6.0;

/// One suspect tensor's match.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMatch {
    /// The suspect tensor.
    pub tensor: String,
    /// The base tensor it matched, if any had its shape and carried information.
    pub matched: Option<String>,
    /// Correlation with the matched base tensor's sample.
    pub similarity: f64,
    /// ‖suspect − base‖ / ‖base‖ over the sample.
    pub relative_change: f64,
    /// Whether the match needed a row permutation.
    pub rows_permuted: bool,
    /// With a fork: cosine between this tensor's change and the fork's change.
    pub fork_alignment: Option<f64>,
}

/// A lineage verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct LineageReport {
    /// The verdict.
    pub derived: bool,
    /// The score the verdict compares: the base score without a fork, the fork score with.
    pub score: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// The derived-from-base score (equal to `score` without a fork).
    pub base_score: f64,
    /// Sampled values the fork score pooled (0 without a fork).
    pub pooled_values: usize,
    /// Per suspect tensor.
    pub tensors: Vec<TensorMatch>,
}

/// Thresholds to apply (the calibrated defaults, or others for calibration runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// On the base score.
    pub base: f64,
    /// On the fork score.
    pub fork: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            base: BASE_THRESHOLD,
            fork: FORK_THRESHOLD,
        }
    }
}

fn clean(v: f32) -> f64 {
    if v.is_finite() {
        f64::from(v)
    } else {
        0.0
    }
}

/// Pearson correlation of `s` against `b`, with `s` clipped to four times `b`'s largest
/// magnitude (a flipped exponent bit must not decide). `None` when `b` is constant.
fn correlation(s: &[f32], b: &[f32], bound: f64) -> Option<f64> {
    let n = b.len().min(s.len());
    if n < 2 {
        return None;
    }
    let pairs = || {
        s[..n]
            .iter()
            .zip(&b[..n])
            .map(|(&x, &y)| (clean(x).clamp(-bound, bound), clean(y)))
    };
    let (mut ms, mut mb) = (0.0, 0.0);
    for (x, y) in pairs() {
        ms += x;
        mb += y;
    }
    ms /= n as f64;
    mb /= n as f64;
    let (mut sb, mut ss, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in pairs() {
        let (x, y) = (x - ms, y - mb);
        sb += x * y;
        ss += x * x;
        bb += y * y;
    }
    if bb <= f64::EPSILON * (mb * mb * n as f64 + f64::MIN_POSITIVE) || bb == 0.0 {
        return None;
    }
    if ss == 0.0 {
        return Some(0.0);
    }
    Some(sb / (ss * bb).sqrt())
}

fn bound_of(b: &[f32]) -> f64 {
    4.0 * b.iter().map(|&v| clean(v).abs()).fold(0.0, f64::max) + f64::MIN_POSITIVE
}

/// A base fingerprint indexed for matching.
#[derive(Debug)]
pub struct BaseIndex<'a> {
    base: &'a Fingerprint,
    by_shape: HashMap<(u64, u64), Vec<usize>>,
    bounds: Vec<f64>,
}

/// How a suspect tensor lines up with a base tensor.
#[derive(Debug, Clone)]
struct Alignment {
    base: usize,
    corr: f64,
    /// For each sampled row of the base, the suspect's sampled row holding it.
    rows: Option<Vec<usize>>,
}

impl<'a> BaseIndex<'a> {
    /// Indexes `base` by logical shape.
    pub fn new(base: &'a Fingerprint) -> Self {
        let mut by_shape: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
        for (i, t) in base.tensors.iter().enumerate() {
            by_shape.entry((t.rows, t.cols)).or_default().push(i);
        }
        let bounds = base.tensors.iter().map(|t| bound_of(&t.values)).collect();
        BaseIndex { base, by_shape, bounds }
    }

    /// The base tensor `s` matches best, if any of its shape carries information.
    ///
    /// `hint` (the suspect tensor's position) is tried first, and a correlation of
    /// [`EARLY_ACCEPT`] ends the search: unrelated tensors correlate near zero, so a second
    /// candidate that high would be a duplicate tensor, and either is the right match.
    fn align(&self, s: &TensorPrint, hint: usize) -> Option<Alignment> {
        let candidates = self.by_shape.get(&(s.rows, s.cols))?;
        let mut best: Option<Alignment> = None;
        let first = candidates.iter().position(|&i| i == hint).unwrap_or(0);
        for &i in candidates[first..].iter().chain(&candidates[..first]) {
            let b = &self.base.tensors[i];
            let Some(corr) = correlation(&s.values, &b.values, self.bounds[i]) else {
                continue;
            };
            if best.as_ref().is_none_or(|a| corr > a.corr) {
                best = Some(Alignment {
                    base: i,
                    corr,
                    rows: None,
                });
            }
            if corr >= EARLY_ACCEPT {
                return best;
            }
        }
        if best.as_ref().is_some_and(|a| a.corr < ROW_MATCH_BELOW) {
            let p = plan(s.rows, s.cols);
            if p.is_whole(s.rows) && s.rows > 1 && s.rows <= ROW_MATCH_MAX_ROWS {
                for &i in candidates {
                    if let Some(a) = self.align_rows(s, i, p.width as usize) {
                        if best.as_ref().is_none_or(|b| a.corr > b.corr) {
                            best = Some(a);
                        }
                    }
                }
            }
        }
        best
    }

    /// Matches each base row to the suspect row that correlates best with it on the first
    /// half of the sampled columns, and scores the match on the second half only: choosing
    /// the best of many rows finds high correlations by chance, and a held-out half does
    /// not reward that.
    fn align_rows(&self, s: &TensorPrint, i: usize, width: usize) -> Option<Alignment> {
        let b = &self.base.tensors[i];
        if width < 8 {
            return None;
        }
        let half = width / 2;
        let bound = self.bounds[i];
        let rows = b.values.len() / width;
        let mut map = Vec::with_capacity(rows);
        for r in 0..rows {
            let brow = &b.values[r * width..r * width + half];
            let mut best = (0usize, f64::NEG_INFINITY);
            for q in 0..rows {
                let srow = &s.values[q * width..q * width + half];
                if let Some(c) = correlation(srow, brow, bound) {
                    if c > best.1 {
                        best = (q, c);
                    }
                }
            }
            map.push(best.0);
        }
        let permuted = permute(&s.values, &map, width);
        let held_out = |v: &[f32]| -> Vec<f32> { v.chunks(width).flat_map(|row| row[half..].to_vec()).collect() };
        let corr = correlation(&held_out(&permuted), &held_out(&b.values), bound)?;
        Some(Alignment {
            base: i,
            corr,
            rows: Some(map),
        })
    }
}

/// The suspect's sample reordered so that row `r` is the suspect row `map[r]`.
fn permute(values: &[f32], map: &[usize], width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(values.len());
    for &q in map {
        out.extend_from_slice(&values[q * width..(q + 1) * width]);
    }
    out
}

fn aligned_values(s: &TensorPrint, a: &Alignment) -> Vec<f32> {
    match &a.rows {
        None => s.values.clone(),
        Some(map) => permute(&s.values, map, plan(s.rows, s.cols).width as usize),
    }
}

fn relative_change(s: &[f32], b: &[f32]) -> f64 {
    let (mut d, mut n) = (0.0, 0.0);
    for (x, y) in s.iter().zip(b) {
        let (x, y) = (clean(*x), clean(*y));
        d += (x - y) * (x - y);
        n += y * y;
    }
    if n == 0.0 {
        0.0
    } else {
        (d / n).sqrt()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Is `suspect` derived from `base`?
pub fn derived_from(suspect: &Fingerprint, base: &Fingerprint, t: Thresholds) -> LineageReport {
    let index = BaseIndex::new(base);
    let (tensors, base_score) = base_matches(suspect, &index);
    LineageReport {
        derived: base_score >= t.base,
        score: base_score,
        threshold: t.base,
        base_score,
        pooled_values: 0,
        tensors: tensors.into_iter().map(|(m, _)| m).collect(),
    }
}

type Matched = (TensorMatch, Option<(Alignment, Vec<f32>)>);

/// A cheap look at a few tensors' leading values: `Some(score)` when the suspect is
/// plainly not derived from this base (most entries of a revocation list), so the full
/// match is skipped.
fn quick_reject(suspect: &Fingerprint, index: &BaseIndex<'_>) -> Option<f64> {
    let mut scores = Vec::new();
    for s in &suspect.tensors {
        if scores.len() == QUICK_TENSORS {
            break;
        }
        let Some(candidates) = index.by_shape.get(&(s.rows, s.cols)) else {
            continue;
        };
        let n = s.values.len().min(QUICK_VALUES);
        let best = candidates
            .iter()
            .filter_map(|&i| correlation(&s.values[..n], &index.base.tensors[i].values[..n], index.bounds[i]))
            .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
        if let Some(b) = best {
            scores.push(b);
        }
    }
    // Too few tensors to judge, or any that looks related: do the full match (which also
    // handles row permutations the quick look cannot see).
    if scores.len() < QUICK_TENSORS || scores.iter().any(|&c| c >= QUICK_BELOW) {
        return None;
    }
    Some(median(scores))
}

fn base_matches(suspect: &Fingerprint, index: &BaseIndex<'_>) -> (Vec<Matched>, f64) {
    let mut out = Vec::with_capacity(suspect.tensors.len());
    if let Some(score) = quick_reject(suspect, index) {
        return (out, score);
    }
    let mut scores = Vec::new();
    for (j, s) in suspect.tensors.iter().enumerate() {
        match index.align(s, j) {
            Some(a) => {
                let b = &index.base.tensors[a.base];
                let values = aligned_values(s, &a);
                scores.push(a.corr);
                out.push((
                    TensorMatch {
                        tensor: s.name.clone(),
                        matched: Some(b.name.clone()),
                        similarity: a.corr,
                        relative_change: relative_change(&values, &b.values),
                        rows_permuted: a.rows.is_some(),
                        fork_alignment: None,
                    },
                    Some((a, values)),
                ));
            }
            None => out.push((
                TensorMatch {
                    tensor: s.name.clone(),
                    matched: None,
                    similarity: 0.0,
                    relative_change: 0.0,
                    rows_permuted: false,
                    fork_alignment: None,
                },
                None,
            )),
        }
    }
    (out, median(scores))
}

/// What the fork test needs of a base and a fork: the base and, per base tensor the fork
/// changed, the fork's change at the sampled values.
#[derive(Debug, Clone, PartialEq)]
pub struct ForkDelta {
    /// The base fingerprint.
    pub base: Fingerprint,
    /// `(base tensor index, fork − base)` for each tensor the fork changed.
    pub deltas: Vec<(usize, Vec<f32>)>,
}

impl ForkDelta {
    /// The fork's change from the base, tensor by tensor (matched by content).
    pub fn new(base: &Fingerprint, fork: &Fingerprint) -> ForkDelta {
        let index = BaseIndex::new(base);
        let mut best: HashMap<usize, (f64, Vec<f32>)> = HashMap::new();
        for (j, f) in fork.tensors.iter().enumerate() {
            let Some(a) = index.align(f, j) else { continue };
            let values = aligned_values(f, &a);
            let b = &base.tensors[a.base];
            let delta: Vec<f32> = values.iter().zip(&b.values).map(|(x, y)| x - y).collect();
            if delta.iter().all(|d| *d == 0.0 || !d.is_finite()) {
                continue;
            }
            if best.get(&a.base).is_none_or(|(c, _)| a.corr > *c) {
                best.insert(a.base, (a.corr, delta));
            }
        }
        let mut deltas: Vec<(usize, Vec<f32>)> = best.into_iter().map(|(i, (_, d))| (i, d)).collect();
        deltas.sort_by_key(|(i, _)| *i);
        ForkDelta {
            base: base.clone(),
            deltas,
        }
    }
}

/// Is `suspect` derived from the fork whose change is `fork` — does it carry that change —
/// rather than being another derivative of the same base?
pub fn derived_from_fork(suspect: &Fingerprint, fork: &ForkDelta, t: Thresholds) -> LineageReport {
    let index = BaseIndex::new(&fork.base);
    let (mut matched, base_score) = base_matches(suspect, &index);
    let delta_of: HashMap<usize, &Vec<f32>> = fork.deltas.iter().map(|(i, d)| (*i, d)).collect();
    let (mut num, mut pooled) = (0.0, 0usize);
    for (m, aligned) in &mut matched {
        let Some((a, values)) = aligned else { continue };
        let Some(df) = delta_of.get(&a.base) else { continue };
        let b = &fork.base.tensors[a.base];
        let mut ds: Vec<f64> = values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| clean(*x) - clean(*y))
            .collect();
        let mut mags: Vec<f64> = ds.iter().map(|d| d.abs()).collect();
        let n = mags.len();
        if n == 0 {
            continue;
        }
        mags.select_nth_unstable_by(n / 2, f64::total_cmp);
        let clip = CLIP_MEDIANS * mags[n / 2];
        for d in &mut ds {
            *d = d.clamp(-clip, clip);
        }
        let dff: Vec<f64> = df.iter().map(|&v| clean(v)).collect();
        let fnorm2: f64 = dff.iter().map(|v| v * v).sum();
        if fnorm2 == 0.0 {
            continue;
        }
        let dot: f64 = ds.iter().zip(&dff).map(|(x, y)| x * y).sum();
        let snorm2: f64 = ds.iter().map(|v| v * v).sum();
        let cos = if snorm2 == 0.0 {
            0.0
        } else {
            dot / (snorm2 * fnorm2).sqrt()
        };
        m.fork_alignment = Some(cos);
        // Tensors weigh by their sample count, not by their scale or their noise: a
        // tensor the fork barely changed, under quantization noise, must not drown the
        // others. Under independence each cosine is about N(0, 1/n), so the weighted mean
        // is about N(0, 1/pooled).
        num += n as f64 * cos;
        pooled += n;
    }
    let score = if pooled == 0 { 0.0 } else { num / pooled as f64 };
    LineageReport {
        derived: base_score >= t.base && score >= t.fork,
        score,
        threshold: t.fork,
        base_score,
        pooled_values: pooled,
        tensors: matched.into_iter().map(|(m, _)| m).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random generator for test tensors (not for sampling).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        }
        fn tensor(&mut self, name: &str, rows: u64, cols: u64, scale: f32) -> TensorPrint {
            let n = plan(rows, cols).len();
            TensorPrint {
                name: name.into(),
                dtype: "F32".into(),
                rows,
                cols,
                values: (0..n).map(|_| self.next() * scale).collect(),
            }
        }
    }

    fn model(seed: u64) -> Fingerprint {
        let mut g = Lcg(seed);
        Fingerprint {
            tensors: (0..6).map(|i| g.tensor(&format!("t{i}"), 64, 64, 1.0)).collect(),
        }
    }

    fn plus(a: &Fingerprint, d: &Fingerprint, k: f32) -> Fingerprint {
        let mut out = a.clone();
        for (t, dt) in out.tensors.iter_mut().zip(&d.tensors) {
            for (v, dv) in t.values.iter_mut().zip(&dt.values) {
                *v += k * dv;
            }
        }
        out
    }

    #[test]
    fn derivatives_are_derived_and_strangers_are_not() {
        let base = model(1);
        let child = plus(&base, &model(2), 0.05);
        assert!(derived_from(&child, &base, Thresholds::default()).derived);
        assert!(!derived_from(&model(3), &base, Thresholds::default()).derived);
    }

    #[test]
    fn the_fork_test_tells_descendants_from_siblings() {
        let base = model(1);
        let fork = plus(&base, &model(2), 0.02);
        let sibling = plus(&base, &model(4), 0.02);
        let grandchild = plus(&fork, &model(5), 0.02);
        let fd = ForkDelta::new(&base, &fork);
        let t = Thresholds::default();
        let g = derived_from_fork(&grandchild, &fd, t);
        let s = derived_from_fork(&sibling, &fd, t);
        assert!(g.derived, "grandchild score {}", g.score);
        assert!(!s.derived, "sibling score {}", s.score);
        assert!(derived_from(&sibling, &base, t).derived);
    }

    #[test]
    fn renamed_reordered_and_row_permuted_tensors_still_match() {
        let base = model(1);
        let mut moved = plus(&base, &model(2), 0.02);
        moved.tensors.reverse();
        for t in &mut moved.tensors {
            t.name = format!("renamed.{}", t.name);
        }
        // Reverse the rows of one tensor.
        let t = &mut moved.tensors[0];
        let width = t.cols as usize;
        let rows: Vec<Vec<f32>> = t.values.chunks(width).rev().map(|r| r.to_vec()).collect();
        t.values = rows.concat();
        let r = derived_from(&moved, &base, Thresholds::default());
        assert!(r.derived);
        assert!(r.tensors[0].rows_permuted);
        assert!(r.tensors[0].similarity > 0.99);
        assert_eq!(r.tensors[0].matched.as_deref(), Some("t5"));
    }

    #[test]
    fn one_flipped_exponent_bit_does_not_hide_the_fork() {
        let base = model(1);
        let fork = plus(&base, &model(2), 0.02);
        let mut flipped = fork.clone();
        for t in &mut flipped.tensors {
            t.values[7] = f32::from_bits(t.values[7].to_bits() ^ (1 << 30));
        }
        let r = derived_from_fork(&flipped, &ForkDelta::new(&base, &fork), Thresholds::default());
        assert!(r.derived && r.score > 0.9, "score {}", r.score);
    }
}
