//! `bench lineage-calibrate` and `bench fingerprint-cost` (issue 9).
//!
//! `lineage-calibrate --corpus DIR` reads a corpus made by tests/lineage/make_corpus.py,
//! fingerprints every model through the library, and prints, per transformation, the
//! scores of the fork's descendants (positives) and of every sibling fork's same
//! derivative and the unrelated models (negatives); the thresholds that give FPR ≤ 1% on
//! all negatives pooled; TPR/FPR per transformation at those thresholds and at the
//! compiled ones; and the limit series (further training, pruning, distillation).
//!
//! `fingerprint-cost` writes (once) a safetensors model of F16 4096×4096 tensors, warms the
//! page cache, and times `b3sum` on it against fingerprinting it, interleaved run by run;
//! then times a check of one suspect against 1,000 lineage entries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use rayon::prelude::*;
use weightseal_verifier::fingerprint::dequant::quantize_round_trip;
use weightseal_verifier::fingerprint::lineage::{
    derived_from, derived_from_fork, ForkDelta, ForkIndex, Thresholds, BASE_THRESHOLD, FORK_THRESHOLD,
};
use weightseal_verifier::fingerprint::ElementType;
use weightseal_verifier::fingerprint::{fingerprint_model, Fingerprint, TensorPrint};
use weightseal_verifier::revocation::lineage::LineageDoc;

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// The corpus folder (with manifest.json).
    #[arg(long)]
    corpus: PathBuf,
    /// Largest false-positive rate the chosen thresholds allow.
    #[arg(long, default_value_t = 0.01)]
    max_fpr: f64,
}

struct Model {
    role: String,
    fork: Option<u64>,
    transformation: Option<String>,
    series: Option<String>,
    amount: Option<f64>,
    kind: Option<String>,
    fp: Fingerprint,
}

