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
//! cast or further training adds noise but keeps the fork's change. Q4_0 noise can bury a
//! low-rank fork's change, so a Q4_0 or Q8_0 suspect is also compared with the base and
//! the fork re-quantized to its type, block by block, bit for bit.
//!
//! Many lineage entries are checked at once through `ForkIndex`, which matches each
//! distinct base once and passes over unrelated bases on short tensor sketches.
//!
//! Tensors are matched by content (shape, then the best correlation), never by name;
//! a tensor whose rows are all sampled is also matched under a permutation of its rows.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use rayon::prelude::*;

use super::dequant::{quantize_round_trip, ElementType};
use super::{plan, splitmix64, Fingerprint, TensorPrint, SEED};

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
/// The quick test sketches this many leading values of each tensor's sample…
const SKETCH_VALUES: usize = 256;
/// …(a tensor with fewer is not sketched) into as many sign bits (64-bit words)…
const SKETCH_WORDS: usize = SKETCH_VALUES / 64;
const SKETCH_BITS: u32 = 64 * SKETCH_WORDS as u32;
/// …and a suspect tensor is near a base tensor when their sketches differ in at most this
/// many bits. Sign sketches of vectors at correlation ρ differ in a fraction arccos(ρ)/π of
/// their bits: at ρ = 0.5 in 85 of 256 (σ ≈ 7.5), 99.4% of such pairs are near; unrelated
/// vectors differ in 128 (σ = 8), 0.16% of pairs are near.
const SKETCH_NEAR: u32 = 104;
/// Stage one of the quick test looks at this many suspect tensors, so that an unrelated
/// base costs a few sketch comparisons.
const QUICK_TENSORS: usize = 8;
/// A quantized suspect is compared with the base and fork re-quantized to its type in at
/// most this many blocks per tensor…
const EXACT_BLOCKS_PER_TENSOR: usize = 16;
/// …and this many in all, which bounds the cost per lineage entry.
const EXACT_MAX_BLOCKS: usize = 64;
/// The fork's change is held for the cosine as 8-bit steps (the suspect's as 16-bit) with
/// one step size per this many values: a quarter of the bytes of f32 to stream per
/// lineage entry, and an error of at most half a step (1/254 of the block's largest
/// change).
const DELTA_BLOCK: usize = 64;
/// The share of the fork's re-quantized blocks the suspect reproduces exactly counts as
/// its Wilson lower bound at this z, so that a handful of blocks cannot score high.
const EXACT_Z: f64 = 3.0;
/// Suspect changes are clipped at this many median absolute changes, so that one flipped
/// exponent bit cannot swamp a tensor.
const CLIP_MEDIANS: f64 = 6.0;

/// One suspect tensor's match.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    /// With a fork and a suspect quantized to a type with a reference quantizer (Q4_0,
    /// Q8_0): blocks where the base and the fork, re-quantized to that type, differ…
    pub requantized_blocks: usize,
    /// …and how many of them the suspect holds exactly as the re-quantized fork does.
    pub reproduced_blocks: usize,
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
    sketches: Vec<Option<Sketch>>,
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
        let sketches = sketches(base);
        BaseIndex {
            base,
            by_shape,
            bounds,
            sketches,
        }
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
    let (tensors, base_score) = base_matches(suspect, &sketches(suspect), &index);
    LineageReport {
        derived: base_score >= t.base,
        score: base_score,
        threshold: t.base,
        base_score,
        pooled_values: 0,
        requantized_blocks: 0,
        reproduced_blocks: 0,
        tensors: tensors.into_iter().map(|(m, _)| m).collect(),
    }
}

type Matched = (TensorMatch, Option<(Alignment, Vec<f32>)>);

/// A sign sketch of a tensor's leading sampled values (spec/fingerprint.md §5, "Quick
/// rejection"): the signs of a randomized Walsh–Hadamard transform of them. The transform
/// is orthogonal, so for values at correlation ρ each bit differs with probability
/// arccos(ρ)/π, nearly independently of the others. (A square ±1 matrix instead of the
/// transform makes the bits correlated, and unrelated tensors' sketches near far more
/// often than a binomial count would say.)
type Sketch = [u64; SKETCH_WORDS];

