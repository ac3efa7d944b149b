//! Element types to f32 (spec/fingerprint.md §3).
//!
//! Every block type is decoded the way ggml's reference `dequantize_row_*` does it, in
//! f32 arithmetic with no fused multiply-add, so that the values equal those of the `gguf`
//! Python package's `gguf.quants.dequantize` bit for bit (checked on the vectors in
//! `spec/vectors/fingerprint/dequant.json`). Callers hand in whole blocks; the block
//! layouts match `format::gguf`'s size table.

/// An element encoding the fingerprint can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ElementType {
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    Bf16,
    /// OCP FP8 E4M3 ("fn": no infinities, 0x7f and 0xff are NaN).
    F8E4M3,
    /// OCP FP8 E5M2 (IEEE-like).
    F8E5M2,
    /// Signed integers of 1, 2, 4 or 8 bytes.
    Int(u8),
    /// Unsigned integers of 1, 2, 4 or 8 bytes.
    UInt(u8),
    /// ggml Q4_0: 32 values, f16 scale, 4-bit offsets.
    Q4_0,
    /// ggml Q4_1: 32 values, f16 scale and minimum.
    Q4_1,
    /// ggml Q5_0.
    Q5_0,
    /// ggml Q5_1.
    Q5_1,
    /// ggml Q8_0.
    Q8_0,
    /// ggml Q2_K (256-value super-blocks).
    Q2K,
    /// ggml Q3_K.
    Q3K,
    /// ggml Q4_K.
    Q4K,
    /// ggml Q5_K.
    Q5K,
    /// ggml Q6_K.
    Q6K,
}

const QK_K: usize = 256;

impl ElementType {
    /// The type for a ggml type id, or `None` for types the fingerprint does not decode.
    pub fn from_ggml(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            24 => Self::Int(1),
            25 => Self::Int(2),
            26 => Self::Int(4),
            27 => Self::Int(8),
            28 => Self::F64,
            30 => Self::Bf16,
            _ => return None,
        })
    }

    /// The type for a safetensors dtype, or `None` for those the fingerprint does not
    /// decode (BOOL carries no weights; F4/F6/E8M0/FNUZ/complex are not read).
    pub fn from_safetensors(dtype: safetensors::Dtype) -> Option<Self> {
        use safetensors::Dtype as D;
        Some(match dtype {
            D::F64 => Self::F64,
            D::F32 => Self::F32,
            D::F16 => Self::F16,
            D::BF16 => Self::Bf16,
            D::F8_E4M3 => Self::F8E4M3,
            D::F8_E5M2 => Self::F8E5M2,
            D::I8 => Self::Int(1),
            D::I16 => Self::Int(2),
            D::I32 => Self::Int(4),
            D::I64 => Self::Int(8),
            D::U8 => Self::UInt(1),
            D::U16 => Self::UInt(2),
            D::U32 => Self::UInt(4),
            D::U64 => Self::UInt(8),
            _ => return None,
        })
    }

    /// `(values per block, bytes per block)`.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F64 => (1, 8),
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::F8E4M3 | Self::F8E5M2 => (1, 1),
            Self::Int(n) | Self::UInt(n) => (1, usize::from(n)),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q2K => (QK_K, 84),
            Self::Q3K => (QK_K, 110),
            Self::Q4K => (QK_K, 144),
            Self::Q5K => (QK_K, 176),
            Self::Q6K => (QK_K, 210),
        }
    }

    /// The name used in fingerprints and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::F64 => "F64",
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Bf16 => "BF16",
            Self::F8E4M3 => "F8_E4M3",
            Self::F8E5M2 => "F8_E5M2",
            Self::Int(1) => "I8",
            Self::Int(2) => "I16",
            Self::Int(4) => "I32",
            Self::Int(_) => "I64",
            Self::UInt(1) => "U8",
            Self::UInt(2) => "U16",
            Self::UInt(4) => "U32",
            Self::UInt(_) => "U64",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q2K => "Q2_K",
            Self::Q3K => "Q3_K",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
        }
    }
}