fn load_corpus(dir: &Path) -> Result<Vec<Model>, String> {
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .map_err(|e| format!("{}: {e} (make it with tests/lineage/make_corpus.py)", dir.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("manifest.json: {e}"))?;
    let items = doc["models"].as_array().ok_or("manifest.json: no models")?;
    let mut out = Vec::new();
    for m in items {
        let path = m["path"].as_str().ok_or("model without path")?.to_string();
        let fp = fingerprint_model(&dir.join(&path)).map_err(|e| format!("{path}: {e}"))?;
        out.push(Model {
            role: m["role"].as_str().unwrap_or_default().to_string(),
            fork: m["fork"].as_u64(),
            transformation: m["transformation"].as_str().map(str::to_string),
            series: m["series"].as_str().map(str::to_string),
            amount: m["amount"].as_f64(),
            kind: m["kind"].as_str().map(str::to_string),
            fp,
        });
    }
    Ok(out)
}

/// The smallest threshold `t` (from the observed scores) with `#(neg >= t) / #neg <= max_fpr`.
fn threshold_for(neg: &[f64], max_fpr: f64) -> f64 {
    let mut v = neg.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    let allowed = (max_fpr * v.len() as f64).floor() as usize;
    // Scores strictly above the (allowed+1)-th highest negative pass.
    let cut = v.get(allowed).copied().unwrap_or(f64::NEG_INFINITY);
    next_up(cut)
}

fn next_up(x: f64) -> f64 {
    // The threshold sits just above the highest negative that must be refused.
    x + 1e-9_f64.max(x.abs() * 1e-9)
}

fn rate(scores: &[f64], t: f64) -> (usize, usize) {
    (scores.iter().filter(|&&s| s >= t).count(), scores.len())
}

fn pct((k, n): (usize, usize)) -> String {
    if n == 0 {
        "–".into()
    } else {
        format!("{:.1}% ({k}/{n})", 100.0 * k as f64 / n as f64)
    }
}

pub fn calibrate(args: &CalibrateArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    let models = load_corpus(&args.corpus)?;
    eprintln!("fingerprinted {} models in {:.1?}", models.len(), started.elapsed());
    let base = &models.iter().find(|m| m.role == "base").ok_or("corpus has no base")?.fp;
    let forks: BTreeMap<u64, &Model> = models
        .iter()
        .filter(|m| m.role == "fork")
        .filter_map(|m| Some((m.fork?, m)))
        .collect();
    let deltas: BTreeMap<u64, ForkDelta> = forks.iter().map(|(&f, m)| (f, ForkDelta::new(base, &m.fp))).collect();
    let unrelated: Vec<&Model> = models.iter().filter(|m| m.role == "unrelated").collect();
    let raw = Thresholds {
        base: f64::NEG_INFINITY,
        fork: f64::NEG_INFINITY,
    };

    // Fork test: per transformation, positives and negatives.
    let mut transformations: Vec<String> = vec!["self".into()];
    for m in &models {
        if let Some(t) = &m.transformation {
            if !transformations.contains(t) {
                transformations.push(t.clone());
            }
        }
    }
    let of = |m: &Model| -> Option<String> {
        match m.role.as_str() {
            "fork" => Some("self".into()),
            "descendant" => m.transformation.clone(),
            _ => None,
        }
    };
    let mut pos: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut neg: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    // Fork kinds (full / lora) of each positive, in the same order as `pos`.
    let mut pos_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Every score below comes from the batch index; each is checked against the single
    // check (`derived_from_fork`), which must give the same number.
    let keys: Vec<u64> = deltas.keys().copied().collect();
    let entries: Vec<ForkDelta> = deltas.values().cloned().collect();
    let index = ForkIndex::new(&entries);
    let mut disagreements = 0usize;
    let mut batch_time = Duration::ZERO;
    let mut batch_checks = 0usize;
    for m in &models {
        let (Some(t), Some(mf)) = (of(m), m.fork) else { continue };
        let started = Instant::now();
        let verdicts = index.check(&m.fp, raw);
        batch_time += started.elapsed();
        batch_checks += 1;
        for (k, (&f, d)) in keys.iter().zip(&entries).enumerate() {
            let r = derived_from_fork(&m.fp, d, raw);
            if r.score.to_bits() != verdicts[k].score.to_bits()
                || r.base_score.to_bits() != verdicts[k].base_score.to_bits()
            {
                disagreements += 1;
            }
            // A model must pass the base test as well; its fork score counts only then.
            let s = if r.base_score >= BASE_THRESHOLD {
                r.score
            } else {
                f64::NEG_INFINITY
            };
            if f == mf {
                pos.entry(t.clone()).or_default().push(s);
                let kind = forks.get(&mf).and_then(|k| k.kind.clone()).unwrap_or_default();
                pos_kind.entry(t.clone()).or_default().push(kind);
            } else {
                neg.entry(t.clone()).or_default().push(s);
            }
        }
    }
    let mut unrelated_fork = Vec::new();
    for u in &unrelated {
        for d in deltas.values() {
            let r = derived_from_fork(&u.fp, d, raw);
            unrelated_fork.push(if r.base_score >= BASE_THRESHOLD {
                r.score
            } else {
                f64::NEG_INFINITY
            });
        }
    }
    let all_neg: Vec<f64> = neg
        .values()
        .flatten()
        .copied()
        .chain(unrelated_fork.iter().copied())
        .collect();
    let chosen_fork = threshold_for(&all_neg, args.max_fpr);

    // Base test: every derivative of the base against the unrelated models.
    let mut base_pos = Vec::new();
    for m in &models {
        let derivative = matches!(m.role.as_str(), "fork" | "descendant")
            || (m.role == "limit" && m.series.as_deref() != Some("distillation into a fresh model"));
        if derivative {
            base_pos.push(derived_from(&m.fp, base, raw).score);
        }
    }
    let base_neg: Vec<f64> = unrelated.iter().map(|u| derived_from(&u.fp, base, raw).score).collect();
    let chosen_base = threshold_for(&base_neg, args.max_fpr);

    let fmt_range = |v: &[f64]| -> String {
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if finite.is_empty() {
            return "–".into();
        }
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{lo:.3}…{hi:.3}")
    };

    let mut out = String::new();
    out.push_str(&format!(
        "corpus {}: {} models, {} forks ({} LoRA), {} unrelated\n\n",
        args.corpus.display(),
        models.len(),
        forks.len(),
        forks.values().filter(|m| m.kind.as_deref() == Some("lora")).count(),
        unrelated.len()
    ));
    out.push_str(&format!(
        "chosen thresholds (FPR <= {:.0}% on all negatives pooled): fork {chosen_fork:.4}, base {chosen_base:.4}\n",
        args.max_fpr * 100.0
    ));
    out.push_str(&format!(
        "compiled thresholds: fork {FORK_THRESHOLD:.4}, base {BASE_THRESHOLD:.4}\n"
    ));
    out.push_str(&format!(
        "batch index ({} entries, {} base): {batch_checks} suspects in {batch_time:.1?}; scores differing from the single check: {disagreements}\n",
        entries.len(),
        index.bases()
    ));
    let further: Vec<f64> = models
        .iter()
        .filter(|m| m.transformation.as_deref() == Some("trained-further-1x"))
        .filter_map(|m| m.amount)
        .collect();
    out.push_str(&format!(
        "trained-further-1x: each fork trained further by {} times its own change\n\n",
        fmt_range(&further)
    ));
    out.push_str("`lineage --fork` (descendants of the fork vs the same derivative of each sibling fork)\n\n");
    out.push_str("| transformation | TPR @compiled | FPR @compiled | TPR @chosen | FPR @chosen | fork score, descendants | fork score, siblings | missed @compiled |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for t in &transformations {
        let p = pos.get(t).cloned().unwrap_or_default();
        let n = neg.get(t).cloned().unwrap_or_default();
        let kinds = pos_kind.get(t).cloned().unwrap_or_default();
        let mut missed: BTreeMap<&str, usize> = BTreeMap::new();
        for (score, kind) in p.iter().zip(&kinds) {
            if *score < FORK_THRESHOLD {
                *missed.entry(kind.as_str()).or_default() += 1;
            }
        }
        let missed = if missed.is_empty() {
            "none".to_string()
        } else {
            missed
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| {t} | {} | {} | {} | {} | {} | {} | {missed} |\n",
            pct(rate(&p, FORK_THRESHOLD)),
            pct(rate(&n, FORK_THRESHOLD)),
            pct(rate(&p, chosen_fork)),
            pct(rate(&n, chosen_fork)),
            fmt_range(&p),
            fmt_range(&n),
        ));
    }
    out.push_str(&format!(
        "| unrelated models (negatives) | – | {} | – | {} | – | {} | – |\n\n",
        pct(rate(&unrelated_fork, FORK_THRESHOLD)),
        pct(rate(&unrelated_fork, chosen_fork)),
        fmt_range(&unrelated_fork)
    ));
    out.push_str("`lineage` without --fork (every derivative of the base vs unrelated models)\n\n");
    out.push_str("| set | derived @compiled | score range |\n|---|---|---|\n");
    out.push_str(&format!(
        "| derivatives of the base | {} | {} |\n",
        pct(rate(&base_pos, BASE_THRESHOLD)),
        fmt_range(&base_pos)
    ));
    out.push_str(&format!(
        "| unrelated models | {} | {} |\n\n",
        pct(rate(&base_neg, BASE_THRESHOLD)),
        fmt_range(&base_neg)
    ));

    out.push_str("limits (fork score of the fork's own derivative; flagged at the compiled threshold?)\n\n");
    out.push_str("| series | fork | amount | base score | fork score | flagged |\n|---|---|---|---|---|---|\n");
    for m in models.iter().filter(|m| m.role == "limit") {
        let Some(d) = m.fork.and_then(|f| deltas.get(&f)) else {
            continue;
        };
        let r = derived_from_fork(&m.fp, d, Thresholds::default());
        out.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {} |\n",
            m.series.as_deref().unwrap_or("?"),
            m.fork.unwrap_or(0),
            m.amount.map(|a| format!("{a:.2}")).unwrap_or_default(),
            r.base_score,
            r.score,
            if r.derived { "yes" } else { "no" }
        ));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct CostArgs {
    /// Model size in GiB (F16 4096×4096 tensors, 32 MiB each).
    #[arg(long, default_value_t = 2.0)]
    size_gib: f64,
    /// Timed runs of each.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Folder for the model [default: TMPDIR/weightseal-bench-fp].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `b3sum` binary [default: found on PATH].
    #[arg(long)]
    b3sum: Option<PathBuf>,
    /// Lineage entries to check one suspect against.
    #[arg(long, default_value_t = 1000)]
    entries: usize,
}