/// The random signs applied before the transform, drawn once from the sampling seed.
fn sketch_signs() -> &'static [f32; SKETCH_VALUES] {
    static SIGNS: OnceLock<[f32; SKETCH_VALUES]> = OnceLock::new();
    SIGNS.get_or_init(|| {
        std::array::from_fn(|i| {
            if splitmix64(SEED ^ splitmix64(0x736b_6574_6368 ^ i as u64)) & 1 == 1 {
                1.0
            } else {
                -1.0
            }
        })
    })
}

/// The sketch of one sample; `None` when it has fewer than [`SKETCH_VALUES`] values or
/// they are constant.
fn sketch(values: &[f32]) -> Option<Sketch> {
    let n = SKETCH_VALUES;
    if values.len() < n {
        return None;
    }
    // Clipped at CLIP_MEDIANS median magnitudes: one flipped exponent bit must not decide
    // every sign. The same rule for base and suspect keeps related tensors' sketches close.
    let mut x: Vec<f32> = values[..n].iter().map(|&v| clean(v) as f32).collect();
    let mut mags: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    mags.select_nth_unstable_by(n / 2, f32::total_cmp);
    let clip = CLIP_MEDIANS as f32 * mags[n / 2];
    let mean = x.iter().map(|&v| f64::from(v.clamp(-clip, clip))).sum::<f64>() / n as f64;
    for (v, s) in x.iter_mut().zip(sketch_signs()) {
        *v = (f64::from(v.clamp(-clip, clip)) - mean) as f32 * s;
    }
    if x.iter().all(|&v| v == 0.0) {
        return None;
    }
    // In-place fast Walsh–Hadamard transform.
    let mut h = 1;
    while h < n {
        for i in (0..n).step_by(2 * h) {
            for j in i..i + h {
                let (a, b) = (x[j], x[j + h]);
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
        h *= 2;
    }
    let mut out = [0u64; SKETCH_WORDS];
    for (k, v) in x.iter().enumerate() {
        if *v > 0.0 {
            out[k / 64] |= 1 << (k % 64);
        }
    }
    Some(out)
}

fn sketches(fp: &Fingerprint) -> Vec<Option<Sketch>> {
    fp.tensors.iter().map(|t| sketch(&t.values)).collect()
}

fn hamming(a: &Sketch, b: &Sketch) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// The quick test (spec/fingerprint.md §5): `Some(score)` when the suspect is plainly not
/// derived from this base (most entries of a revocation list), so the full match is
/// skipped. A suspect tensor is *near* when its sketch is within [`SKETCH_NEAR`] bits of a
/// base tensor of its shape (tried from the one at its own position, stopping at the first
/// near one). Rejected as soon as more than half of the first [`QUICK_TENSORS`] suspect
/// tensors that have sketched candidates are not near, or when fewer than half of all of
/// them are near; the score is
/// the median correlation the sketches imply over the tensors looked at. A derivative's
/// base score is a median of correlations, so at least half of its tensors correlate at
/// 0.5 or more with their base tensors, and those are near.
fn quick_reject(suspect: &Fingerprint, sk: &[Option<Sketch>], index: &BaseIndex<'_>) -> Option<f64> {
    let mut implied = Vec::new();
    let (mut near, mut seen) = (0usize, 0usize);
    let imply = |h: u32| (std::f64::consts::PI * f64::from(h) / f64::from(SKETCH_BITS)).cos();
    for (j, (s, ssk)) in suspect.tensors.iter().zip(sk).enumerate() {
        let (Some(ssk), Some(candidates)) = (ssk, index.by_shape.get(&(s.rows, s.cols))) else {
            continue;
        };
        let first = candidates.iter().position(|&i| i == j).unwrap_or(0);
        let mut best: Option<u32> = None;
        for &i in candidates[first..].iter().chain(&candidates[..first]) {
            let Some(b) = &index.sketches[i] else { continue };
            let h = hamming(ssk, b);
            best = Some(best.map_or(h, |m| m.min(h)));
            if h <= SKETCH_NEAR {
                break;
            }
        }
        let Some(h) = best else { continue };
        seen += 1;
        near += usize::from(h <= SKETCH_NEAR);
        implied.push(imply(h));
        // Stage one decided: more than half of its tensors missed.
        if seen <= QUICK_TENSORS && seen - near > QUICK_TENSORS / 2 {
            return Some(median(implied));
        }
    }
    if seen == 0 || 2 * near >= seen {
        return None;
    }
    Some(median(implied))
}

fn base_matches(suspect: &Fingerprint, sk: &[Option<Sketch>], index: &BaseIndex<'_>) -> (Vec<Matched>, f64) {
    let mut out = Vec::with_capacity(suspect.tensors.len());
    if let Some(score) = quick_reject(suspect, sk, index) {
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

/// The element type a suspect tensor was read as, if it has a reference quantizer here.
fn requantizable(dtype: &str) -> Option<ElementType> {
    match dtype {
        "Q4_0" => Some(ElementType::Q4_0),
        "Q8_0" => Some(ElementType::Q8_0),
        _ => None,
    }
}

/// The blocks of a quantized suspect tensor compared exactly: their offsets in the
/// sample, the base re-quantized there and the suspect's values there.
#[derive(Debug)]
struct ExactBlocks {
    ty: ElementType,
    offsets: Vec<usize>,
    base: Vec<[f32; 32]>,
    suspect: Vec<[f32; 32]>,
}

/// One matched suspect tensor, ready to be scored against any fork of its base: what does
/// not depend on the fork is computed once.
#[derive(Debug)]
struct Prepared {
    /// Position in the suspect's tensors.
    tensor: usize,
    /// The matched base tensor.
    base: usize,
    /// suspect − base at the sample, clipped at CLIP_MEDIANS median magnitudes, as 16-bit
    /// steps of one scale per [`DELTA_BLOCK`] values.
    ds: Blocks<i16>,
    exact: Option<ExactBlocks>,
}

fn block_at(v: &[f32], o: usize) -> [f32; 32] {
    let mut b = [0f32; 32];
    b.copy_from_slice(&v[o..o + 32]);
    b
}

fn prepare(suspect: &Fingerprint, matched: &[Matched], base: &Fingerprint) -> Vec<Prepared> {
    let mut out = Vec::new();
    let mut exact_budget = EXACT_MAX_BLOCKS;
    for (tensor, (_, aligned)) in matched.iter().enumerate() {
        let Some((a, values)) = aligned else { continue };
        let b = &base.tensors[a.base];
        let mut ds: Vec<f32> = values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| (clean(*x) - clean(*y)) as f32)
            .collect();
        let n = ds.len();
        if n == 0 {
            continue;
        }
        let mut mags: Vec<f32> = ds.iter().map(|d| d.abs()).collect();
        mags.select_nth_unstable_by(n / 2, f32::total_cmp);
        let mut median = mags[n / 2];
        if median == 0.0 {
            // At least half of the sample is unchanged (a fork that edits some rows, a
            // sparse fine-tune): the median change is 0 and would clip every change to
            // nothing, so the changed values' own median sets the clip.
            let mut changed: Vec<f32> = mags.into_iter().filter(|m| *m > 0.0).collect();
            if !changed.is_empty() {
                let k = changed.len() / 2;
                changed.select_nth_unstable_by(k, f32::total_cmp);
                median = changed[k];
            }
        }
        let clip = CLIP_MEDIANS as f32 * median;
        for d in &mut ds {
            *d = d.clamp(-clip, clip);
        }
        let ds = Blocks::<i16>::new(&ds);
        let s = &suspect.tensors[tensor];
        let exact = requantizable(&s.dtype).and_then(|ty| {
            // Whole blocks of the sample: every sampled row run starts at a multiple of 32
            // columns, and a block type's rows hold whole blocks, so the sample's blocks
            // are the file's. A tail shorter than a block is left out.
            let p = plan(s.rows, s.cols);
            let width = p.width as usize;
            let mut all = Vec::new();
            for r in 0..p.rows.len() {
                all.extend((0..width / 32).map(|k| r * width + 32 * k));
            }
            let take = all.len().min(EXACT_BLOCKS_PER_TENSOR).min(exact_budget);
            if take == 0 {
                return None;
            }
            // Evenly spread over the sample, so that no one row decides.
            let offsets: Vec<usize> = (0..take).map(|i| all[i * all.len() / take]).collect();
            let mut blocks = ExactBlocks {
                ty,
                offsets: Vec::new(),
                base: Vec::new(),
                suspect: Vec::new(),
            };
            for o in offsets {
                let Some(qb) = quantize_round_trip(ty, &block_at(&b.values, o)) else {
                    continue;
                };
                blocks.offsets.push(o);
                blocks.base.push(qb);
                blocks.suspect.push(block_at(values, o));
            }
            exact_budget -= take;
            Some(blocks)
        });
        out.push(Prepared {
            tensor,
            base: a.base,
            ds,
            exact,
        });
    }
    out
}

/// A vector held as integer steps with one f32 step size per [`DELTA_BLOCK`] values
/// (value = k × step, the step the block's largest magnitude over `T`'s largest integer):
/// the fork test's cosine runs on these, an integer multiply-add the compiler vectorizes,
/// and streams a quarter (8-bit) of the bytes of f32 per lineage entry.
#[derive(Debug)]
struct Blocks<T> {
    k: Vec<T>,
    steps: Vec<f32>,
    /// Squared norm of the held values.
    norm2: f64,
}

impl<T: Copy + Into<i32> + TryFrom<i32>> Blocks<T> {
    fn new(v: &[f32]) -> Self
    where
        T: Bounded,
    {
        let mut k = Vec::with_capacity(v.len());
        let mut steps = Vec::with_capacity(v.len().div_ceil(DELTA_BLOCK));
        let mut norm2 = 0.0;
        let top = T::MAX_STEPS as f32;
        for block in v.chunks(DELTA_BLOCK) {
            let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
            let step = amax / top;
            let inv = if step > 0.0 { 1.0 / step } else { 0.0 };
            steps.push(step);
            for &x in block {
                // Round half away from zero; `as` truncates toward zero and saturates.
                let y = x * inv;
                let q = ((y + 0.5f32.copysign(y)) as i32).clamp(-T::MAX_STEPS, T::MAX_STEPS);
                let held = f64::from(q as f32 * step);
                norm2 += held * held;
                k.push(T::try_from(q).unwrap_or(T::ZERO));
            }
        }
        Blocks { k, steps, norm2 }
    }

    fn len(&self) -> usize {
        self.k.len()
    }

    /// `Σ self[i] × other[i]`: integer products summed per block, blocks scaled and summed
    /// in f64. The fork test's inner loop, run once per tensor and entry.
    fn dot<U: Copy + Into<i32>>(&self, other: &Blocks<U>) -> f64 {
        let mut total = 0.0;
        let blocks = self.k.chunks(DELTA_BLOCK).zip(other.k.chunks(DELTA_BLOCK));
        for ((a, b), (&sa, &sb)) in blocks.zip(self.steps.iter().zip(&other.steps)) {
            // Integer sums may be reordered, so this vectorizes as it stands (no lanes).
            let sum: i32 = a
                .iter()
                .zip(b)
                .map(|(x, y)| Into::<i32>::into(*x) * Into::<i32>::into(*y))
                .sum();
            total += f64::from(sum) * f64::from(sa) * f64::from(sb);
        }
        total
    }
}

/// The integer types [`Blocks`] holds, with the largest step count each allows.
trait Bounded {
    const MAX_STEPS: i32;
    const ZERO: Self;
}

impl Bounded for i8 {
    const MAX_STEPS: i32 = 127;
    const ZERO: Self = 0;
}

impl Bounded for i16 {
    const MAX_STEPS: i32 = 32767;
    const ZERO: Self = 0;
}

/// One fork's change to one base tensor, as the fork test reads it.
#[derive(Debug)]
struct Delta<'a> {
    /// `fork − base` (non-finite values read as 0), for re-quantizing the fork exactly.
    exact: Cow<'a, [f32]>,
    /// The same in 8-bit steps, for the cosine.
    held: Blocks<i8>,
}

impl<'a> Delta<'a> {
    fn new(d: &'a [f32]) -> Self {
        // Most deltas have no non-finite value and are borrowed.
        let exact: Cow<'a, [f32]> = if d.iter().all(|v| v.is_finite()) {
            Cow::Borrowed(d)
        } else {
            Cow::Owned(d.iter().map(|&v| clean(v) as f32).collect())
        };
        let held = Blocks::new(&exact);
        Delta { exact, held }
    }
}

/// One fork's deltas, indexed by base tensor.
#[derive(Debug)]
struct Entry<'a> {
    by_base: Vec<Option<Delta<'a>>>,
}