/// IEEE binary16 bits to f32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man * 2^-24, exactly representable in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// f32 to IEEE binary16 bits, rounding to nearest even (as ggml's `GGML_FP32_TO_FP16` and
/// numpy's `astype(float16)` do); overflow gives infinity, NaN stays NaN.
pub fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x007f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x0200 } else { 0 };
    }
    let e = exp - 112; // the f16 exponent field: rebias from 127 to 15
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let round = |q: u32, rem: u32, half: u32| -> u32 {
        if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    };
    if e <= 0 {
        // An f16 subnormal (or zero): value = q × 2^-24 with q = M × 2^(exp − 126).
        let shift = (126 - exp) as u32;
        if shift > 24 {
            return sign; // below half the smallest subnormal
        }
        let m = man | 0x0080_0000;
        let q = round(m >> shift, m & ((1 << shift) - 1), 1 << (shift - 1));
        return sign | q as u16; // q = 0x400 is the smallest normal, as encoded
    }
    // A carry out of the mantissa moves into the exponent, up to infinity, as it should.
    let h = round(((e as u32) << 10) | (man >> 13), man & 0x1fff, 0x1000);
    sign | h as u16
}

/// Quantizes one block of 32 values to `ty` the way ggml's reference quantizer
/// (`quantize_row_q4_0_ref`, `quantize_row_q8_0_ref`, which `llama-quantize` uses without an
/// importance matrix and the `gguf` Python package reproduces) does, and decodes it again:
/// what a model quantized to `ty` holds for these values. `None` for a type without a
/// reference quantizer here (every type but Q4_0 and Q8_0) or a block with a non-finite
/// value.
pub fn quantize_round_trip(ty: ElementType, x: &[f32; 32]) -> Option<[f32; 32]> {
    if x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut out = [0f32; 32];
    match ty {
        ElementType::Q4_0 => {
            // The value of largest magnitude (the first, on ties) sets the scale.
            let (mut amax, mut max) = (0f32, 0f32);
            for &v in x {
                if amax < v.abs() {
                    amax = v.abs();
                    max = v;
                }
            }
            let d = max / -8.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let dh = f16_to_f32(f32_to_f16(d));
            for (o, &v) in out.iter_mut().zip(x) {
                // C's (int8_t) conversion truncates toward zero, as `as` does; the value
                // lies in 0.5..16.5.
                let q = ((v * id + 8.5) as i32).clamp(0, 15);
                *o = (q - 8) as f32 * dh;
            }
        }
        ElementType::Q8_0 => {
            let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let dh = f16_to_f32(f32_to_f16(d));
            for (o, &v) in out.iter_mut().zip(x) {
                // roundf (halves away from zero) without a libm call, exactly: the
                // integer part, plus one where the fraction is at least a half. Every
                // step is exact in f32, as in the gguf package's np_roundf.
                let y = v * id;
                let a = y.abs();
                let whole = a as i32;
                let q = whole + (2.0 * (a - whole as f32)) as i32;
                let q = if y < 0.0 { -q } else { q };
                *o = q as f32 * dh;
            }
        }
        _ => return None,
    }
    Some(out)
}