fn write_model(path: &Path, tensors: usize) -> Result<(), String> {
    use std::io::Write as _;
    let n = 4096usize * 4096;
    let mut header = String::from("{");
    for i in 0..tensors {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"layers.{i}.weight\":{{\"dtype\":\"F16\",\"shape\":[4096,4096],\"data_offsets\":[{},{}]}}",
            i * n * 2,
            (i + 1) * n * 2
        ));
    }
    header.push('}');
    while (header.len() + 8) % 8 != 0 {
        header.push(' ');
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    f.write_all(&(header.len() as u64).to_le_bytes()).map_err(io)?;
    f.write_all(header.as_bytes()).map_err(io)?;
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..(tensors * n * 2) / buf.len() {
        for c in buf.chunks_exact_mut(2) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Halves in about ±0.06: exponent 0x2800-ish, random mantissa and sign.
            let h = 0x2800u16 | (state as u16 & 0x83ff);
            c.copy_from_slice(&h.to_le_bytes());
        }
        f.write_all(&buf).map_err(io)?;
    }
    f.flush().map_err(io)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn perturbed(fp: &Fingerprint, seed: u64, scale: f32) -> Fingerprint {
    // xorshift is linear over GF(2): streams from small seeds are XORs of a few common
    // streams and correlate. A mixed, odd seed gives each its own stream.
    let mut state = {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) | 1
    };
    Fingerprint {
        tensors: fp
            .tensors
            .iter()
            .map(|t| TensorPrint {
                values: t
                    .values
                    .iter()
                    .map(|v| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        v + scale * ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                    })
                    .collect(),
                ..t.clone()
            })
            .collect(),
    }
}