impl<'a> Entry<'a> {
    fn new(fork: &'a ForkDelta) -> Self {
        let mut by_base: Vec<Option<Delta<'a>>> = Vec::new();
        by_base.resize_with(fork.base.tensors.len(), || None);
        for (i, d) in &fork.deltas {
            // A delta naming a tensor the base lacks matches nothing.
            if let Some(slot) = by_base.get_mut(*i) {
                *slot = Some(Delta::new(d));
            }
        }
        Entry { by_base }
    }
}

/// The Wilson lower bound of `k` successes in `n` at [`EXACT_Z`]; 0 for `n = 0`.
fn wilson_lower(k: usize, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, EXACT_Z);
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - spread) / (1.0 + z * z / n)).max(0.0)
}

/// A fork score and what it pooled.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ForkScore {
    score: f64,
    pooled: usize,
    requantized: usize,
    reproduced: usize,
}

/// Scores the prepared suspect against one fork of its base; `alignments`, when given,
/// receives each prepared tensor's cosine.
fn score_fork(
    prepared: &[Prepared],
    base: &Fingerprint,
    entry: &Entry<'_>,
    mut alignments: Option<&mut Vec<(usize, f64)>>,
) -> ForkScore {
    let (mut num, mut pooled) = (0.0, 0usize);
    let (mut requantized, mut reproduced) = (0usize, 0usize);
    for p in prepared {
        let Some(Some(delta)) = entry.by_base.get(p.base) else {
            continue;
        };
        if delta.held.norm2 == 0.0 || delta.held.len() != p.ds.len() {
            continue;
        }
        let n = p.ds.len();
        let cos = if p.ds.norm2 == 0.0 {
            0.0
        } else {
            p.ds.dot(&delta.held) / (p.ds.norm2 * delta.held.norm2).sqrt()
        };
        if let Some(a) = alignments.as_deref_mut() {
            a.push((p.tensor, cos));
        }
        // Tensors weigh by their sample count, not by their scale or their noise: a
        // tensor the fork barely changed, under quantization noise, must not drown the
        // others. Under independence each cosine is about N(0, 1/n), so the weighted mean
        // is about N(0, 1/pooled).
        num += n as f64 * cos;
        pooled += n;
        if let Some(x) = &p.exact {
            // The fork, quantized as the suspect was: where it differs from the base so
            // quantized, does the suspect hold exactly the fork's blocks? A descendant
            // quantized from the fork does in (nearly) every block; a sibling only where
            // its own change happens to round the same way.
            let bv = &base.tensors[p.base].values;
            for ((&o, qb), sv) in x.offsets.iter().zip(&x.base).zip(&x.suspect) {
                let fb: [f32; 32] = std::array::from_fn(|j| bv[o + j] + delta.exact[o + j]);
                let Some(qf) = quantize_round_trip(x.ty, &fb) else {
                    continue;
                };
                let same = |u: &[f32; 32], v: &[f32; 32]| u.iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits());
                if !same(&qf, qb) {
                    requantized += 1;
                    reproduced += usize::from(same(&qf, sv));
                }
            }
        }
    }
    let cosine = if pooled == 0 { 0.0 } else { num / pooled as f64 };
    ForkScore {
        score: cosine.max(wilson_lower(reproduced, requantized)),
        pooled,
        requantized,
        reproduced,
    }
}