fn f8_to_f32(b: u8, exp_bits: u32, man_bits: u32, ieee_special: bool) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let exp = (u32::from(b) >> man_bits) & ((1 << exp_bits) - 1);
    let man = u32::from(b) & ((1 << man_bits) - 1);
    let bias = (1i32 << (exp_bits - 1)) - 1;
    let max_exp = (1 << exp_bits) - 1;
    if ieee_special && exp == max_exp {
        return if man == 0 { sign * f32::INFINITY } else { f32::NAN };
    }
    if !ieee_special && exp == max_exp && man == (1 << man_bits) - 1 {
        return f32::NAN;
    }
    let frac = man as f32 / (1u32 << man_bits) as f32;
    // Powers of two and small integers: every step below is exact in f32.
    if exp == 0 {
        sign * frac * 2f32.powi(1 - bias)
    } else {
        sign * (1.0 + frac) * 2f32.powi(exp as i32 - bias)
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn half(b: &[u8], at: usize) -> f32 {
    f16_to_f32(le16(b, at))
}

/// Decodes whole blocks of `ty` from `bytes` (whose length is a multiple of the block
/// size) into `out`. The caller guarantees the length; a ragged tail is ignored.
pub fn decode(ty: ElementType, bytes: &[u8], out: &mut Vec<f32>) {
    let (_, block_bytes) = ty.block();
    for b in bytes.chunks_exact(block_bytes) {
        decode_block(ty, b, out);
    }
}

fn decode_block(ty: ElementType, b: &[u8], y: &mut Vec<f32>) {
    match ty {
        ElementType::F64 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            y.push(f64::from_le_bytes(a) as f32);
        }
        ElementType::F32 => y.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ElementType::F16 => y.push(half(b, 0)),
        ElementType::Bf16 => y.push(f32::from_bits(u32::from(le16(b, 0)) << 16)),
        ElementType::F8E4M3 => y.push(f8_to_f32(b[0], 4, 3, false)),
        ElementType::F8E5M2 => y.push(f8_to_f32(b[0], 5, 2, true)),
        ElementType::Int(_) => {
            let mut a = [0u8; 8];
            a[..b.len()].copy_from_slice(b);
            // Sign-extend from the element's width.
            let shift = 64 - 8 * b.len() as u32;
            y.push(((i64::from_le_bytes(a) << shift) >> shift) as f32);
        }
        ElementType::UInt(_) => {
            let mut a = [0u8; 8];
            a[..b.len()].copy_from_slice(b);
            y.push(u64::from_le_bytes(a) as f32);
        }
        ElementType::Q4_0 => {
            let d = half(b, 0);
            let qs = &b[2..18];
            let base = y.len();
            y.resize(base + 32, 0.0);
            for j in 0..16 {
                y[base + j] = ((qs[j] & 0xf) as i32 - 8) as f32 * d;
                y[base + j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
            }
        }
        ElementType::Q4_1 => {
            let d = half(b, 0);
            let m = half(b, 2);
            let qs = &b[4..20];
            let base = y.len();
            y.resize(base + 32, 0.0);
            for j in 0..16 {
                y[base + j] = (qs[j] & 0xf) as f32 * d + m;
                y[base + j + 16] = (qs[j] >> 4) as f32 * d + m;
            }
        }
        ElementType::Q5_0 | ElementType::Q5_1 => {
            let d = half(b, 0);
            let (m, rest) = if ty == ElementType::Q5_1 {
                (half(b, 2), &b[4..])
            } else {
                (0.0, &b[2..])
            };
            let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let qs = &rest[4..20];
            let base = y.len();
            y.resize(base + 32, 0.0);
            for j in 0..16 {
                let h0 = ((qh >> j) << 4) & 0x10;
                let h1 = (qh >> (j + 12)) & 0x10;
                let x0 = (u32::from(qs[j] & 0xf) | h0) as i32;
                let x1 = (u32::from(qs[j] >> 4) | h1) as i32;
                if ty == ElementType::Q5_1 {
                    y[base + j] = x0 as f32 * d + m;
                    y[base + j + 16] = x1 as f32 * d + m;
                } else {
                    y[base + j] = (x0 - 16) as f32 * d;
                    y[base + j + 16] = (x1 - 16) as f32 * d;
                }
            }
        }
        ElementType::Q8_0 => {
            let d = half(b, 0);
            y.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
        }
        ElementType::Q2K => {
            let scales = &b[0..16];
            let mut q = &b[16..80];
            let d = half(b, 80);
            let min = half(b, 82);
            let mut is = 0;
            for _ in 0..2 {
                let mut shift = 0;
                for _ in 0..4 {
                    for half_block in 0..2 {
                        let sc = scales[is];
                        is += 1;
                        let dl = d * f32::from(sc & 0xf);
                        let ml = min * f32::from(sc >> 4);
                        for l in 0..16 {
                            let v = (q[l + 16 * half_block] >> shift) & 3;
                            y.push(dl * f32::from(v) - ml);
                        }
                    }
                    shift += 2;
                }
                q = &q[32..];
            }
        }
        ElementType::Q3K => {
            let hm = &b[0..32];
            let mut q = &b[32..96];
            let sc = &b[96..108];
            let d_all = half(b, 108);
            let scales = q3k_scales(sc);
            let mut is = 0;
            let mut m = 1u8;
            for _ in 0..2 {
                let mut shift = 0;
                for _ in 0..4 {
                    for half_block in 0..2 {
                        let dl = d_all * f32::from(scales[is] - 32);
                        is += 1;
                        for l in 0..16 {
                            let i = l + 16 * half_block;
                            let low = ((q[i] >> shift) & 3) as i8;
                            let high = if hm[i] & m != 0 { 0 } else { 4 };
                            y.push(dl * f32::from(low - high));
                        }
                    }
                    shift += 2;
                    m <<= 1;
                }
                q = &q[32..];
            }
        }
        ElementType::Q4K | ElementType::Q5K => {
            let d = half(b, 0);
            let min = half(b, 2);
            let scales = &b[4..16];
            let (qh, mut ql) = if ty == ElementType::Q5K {
                (Some(&b[16..48]), &b[48..176])
            } else {
                (None, &b[16..144])
            };
            let (mut u1, mut u2) = (1u8, 2u8);
            for is in (0..8).step_by(2) {
                let (sc1, m1) = scale_min_k4(is, scales);
                let (sc2, m2) = scale_min_k4(is + 1, scales);
                let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
                let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
                for l in 0..32 {
                    let h = qh.map_or(0, |h| if h[l] & u1 != 0 { 16 } else { 0 });
                    y.push(d1 * f32::from((ql[l] & 0xf) + h) - m1);
                }
                for l in 0..32 {
                    let h = qh.map_or(0, |h| if h[l] & u2 != 0 { 16 } else { 0 });
                    y.push(d2 * f32::from((ql[l] >> 4) + h) - m2);
                }
                ql = &ql[32..];
                u1 <<= 2;
                u2 <<= 2;
            }
        }
        ElementType::Q6K => {
            let d = half(b, 208);
            let base = y.len();
            y.resize(base + QK_K, 0.0);
            for n in 0..2 {
                let ql = &b[64 * n..64 * n + 64];
                let qh = &b[128 + 32 * n..128 + 32 * n + 32];
                let sc = &b[192 + 8 * n..192 + 8 * n + 8];
                let out = &mut y[base + 128 * n..base + 128 * n + 128];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i8 - 32;
                    let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                    let s = |k: usize| d * f32::from(sc[is + k] as i8);
                    out[l] = s(0) * f32::from(q1);
                    out[l + 32] = s(2) * f32::from(q2);
                    out[l + 64] = s(4) * f32::from(q3);
                    out[l + 96] = s(6) * f32::from(q4);
                }
            }
        }
    }
}