pub fn cost(args: &CostArgs) -> Result<ExitCode, String> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("weightseal-bench-fp"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tensors = ((args.size_gib * 1024.0) / 32.0).round().max(1.0) as usize;
    let model = dir.join("model.safetensors");
    let want = 8 + tensors as u64 * 4096 * 4096 * 2;
    if std::fs::metadata(&model).map(|m| m.len()).unwrap_or(0) < want {
        eprintln!("writing {} ({} tensors)…", model.display(), tensors);
        write_model(&model, tensors)?;
    }
    let b3sum = args
        .b3sum
        .clone()
        .or_else(|| which("b3sum"))
        .ok_or("b3sum not found (cargo install b3sum, or --b3sum PATH)")?;
    // Warm the page cache so both read from memory.
    let _ = Process::new(&b3sum).arg(&model).stdout(Stdio::null()).status();
    let (mut hash, mut fp_times) = (Vec::new(), Vec::new());
    let mut fp = Fingerprint::default();
    for _ in 0..args.runs.max(1) {
        let t = Instant::now();
        let ok = Process::new(&b3sum)
            .arg(&model)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("b3sum: {e}"))?;
        hash.push(t.elapsed());
        if !ok.success() {
            return Err("b3sum failed".into());
        }
        let t = Instant::now();
        fp = fingerprint_model(&model).map_err(|e| e.to_string())?;
        fp_times.push(t.elapsed());
    }
    let (h, f) = (median(hash), median(fp_times));
    let ratio = f.as_secs_f64() / h.as_secs_f64();
    println!(
        "model {:.2} GiB, {tensors} tensors: b3sum {h:.3?}, fingerprint {f:.3?} (in-process, median of {}): {:.2}% of b3sum (target <= 5%)",
        want as f64 / (1u64 << 30) as f64,
        args.runs,
        ratio * 100.0
    );
    let (c, hits) = check_entries(&fp, args.entries, args.runs)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    Ok(if ratio <= 0.05 && c <= Duration::from_millis(50) && hits {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// An unrelated base of the same shapes: values drawn afresh.
fn shuffle_base(fp: &Fingerprint, seed: u64) -> Fingerprint {
    let mut out = perturbed(fp, seed, 0.12);
    for (t, orig) in out.tensors.iter_mut().zip(&fp.tensors) {
        for (v, o) in t.values.iter_mut().zip(&orig.values) {
            *v -= o;
        }
    }
    out
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// Lineage entries to check one suspect against.
    #[arg(long, default_value_t = 1000)]
    entries: usize,
    /// Tensors per model (4096×4096 each, about 1,024 sampled values).
    #[arg(long, default_value_t = 64)]
    tensors: usize,
    /// Timed runs of each check.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// `bench lineage-batch`: one suspect against many lineage entries through
/// [`ForkIndex`], on generated fingerprints of 4096×4096 tensors (no model file needed).
pub fn batch(args: &BatchArgs) -> Result<ExitCode, String> {
    let p = weightseal_verifier::fingerprint::plan(4096, 4096);
    let base = Fingerprint {
        tensors: (0..args.tensors)
            .map(|i| TensorPrint {
                name: format!("layers.{i}.weight"),
                dtype: "F16".into(),
                rows: 4096,
                cols: 4096,
                values: vec![0.0; p.len()],
            })
            .collect(),
    };
    // A seed no entry's base uses (they use 1..entries).
    let base = perturbed(&base, u64::MAX / 3, 0.12);
    let (c, ok) = check_entries(&base, args.entries, args.runs)?;
    Ok(if ok && c <= Duration::from_millis(50) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The same fingerprint with every value's bits quantized as a Q4_0 GGUF would hold them.
fn as_q4_0(fp: &Fingerprint) -> Fingerprint {
    let mut out = fp.clone();
    for t in &mut out.tensors {
        t.dtype = "Q4_0".into();
        for b in t.values.chunks_exact_mut(32) {
            let block: [f32; 32] = std::array::from_fn(|j| b[j]);
            if let Some(q) = quantize_round_trip(ElementType::Q4_0, &block) {
                b.copy_from_slice(&q);
            }
        }
    }
    out
}

/// Times one suspect against `n` entries in two layouts: every entry a fork of its own
/// base (1,000 bases to match), and every entry a fork of one base (one base match, 1,000
/// fork scores); each with a suspect descended from entry 0 as F32 and as Q4_0. Checks
/// that the index flags entry 0 only, and that [`derived_from_fork`] agrees with it on a
/// few entries. Returns the slowest median and whether every verdict was right.
fn check_entries(fp: &Fingerprint, n: usize, runs: usize) -> Result<(Duration, bool), String> {
    let t = Thresholds::default();
    let mut slowest = Duration::ZERO;
    let mut ok = true;
    for layout in ["distinct bases", "one shared base"] {
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let base = if i == 0 || layout == "one shared base" {
                fp.clone()
            } else {
                shuffle_base(fp, i as u64)
            };
            let fork = perturbed(&base, 5000 + i as u64, 0.004);
            entries.push(ForkDelta::new(&base, &fork));
        }
        // What a load decision pays before the check: the held documents decoded (their
        // digests checked) and the index built, as `decision::lineage_hits` does.
        let docs = entries
            .iter()
            .map(|e| LineageDoc::new(e).map(|d| (d.digest(), d.into_bytes())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("lineage document: {e}"))?;
        let doc_bytes: usize = docs.iter().map(|(_, b)| b.len()).sum();
        let mut preparation = Vec::new();
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let decoded = docs
                .par_iter()
                .map(|(digest, bytes)| {
                    // What the state does with a document read from disk: it owns the bytes.
                    LineageDoc::from_vec_named(bytes.clone(), digest).map(LineageDoc::into_fork_delta)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("lineage document: {e}"))?;
            let decoded_at = started.elapsed();
            let index = ForkIndex::new(&decoded);
            preparation.push((started.elapsed(), decoded_at, index.bases()));
        }
        preparation.sort();
        let (prep, decode_part, _) = preparation[preparation.len() / 2];
        println!(
            "{n} lineage entries ({layout}): {:.0} MiB of documents decoded in {decode_part:.1?}, index built, {prep:.1?} in all before a check (median of {runs})",
            doc_bytes as f64 / f64::from(1 << 20)
        );
        let built = Instant::now();
        let index = ForkIndex::new(&entries);
        let built = built.elapsed();
        let descendant = perturbed(&perturbed(fp, 5000, 0.004), 77, 0.002);
        for (kind, suspect) in [
            ("F32", descendant.clone()),
            ("Q4_0", as_q4_0(&perturbed(fp, 5000, 0.004))),
        ] {
            let mut times = Vec::new();
            let mut flagged = Vec::new();
            let mut matched = 0;
            for _ in 0..runs.max(1) {
                let started = Instant::now();
                let verdicts = index.check(&suspect, t);
                times.push(started.elapsed());
                flagged = verdicts.iter().filter(|v| v.derived).map(|v| v.entry).collect();
                // Entries whose base passed the quick test pooled sampled values.
                matched = verdicts.iter().filter(|v| v.pooled_values > 0).count();
            }
            let c = median(times);
            slowest = slowest.max(c);
            let right = flagged == [0];
            // The single check must agree with the batch (entry 0 and a few others).
            let verdicts = index.check(&suspect, t);
            let agree = [0, 1, n / 2, n - 1].iter().filter(|&&i| i < n).all(|&i| {
                let r = derived_from_fork(&suspect, &entries[i], t);
                r.derived == verdicts[i].derived && r.score.to_bits() == verdicts[i].score.to_bits()
            });
            ok &= right && agree;
            println!(
                "{n} lineage entries ({layout}: {} base(s), index built in {built:.1?}), {} tensors each, {kind} suspect: {c:.2?} per check (median of {runs}; target <= 50 ms), {matched} entries past the quick test, flagged {:?}{}{}",
                index.bases(),
                fp.tensors.len(),
                &flagged[..flagged.len().min(5)],
                if right { "" } else { " (WRONG: expected [0])" },
                if agree { "" } else { " (batch and single check DISAGREE)" }
            );
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    Ok((slowest, ok))
}