/// Is `suspect` derived from the fork whose change is `fork` — does it carry that change —
/// rather than being another derivative of the same base?
///
/// The fork score is the larger of two measures of how much of the fork's change the
/// suspect carries: the sample-weighted mean cosine between the suspect's and the fork's
/// changes from the base, and, for a suspect quantized to Q4_0 or Q8_0, the share of the
/// blocks where the fork re-quantized to that type differs from the base so re-quantized
/// that the suspect holds exactly (Wilson lower bound). [`ForkIndex::check`] gives the
/// same verdicts and scores for many forks at once.
pub fn derived_from_fork(suspect: &Fingerprint, fork: &ForkDelta, t: Thresholds) -> LineageReport {
    let index = BaseIndex::new(&fork.base);
    let (mut matched, base_score) = base_matches(suspect, &sketches(suspect), &index);
    let prepared = prepare(suspect, &matched, &fork.base);
    let mut alignments = Vec::new();
    let f = score_fork(&prepared, &fork.base, &Entry::new(fork), Some(&mut alignments));
    for (i, cos) in alignments {
        matched[i].0.fork_alignment = Some(cos);
    }
    LineageReport {
        derived: base_score >= t.base && f.score >= t.fork,
        score: f.score,
        threshold: t.fork,
        base_score,
        pooled_values: f.pooled,
        requantized_blocks: f.requantized,
        reproduced_blocks: f.reproduced,
        tensors: matched.into_iter().map(|(m, _)| m).collect(),
    }
}