/// The sixteen 6-bit signed-offset scales of a Q3_K block (ggml's kmask unpacking).
fn q3k_scales(sc: &[u8]) -> [i8; 16] {
    let word = |i: usize| u32::from_le_bytes([sc[4 * i], sc[4 * i + 1], sc[4 * i + 2], sc[4 * i + 3]]);
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; 16];
    for (i, w) in aux.iter().enumerate() {
        for (k, byte) in w.to_le_bytes().iter().enumerate() {
            out[4 * i + k] = *byte as i8;
        }
    }
    out
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and minimum of sub-block `j` (0..8).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_edges() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn f16_encoding_round_trips_and_rounds_to_even() {
        for h in 0..=u16::MAX {
            let v = f16_to_f32(h);
            if v.is_nan() {
                assert!(f16_to_f32(f32_to_f16(v)).is_nan());
            } else {
                assert_eq!(f32_to_f16(v), h, "{h:#06x}");
            }
        }
        // Halfway between 1.0 and the next f16 rounds to the even one (1.0); just above, up.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0x0000);
        assert_eq!(f32_to_f16(2f32.powi(-25) * 1.5), 0x0001);
    }

    #[test]
    fn quantize_round_trip_matches_ggml_reference_blocks() {
        // The decoded block is ((q − 8) × d) for Q4_0 and (q × d) for Q8_0 with d the f16
        // scale; encode by hand what the reference quantizer stores and compare.
        let x: [f32; 32] = std::array::from_fn(|i| ((i as f32) - 13.3) * 0.01);
        let q4 = quantize_round_trip(ElementType::Q4_0, &x).unwrap();
        // The value of largest magnitude is x[31] (positive), so d is negative and x[31]
        // maps to q = 0, (0 − 8) × d.
        let d = x[31] / -8.0;
        let dh = f16_to_f32(f32_to_f16(d));
        assert_eq!(q4[31], -8.0 * dh);
        let mut bytes = vec![0u8; 18];
        bytes[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        let q = |v: f32| ((v * (1.0 / d) + 8.5).trunc() as u8).min(15);
        for j in 0..16 {
            bytes[2 + j] = q(x[j]) | (q(x[j + 16]) << 4);
        }
        let mut decoded = Vec::new();
        decode(ElementType::Q4_0, &bytes, &mut decoded);
        assert_eq!(decoded, q4.to_vec());
        let q8 = quantize_round_trip(ElementType::Q8_0, &x).unwrap();
        let d8 = f16_to_f32(f32_to_f16(x[31] / 127.0));
        assert_eq!(q8[31], 127.0 * d8);
        assert!(q8.iter().zip(&x).all(|(q, v)| (q - v).abs() <= d8));
        // No reference quantizer, or a non-finite value: no answer.
        assert!(quantize_round_trip(ElementType::Q4K, &x).is_none());
        let mut bad = x;
        bad[3] = f32::NAN;
        assert!(quantize_round_trip(ElementType::Q4_0, &bad).is_none());
    }

    #[test]
    fn f8_edges() {
        // E4M3: 0x38 = 1.0, 0x7e = 448 (the largest), 0x7f = NaN, 0x01 = 2^-9.
        assert_eq!(f8_to_f32(0x38, 4, 3, false), 1.0);
        assert_eq!(f8_to_f32(0x7e, 4, 3, false), 448.0);
        assert!(f8_to_f32(0x7f, 4, 3, false).is_nan());
        assert_eq!(f8_to_f32(0x01, 4, 3, false), 2f32.powi(-9));
        // E5M2: 0x3c = 1.0, 0x7b = 57344, 0x7c = inf.
        assert_eq!(f8_to_f32(0x3c, 5, 2, true), 1.0);
        assert_eq!(f8_to_f32(0x7b, 5, 2, true), 57344.0);
        assert!(f8_to_f32(0x7c, 5, 2, true).is_infinite());
        assert_eq!(f8_to_f32(0xc0, 5, 2, true), -2.0);
    }

    #[test]
    fn integers_sign_extend() {
        let mut out = Vec::new();
        decode(ElementType::Int(2), &[0xff, 0xff, 0x02, 0x00], &mut out);
        decode(ElementType::UInt(1), &[0xff], &mut out);
        assert_eq!(out, vec![-1.0, 2.0, 255.0]);
    }
}