/// Many lineage entries indexed for checking one suspect against all of them: entries with
/// the same base fingerprint share one base index, so a suspect is matched against each
/// distinct base once, and a base it is plainly not derived from is passed over on the
/// sketches of its tensors alone (the quick test of [`derived_from_fork`]).
#[derive(Debug)]
pub struct ForkIndex<'a> {
    groups: Vec<Group<'a>>,
    entries: usize,
}

#[derive(Debug)]
struct Group<'a> {
    index: BaseIndex<'a>,
    /// `(position in the caller's slice, that fork's deltas)`.
    members: Vec<(usize, Entry<'a>)>,
}

/// One entry's verdict from [`ForkIndex::check`]; the same numbers as
/// [`derived_from_fork`]'s report on that entry.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ForkVerdict {
    /// Position of the entry in the slice the index was built from.
    pub entry: usize,
    /// The verdict.
    pub derived: bool,
    /// The fork score.
    pub score: f64,
    /// The derived-from-base score against the entry's base.
    pub base_score: f64,
    /// Sampled values the fork score pooled.
    pub pooled_values: usize,
    /// Blocks compared after re-quantization (see [`LineageReport::requantized_blocks`]).
    pub requantized_blocks: usize,
    /// Of those, the ones the suspect reproduces exactly.
    pub reproduced_blocks: usize,
}

/// A grouping hint for equal base fingerprints (equality is still checked): foldhash, not
/// the standard library's SipHash, because a revocation list of 1,000 entries hashes about
/// 65 million sampled values here and no adversary chooses collisions that matter (a
/// collision only costs one comparison).
fn fingerprint_hash(fp: &Fingerprint) -> u64 {
    use std::hash::BuildHasher;
    let mut h = foldhash::fast::FixedState::with_seed(SEED).build_hasher();
    for t in &fp.tensors {
        (t.rows, t.cols, &t.name, &t.dtype).hash(&mut h);
        for v in &t.values {
            h.write_u32(v.to_bits());
        }
    }
    h.finish()
}

impl<'a> ForkIndex<'a> {
    /// Indexes `entries`, grouping those whose base fingerprints are equal.
    pub fn new(entries: &'a [ForkDelta]) -> Self {
        // Hashing the bases and holding each fork's deltas as 8-bit steps are independent
        // per entry and most of the cost: done in parallel, then grouped in entry order.
        let prepared: Vec<(u64, Entry<'a>)> = entries
            .par_iter()
            .map(|e| (fingerprint_hash(&e.base), Entry::new(e)))
            .collect();
        let mut groups: Vec<Group<'a>> = Vec::new();
        let mut by_hash: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, (e, (hash, entry))) in entries.iter().zip(prepared).enumerate() {
            let slot = by_hash.entry(hash).or_default();
            // A hash is only a hint: the bases must be equal to share a group.
            match slot.iter().find(|&&g| *groups[g].index.base == e.base) {
                Some(&g) => groups[g].members.push((i, entry)),
                None => {
                    slot.push(groups.len());
                    groups.push(Group {
                        index: BaseIndex::new(&e.base),
                        members: vec![(i, entry)],
                    });
                }
            }
        }
        ForkIndex {
            groups,
            entries: entries.len(),
        }
    }

    /// Number of distinct base fingerprints among the entries.
    pub fn bases(&self) -> usize {
        self.groups.len()
    }

    /// Checks `suspect` against every entry; one verdict per entry, in entry order.
    pub fn check(&self, suspect: &Fingerprint, t: Thresholds) -> Vec<ForkVerdict> {
        let sk = sketches(suspect);
        let mut out: Vec<Option<ForkVerdict>> = vec![None; self.entries];
        // Each base is matched once (in parallel over bases), then each of its forks is
        // scored on its own (in parallel over forks): a verdict depends only on its entry,
        // so the order of work changes no number.
        let verdicts: Vec<ForkVerdict> = self
            .groups
            .par_iter()
            .flat_map_iter(|g| {
                let (matched, base_score) = base_matches(suspect, &sk, &g.index);
                let prepared = prepare(suspect, &matched, g.index.base);
                let scored: Vec<ForkVerdict> = g
                    .members
                    .par_iter()
                    .map(|(i, entry)| {
                        let f = score_fork(&prepared, g.index.base, entry, None);
                        ForkVerdict {
                            entry: *i,
                            derived: base_score >= t.base && f.score >= t.fork,
                            score: f.score,
                            base_score,
                            pooled_values: f.pooled,
                            requantized_blocks: f.requantized,
                            reproduced_blocks: f.reproduced,
                        }
                    })
                    .collect();
                scored
            })
            .collect();
        for v in verdicts {
            let i = v.entry;
            out[i] = Some(v);
        }
        // Every entry is a member of exactly one group.
        out.into_iter().flatten().collect()
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

    /// A fork that changes only some of the values (here every third row of each tensor)
    /// leaves the suspect's median change at 0: the clip must not then erase its change.
    #[test]
    fn a_sparse_fork_is_still_found() {
        let base = model(1);
        let noise = model(2);
        let mut fork = base.clone();
        for (t, n) in fork.tensors.iter_mut().zip(&noise.tensors) {
            let width = t.cols as usize;
            for (i, (v, d)) in t.values.iter_mut().zip(&n.values).enumerate() {
                if (i / width).is_multiple_of(3) {
                    *v += 0.05 * d;
                }
            }
        }
        let fd = ForkDelta::new(&base, &fork);
        let t = Thresholds::default();
        let r = derived_from_fork(&fork, &fd, t);
        assert!(r.derived && r.score > 0.9, "the fork itself scores {}", r.score);
        let sibling = plus(&base, &model(4), 0.02);
        let s = derived_from_fork(&sibling, &fd, t);
        assert!(!s.derived, "a sibling scores {}", s.score);
    }

    /// A rank-2 change of `scale` × the base's norm, tensor by tensor.
    fn low_rank(base: &Fingerprint, seed: u64, scale: f32) -> Fingerprint {
        let mut g = Lcg(seed);
        let mut out = base.clone();
        for t in &mut out.tensors {
            let (rows, cols) = (t.rows as usize, t.cols as usize);
            let u: Vec<f32> = (0..rows * 2).map(|_| g.next()).collect();
            let v: Vec<f32> = (0..2 * cols).map(|_| g.next()).collect();
            let d: Vec<f32> = (0..rows * cols)
                .map(|i| (0..2).map(|k| u[(i / cols) * 2 + k] * v[k * cols + i % cols]).sum())
                .collect();
            let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
            let k = scale * norm(&t.values) / norm(&d);
            for (x, dx) in t.values.iter_mut().zip(&d) {
                *x += k * dx;
            }
        }
        out
    }

    /// What a GGUF quantized to `ty` from `fp` holds at its sample.
    fn quantized(fp: &Fingerprint, ty: ElementType) -> Fingerprint {
        let mut out = fp.clone();
        for t in &mut out.tensors {
            t.dtype = ty.name().into();
            for b in t.values.chunks_exact_mut(32) {
                let q = quantize_round_trip(ty, &block_at(b, 0)).unwrap();
                b.copy_from_slice(&q);
            }
        }
        out
    }

    fn quant_model(seed: u64) -> Fingerprint {
        let mut g = Lcg(seed);
        Fingerprint {
            tensors: (0..6).map(|i| g.tensor(&format!("t{i}"), 64, 128, 1.0)).collect(),
        }
    }

    /// The sample-weighted mean cosine alone: the fork score before re-quantization.
    fn mean_cosine(r: &LineageReport) -> f64 {
        let n = 64.0 * 128.0;
        let c: Vec<f64> = r.tensors.iter().filter_map(|t| t.fork_alignment).collect();
        c.iter().map(|c| c * n).sum::<f64>() / (n * c.len() as f64)
    }

    #[test]
    fn a_low_rank_fork_quantized_to_q4_0_is_caught_and_its_sibling_is_not() {
        let base = quant_model(11);
        let fork = low_rank(&base, 12, 0.005);
        let sibling = low_rank(&base, 13, 0.005);
        let fd = ForkDelta::new(&base, &fork);
        let t = Thresholds::default();
        for ty in [ElementType::Q4_0, ElementType::Q8_0] {
            let r = derived_from_fork(&quantized(&fork, ty), &fd, t);
            // Quantization noise buries a 0.5% change: the cosine alone misses it…
            if ty == ElementType::Q4_0 {
                assert!(mean_cosine(&r) < t.fork, "cosine {}", mean_cosine(&r));
            }
            // …while the re-quantized fork's blocks are all there.
            // 64 blocks at most, all reproduced: a Wilson bound of 64 / (64 + 9).
            assert!(r.derived && r.score > 0.8, "{ty:?}: score {}", r.score);
            assert_eq!(r.reproduced_blocks, r.requantized_blocks);
            assert!(r.requantized_blocks >= 16, "{} blocks", r.requantized_blocks);
            let s = derived_from_fork(&quantized(&sibling, ty), &fd, t);
            assert!(!s.derived, "{ty:?} sibling score {}", s.score);
            assert!(derived_from(&quantized(&sibling, ty), &base, t).derived);
        }
        // Unquantized suspects are not re-quantized.
        let r = derived_from_fork(&fork, &fd, t);
        assert_eq!((r.requantized_blocks, r.reproduced_blocks), (0, 0));
        assert!(r.derived);
    }

    #[test]
    fn the_wilson_bound_keeps_a_few_blocks_from_scoring_high() {
        assert_eq!(wilson_lower(0, 0), 0.0);
        assert!(wilson_lower(2, 2) < FORK_THRESHOLD);
        assert!(wilson_lower(300, 300) > 0.95);
        assert!(wilson_lower(30, 300) < 0.06);
    }

    #[test]
    fn the_quick_test_passes_over_unrelated_bases_only() {
        let base = model(1);
        let index = BaseIndex::new(&base);
        let related = plus(&base, &model(2), 0.3);
        let mut flipped = related.clone();
        for t in &mut flipped.tensors {
            t.values[7] = f32::from_bits(t.values[7].to_bits() ^ (1 << 30));
        }
        for s in [&base, &related, &flipped] {
            assert_eq!(quick_reject(s, &sketches(s), &index), None);
        }
        let stranger = model(3);
        let score = quick_reject(&stranger, &sketches(&stranger), &index).expect("rejected");
        assert!(score.abs() < 0.3, "{score}");
        // A constant tensor has no sketch and is no candidate.
        assert_eq!(sketch(&[1.0; 512]), None);
        assert_eq!(sketch(&[0.5; 100]), None);
    }

    #[test]
    fn the_batch_index_gives_the_single_checks_verdicts() {
        let (a, b) = (model(1), model(21));
        let fa1 = plus(&a, &model(2), 0.02);
        let fa2 = plus(&a, &model(4), 0.02);
        let fb = plus(&b, &model(22), 0.02);
        let entries = vec![
            ForkDelta::new(&a, &fa1),
            ForkDelta::new(&a, &fa2),
            ForkDelta::new(&b, &fb),
            ForkDelta::new(&a, &fa1),
        ];
        let index = ForkIndex::new(&entries);
        assert_eq!(index.bases(), 2);
        let qbase = quant_model(11);
        let qfork = low_rank(&qbase, 12, 0.005);
        let qentries = vec![
            ForkDelta::new(&qbase, &qfork),
            ForkDelta::new(&qbase, &low_rank(&qbase, 13, 0.005)),
        ];
        let qindex = ForkIndex::new(&qentries);
        let t = Thresholds::default();
        let mut derived = 0;
        for (index, entries, suspects) in [
            (
                &index,
                &entries,
                vec![plus(&fa1, &model(5), 0.02), fb.clone(), fa2.clone(), model(9)],
            ),
            (
                &qindex,
                &qentries,
                vec![quantized(&qfork, ElementType::Q4_0), qfork.clone()],
            ),
        ] {
            for s in &suspects {
                let verdicts = index.check(s, t);
                assert_eq!(verdicts.len(), entries.len());
                for (v, e) in verdicts.iter().zip(entries.iter()) {
                    let r = derived_from_fork(s, e, t);
                    assert_eq!(
                        (v.derived, v.score.to_bits(), v.base_score.to_bits(), v.pooled_values),
                        (r.derived, r.score.to_bits(), r.base_score.to_bits(), r.pooled_values)
                    );
                    assert_eq!(
                        (v.requantized_blocks, v.reproduced_blocks),
                        (r.requantized_blocks, r.reproduced_blocks)
                    );
                    derived += usize::from(v.derived);
                }
            }
        }
        // fa1's grandchild (entries 0 and 3), fb, fa2, and the quantized fork, unquantized fork.
        assert_eq!(derived, 6);
    }
}
