//! The float-mode helpers (`kllm_gen::fp`) against methods that share none of their code:
//! the `half` crate and the FPU's own f32/f64 arithmetic, and a nearest-value search over a
//! table of every finite value of the format (decoded by a few lines written here).
//!
//! Why not `half::f16::from_f64` for the rounding of differences: its portable fallback (used
//! on CPUs without F16C) drops the low 32 bits of the f64 significand before rounding, so
//! 1025 − (0.5 − 2^−12) = 1024.500244… becomes a "tie" and goes to 1024 instead of 1025; with
//! F16C it converts through f32 instead. A reference whose answer depends on the CPU is no
//! reference, so differences are rounded by a nearest-value search here. Products are safe with
//! `f16::from_f32`: an fp16 product is exact in f32, and f32 → f16 rounds once on either path.
//!
//! Randomized tests take their seed from `FP_SEED` (default 1) and print it.
//! `cargo test --release --test fp -- --ignored` runs the longer exhaustive sweeps
//! (`make test-fp-long`).

use half::{bf16, f16};
use kllm_gen::fp::FloatFormat;
use kllm_gen::rng::Rng;
use num_bigint::BigInt;

fn seed() -> u64 {
    let s = std::env::var("FP_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    println!("FP_SEED={s}");
    s
}

/// Every finite non-negative value of a format of at most 16 bits, indexed by its pattern
/// (for positive patterns, pattern order is value order), plus the sign bit.
struct Table {
    vals: Vec<f64>,
    sign: u64,
}

impl Table {
    /// Decodes with the textbook formula, independently of `fp::FloatFormat::decode`.
    fn textbook(e: u32, m: u32) -> Table {
        let bias = (1i32 << (e - 1)) - 1;
        let mut vals = vec![];
        for p in 0..((1u64 << (e + m)) - (1 << m)) {
            let (ef, frac) = ((p >> m) as i32, (p & ((1 << m) - 1)) as f64);
            let scale = (1u64 << m) as f64;
            let v = if ef == 0 {
                frac / scale * 2f64.powi(1 - bias)
            } else {
                (1.0 + frac / scale) * 2f64.powi(ef - bias)
            };
            vals.push(v);
        }
        Table { vals, sign: 1 << (e + m) }
    }
    fn from_half(decode: impl Fn(u16) -> f64, max_finite: u16) -> Table {
        Table { vals: (0..=max_finite).map(decode).collect(), sign: 0x8000 }
    }
    fn value(&self, bits: u64) -> f64 {
        let v = self.vals[(bits & (self.sign - 1)) as usize];
        if bits & self.sign != 0 { -v } else { v }
    }
    /// Round-to-nearest-even of an f64 that holds the exact value; None when it would overflow.
    /// Neighbours are found by search and compared with their midpoint (exact in f64).
    fn nearest(&self, v: f64) -> Option<u64> {
        let sign = if v.is_sign_negative() { self.sign } else { 0 };
        let a = v.abs();
        let n = self.vals.len();
        let max = self.vals[n - 1];
        if a > max {
            let limit = max + (max - self.vals[n - 2]) / 2.0;
            return if a >= limit { None } else { Some(sign | (n as u64 - 1)) };
        }
        let i = self.vals.partition_point(|&x| x <= a) - 1;
        if self.vals[i] == a {
            return Some(sign | i as u64);
        }
        let mid = (self.vals[i] + self.vals[i + 1]) / 2.0;
        let pick = if a < mid {
            i
        } else if a > mid {
            i + 1
        } else if i % 2 == 0 {
            i
        } else {
            i + 1
        };
        Some(sign | pick as u64)
    }
}

fn fp16_table() -> Table {
    Table::from_half(|b| f16::from_bits(b).to_f64(), 0x7bff)
}

fn finite_fp16() -> impl Iterator<Item = u64> {
    (0u64..0x10000).filter(|&b| f16::from_bits(b as u16).is_finite())
}

/// Checks `got` (ours) against `want` (independent; None = overflow) and counts mismatches.
fn check(what: &str, a: u64, b: u64, got: anyhow::Result<u64>, want: Option<u64>, bad: &mut u64) {
    let ok = match (&got, want) {
        (Ok(g), Some(w)) => *g == w,
        (Err(_), None) => true,
        _ => false,
    };
    if !ok {
        if *bad < 10 {
            eprintln!("MISMATCH {what}({a:#x}, {b:#x}): ours {got:?}, reference {want:#x?}");
        }
        *bad += 1;
    }
}

#[test]
fn fp16_every_pattern_decodes_and_rounds_back() {
    let f = FloatFormat::FP16;
    for b in 0u64..0x10000 {
        let h = f16::from_bits(b as u16);
        if !h.is_finite() {
            assert!(f.decode(b).is_err() && f.to_fixed(b).is_err(), "{b:#x} accepted");
            continue;
        }
        let v = f.to_f64(b).unwrap();
        assert_eq!(v.to_bits(), h.to_f64().to_bits(), "{b:#x}");
        let x = f.to_fixed(b).unwrap();
        // fixed · 2^-24 is the value (exact in f64: 41 bits).
        let xf: f64 = x.to_string().parse::<f64>().unwrap() * 2f64.powi(-24);
        assert_eq!(xf, v, "{b:#x}");
        assert!(x.bits() < f.fixed_width() as u64, "{b:#x} needs more than fixed_width");
        // RNE_F of an F value is the value itself (−0 comes back as +0: fixed point has one zero).
        let back = f.rne_fixed(&x, f.unit_exp() as i64).unwrap();
        assert_eq!(back, if b == 0x8000 { 0 } else { b }, "{b:#x}");
        // RNE_32 of an fp16 value is exact: the f32 conversion.
        let y = f.rne32(&x).unwrap();
        assert_eq!(y, if b == 0x8000 { 0 } else { h.to_f32().to_bits() }, "{b:#x}");
    }
}

#[test]
fn fp16_order_key_is_the_real_value_order() {
    let f = FloatFormat::FP16;
    let mut pats: Vec<u64> = finite_fp16().collect();
    let val = |b: u64| f16::from_bits(b as u16).to_f64();
    pats.sort_by(|&a, &b| val(a).partial_cmp(&val(b)).unwrap());
    for w in pats.windows(2) {
        let (ka, kb) = (f.order_key(w[0]).unwrap(), f.order_key(w[1]).unwrap());
        if val(w[0]) == val(w[1]) {
            assert_eq!(ka, kb, "{:#x} {:#x}", w[0], w[1]); // only −0 and +0
        } else {
            assert!(ka < kb, "{:#x} {:#x}", w[0], w[1]);
        }
    }
    assert_eq!(f.order_key(0x8000).unwrap(), f.order_key(0).unwrap());
    assert!(f.order_key(0xfc00).is_err());
}

/// fp16 product by `half`: the product of two fp16 values is exact in f32, then rounded once.
fn half_mul(a: u64, b: u64) -> Option<u64> {
    let p = f16::from_f32(f16::from_bits(a as u16).to_f32() * f16::from_bits(b as u16).to_f32());
    p.is_finite().then_some(p.to_bits() as u64)
}

fn binade(lo: u64) -> std::ops::Range<u64> {
    lo..lo + 0x400
}

#[test]
fn fp16_mul_all_pairs_of_binades_match_half() {
    let f = FloatFormat::FP16;
    let mut bad = 0;
    // [1,2)², [2^-14, 2^-13) × [0.5, 1) (results fall into the subnormals), [2^15, 2^16) × [1, 2)
    // with one negative side (overflow, largest finite values).
    for (a0, b0) in [(0x3c00, 0x3c00), (0x0400, 0x3800), (0x7800, 0xbc00)] {
        for a in binade(a0) {
            for b in binade(b0) {
                check("mul", a, b, f.mul_rne(a, b), half_mul(a, b), &mut bad);
            }
        }
    }
    assert_eq!(bad, 0);
}

#[test]
fn fp16_subnormal_times_normal_edges() {
    let f = FloatFormat::FP16;
    let mut bad = 0;
    // Every positive and negative subnormal (and ±0) against the ends and middle of every
    // normal binade: products that stay subnormal, underflow to ±0, or climb back to normal.
    let mut normals = vec![];
    for e in 1u64..31 {
        for frac in [0, 1, 0x1ff, 0x200, 0x201, 0x3fe, 0x3ff] {
            normals.push(e << 10 | frac);
            normals.push(0x8000 | e << 10 | frac);
        }
    }
    for s in (0u64..0x400).chain(0x8000..0x8400) {
        for &n in &normals {
            check("mul", s, n, f.mul_rne(s, n), half_mul(s, n), &mut bad);
            check("mul", n, s, f.mul_rne(n, s), half_mul(n, s), &mut bad);
        }
    }
    assert_eq!(bad, 0);
}

#[test]
fn fp16_sub_all_pairs_of_binades_match_nearest() {
    let f = FloatFormat::FP16;
    let t = fp16_table();
    let mut bad = 0;
    // [1,2) − [1,2) is exact (Sterbenz); [1,2) − (−[1,2)) needs one more bit: a tie in half of
    // the pairs; [1,2) − [2^-8, 2^-7) rounds away 8 bits; subnormal − subnormal is exact.
    for (a0, b0) in [(0x3c00, 0x3c00), (0x3c00, 0xbc00), (0x3c00, 0x1c00), (0x0000, 0x8000)] {
        for a in binade(a0) {
            for b in binade(b0) {
                let want = t.nearest(t.value(a) - t.value(b));
                check("sub", a, b, f.sub_rne(a, b), want, &mut bad);
            }
        }
    }
    assert_eq!(bad, 0);
}

#[test]
fn explicit_ties_round_to_even() {
    let f = FloatFormat::FP16;
    let fx = |v: i64, lsb: i64| f.rne_fixed(&BigInt::from(v), lsb).unwrap();
    // 1 + 2^-11 lies halfway between 1 (even) and 1 + 2^-10: down. 1 + 3·2^-11: up to 1 + 2^-9.
    assert_eq!(fx(2049, -11), 0x3c00);
    assert_eq!(fx(2051, -11), 0x3c02);
    assert_eq!(fx(-2051, -11), 0xbc02);
    // Subnormal ties: 2^-25 → +0, 3·2^-25 → 2^-23, and 2^-14 − 2^-25 → 2^-14 (carry into normal).
    assert_eq!(fx(1, -25), 0x0000);
    assert_eq!(fx(-1, -25), 0x8000);
    assert_eq!(fx(3, -25), 0x0002);
    assert_eq!(fx(2047, -25), 0x0400);
    // Largest finite: 65504 + 16 ties to 65536 = infinity (refused); one unit less stays.
    assert!(f.rne_fixed(&BigInt::from(65520), 0).is_err());
    assert_eq!(fx(65520 * 2 - 1, -1), 0x7bff);
    // The same ties built from operations: 1 − (−2^-11), (1 + 2^-10) − (−2^-11).
    assert_eq!(f.sub_rne(0x3c00, 0x9000).unwrap(), 0x3c00);
    assert_eq!(f.sub_rne(0x3c01, 0x9000).unwrap(), 0x3c02);
    // (1 + 2^-10)·(1 + 2^-1) = 1.5 + 1.5·2^-10: halfway between 0x3e01 and 0x3e02 → 0x3e02.
    assert_eq!(f.mul_rne(0x3c01, 0x3e00).unwrap(), 0x3e02);
    // (1 + 3·2^-10)·1.5 = 1.5 + 4.5·2^-10: halfway between 0x3e04 (even) and 0x3e05 → 0x3e04.
    assert_eq!(f.mul_rne(0x3c03, 0x3e00).unwrap(), 0x3e04);
    // binary32: 2^24 + 1 → 2^24, 2^24 + 3 → 2^24 + 4; from fp16 units (2^-24 each).
    let y = |v: i64| f.rne32(&(BigInt::from(v) << 24u32)).unwrap();
    assert_eq!(y(1 << 24 | 1), 16777216f32.to_bits());
    assert_eq!(y(1 << 24 | 3), 16777220f32.to_bits());
    // 2048 + 2^-13 is half an f32 ulp above 2048: even, 2048. S = 0 is +0.
    assert_eq!(f.dot(&[0x6800, 0x0800], &[0, 1], &[]).unwrap(), 2048f32.to_bits());
    // 2048 + 3·2^-13 = (2048 + 2^-12) + 2^-13 is halfway to 2048 + 2^-11, the even one.
    let up = f32::from_bits(2048f32.to_bits() + 2).to_bits();
    assert_eq!(f.dot(&[0x6800, 0x0800, 0x0c00], &[0, 1, 2], &[]).unwrap(), up);
    assert_eq!(f.dot(&[0x3c00, 0xbc00], &[0, 1], &[0x8000]).unwrap(), 0);
}

#[test]
fn signed_zeros_follow_ieee() {
    let f = FloatFormat::FP16;
    let t = fp16_table();
    let zeros_and_ones = [0x0000, 0x8000, 0x3c00, 0xbc00, 0x0001, 0x8001];
    let mut bad = 0;
    for a in zeros_and_ones {
        for b in zeros_and_ones {
            check("mul", a, b, f.mul_rne(a, b), half_mul(a, b), &mut bad);
            check("sub", a, b, f.sub_rne(a, b), t.nearest(t.value(a) - t.value(b)), &mut bad);
        }
    }
    // A product that underflows to zero keeps its sign: 2^-24 · −0.25 = −0.
    assert_eq!(f.mul_rne(0x0001, 0xb400).unwrap(), 0x8000);
    assert_eq!(bad, 0);
}

#[test]
fn fp16_random_mul_sub_comp_match_references() {
    let f = FloatFormat::FP16;
    let t = fp16_table();
    let fin: Vec<u64> = finite_fp16().collect();
    let mut rng = Rng::new(seed());
    let mut pick = || fin[rng.below(fin.len() as u64) as usize];
    let mut bad = 0;
    for _ in 0..1_000_000 {
        let (a, b, c) = (pick(), pick(), pick());
        check("mul", a, b, f.mul_rne(a, b), half_mul(a, b), &mut bad);
        let d = t.nearest(t.value(a) - t.value(b));
        check("sub", a, b, f.sub_rne(a, b), d, &mut bad);
        // t = RNE(RNE(x − ca) · cw), the reference composed of the two independent steps.
        let want = d.and_then(|d| half_mul(d, c));
        check("comp", a, b, f.comp_term(a, b, c), want, &mut bad);
    }
    assert_eq!(bad, 0);
}

#[test]
fn random_exact_sums_round_once_to_binary32() {
    random_sums(200_000, seed());
}

/// `count` random dot products of up to 64 table terms and 3 compensation terms, fp16: |S| <
/// 2^22 in units of 2^-24, 46 bits, so the f64 sum is exact and `as f32` rounds it once (IEEE,
/// hardware). Term magnitudes are drawn from every binade.
fn random_sums(count: usize, seed: u64) {
    let f = FloatFormat::FP16;
    let fin: Vec<u64> = finite_fp16().collect();
    let mut rng = Rng::new(seed ^ 0x5u64);
    let mut bad = 0;
    for i in 0..count {
        let n = 1 + rng.below(64) as usize;
        let lut: Vec<u64> = (0..16).map(|_| fin[rng.below(fin.len() as u64) as usize]).collect();
        let p: Vec<usize> = (0..n).map(|_| rng.below(16) as usize).collect();
        let o: Vec<u64> =
            (0..rng.below(4)).map(|_| fin[rng.below(fin.len() as u64) as usize]).collect();
        let exact: f64 = p
            .iter()
            .map(|&j| lut[j])
            .chain(o.iter().copied())
            .map(|b| f16::from_bits(b as u16).to_f64())
            .sum();
        let want = if exact == 0.0 { 0 } else { (exact as f32).to_bits() };
        let got = f.dot(&lut, &p, &o).unwrap();
        if got != want {
            if bad < 10 {
                eprintln!("MISMATCH dot #{i}: ours {got:#x}, f64 sum {exact} → {want:#x}");
            }
            bad += 1;
        }
    }
    assert_eq!(bad, 0);
}

#[test]
fn binary32_mul_sub_match_the_fpu() {
    // The rounding core at M = 23, against the FPU's correctly rounded f32 operations.
    let f = FloatFormat::BINARY32;
    let mut rng = Rng::new(seed() ^ 0x32u64);
    let mut bad = 0;
    let pick = |rng: &mut Rng| loop {
        let b = rng.next_u64() as u32;
        if f32::from_bits(b).is_finite() {
            return b;
        }
    };
    for _ in 0..300_000 {
        let (a, b) = (pick(&mut rng), pick(&mut rng));
        // Bias half the pairs to nearby exponents so differences round instead of absorbing.
        let b = if rng.chance(1, 2) { (b & 0x807f_ffff) | (a & 0x7f80_0000) } else { b };
        let (x, y) = (f32::from_bits(a), f32::from_bits(b));
        let fin = |v: f32| v.is_finite().then_some(v.to_bits() as u64);
        check("mul32", a as u64, b as u64, f.mul_rne(a as u64, b as u64), fin(x * y), &mut bad);
        check("sub32", a as u64, b as u64, f.sub_rne(a as u64, b as u64), fin(x - y), &mut bad);
    }
    assert_eq!(bad, 0);
}

#[test]
fn fp8_all_pairs_match_the_textbook_reference() {
    for (f, t) in [
        (FloatFormat::FP8_E4M3, Table::textbook(4, 3)),
        (FloatFormat::FP8_E5M2, Table::textbook(5, 2)),
    ] {
        let mut bad = 0;
        for a in 0u64..256 {
            let finite_a = (a & 0x7f) < t.vals.len() as u64;
            assert_eq!(f.decode(a).is_ok(), finite_a, "{} {a:#x}", f.name());
            if !finite_a {
                continue;
            }
            assert_eq!(f.to_f64(a).unwrap(), t.value(a), "{} {a:#x}", f.name());
            for b in (0u64..256).filter(|b| (b & 0x7f) < t.vals.len() as u64) {
                // fp8 products and differences are exact in f64.
                check("mul", a, b, f.mul_rne(a, b), t.nearest(t.value(a) * t.value(b)), &mut bad);
                check("sub", a, b, f.sub_rne(a, b), t.nearest(t.value(a) - t.value(b)), &mut bad);
            }
        }
        assert_eq!(bad, 0, "{}", f.name());
    }
}

#[test]
fn bf16_random_mul_sub_match_nearest() {
    let f = FloatFormat::BF16;
    let t = Table::from_half(|b| bf16::from_bits(b).to_f64(), 0x7f7f);
    let mut rng = Rng::new(seed() ^ 0xbf16u64);
    let mut bad = 0;
    let pick = |rng: &mut Rng| loop {
        let b = rng.below(0x10000);
        if bf16::from_bits(b as u16).is_finite() {
            return b;
        }
    };
    for _ in 0..300_000 {
        let (a, b) = (pick(&mut rng), pick(&mut rng));
        // bf16 products (16-bit significands, exponents ≥ 2^-266) are exact in f64.
        check("mul", a, b, f.mul_rne(a, b), t.nearest(t.value(a) * t.value(b)), &mut bad);
        // Differences are exact in f64 when the exponents are within 40 of each other.
        let b = (b & 0x807f) | ((a & 0x7f80) ^ (rng.below(16) << 7));
        if bf16::from_bits(b as u16).is_finite() {
            let want = t.nearest(t.value(a) - t.value(b));
            check("sub", a, b, f.sub_rne(a, b), want, &mut bad);
        }
    }
    assert_eq!(bad, 0);
}

#[test]
fn encoder_midpoints_match_f64_comparisons() {
    let f = FloatFormat::FP16;
    let fin: Vec<u64> = finite_fp16().collect();
    let val = |b: u64| f16::from_bits(b as u16).to_f64();
    let mut rng = Rng::new(seed() ^ 0xe5u64);
    for _ in 0..2_000 {
        // A codebook of 2..16 distinct values, sorted; many x near the midpoints.
        let mut ca: Vec<u64> =
            (0..2 + rng.below(15)).map(|_| fin[rng.below(fin.len() as u64) as usize]).collect();
        ca.sort_by(|&a, &b| val(a).partial_cmp(&val(b)).unwrap());
        ca.dedup_by(|a, b| val(*a) == val(*b));
        let mids = f.midpoints(&ca).unwrap();
        for _ in 0..50 {
            let x = if rng.chance(1, 2) {
                fin[rng.below(fin.len() as u64) as usize]
            } else {
                // A pattern one step around a codebook value's neighbourhood: exact ties are
                // frequent when a midpoint is itself an fp16 value.
                let c = ca[rng.below(ca.len() as u64) as usize];
                let near = (c as i64 + rng.range(-2, 2)).clamp(0, 0xffff) as u64;
                if f16::from_bits(near as u16).is_finite() { near } else { c }
            };
            // (a + b) / 2 is exact in f64 for fp16 a, b.
            let want = ca.windows(2).filter(|w| val(x) > (val(w[0]) + val(w[1])) / 2.0).count();
            assert_eq!(f.encode(x, &mids).unwrap(), want, "x={x:#x} ca={ca:x?}");
        }
    }
}

/// Longer run: 3 000 000 random dot products (fp16, exact sum, `RNE_32`).
#[test]
#[ignore]
fn fp16_long_random_sums() {
    random_sums(3_000_000, seed());
}

/// Longer exhaustive run: fp16 multiplication and subtraction of two whole binades ([1, 2) and
/// the subnormals with ±0) against every finite value, ≈ 260 M operations (about 2 minutes).
#[test]
#[ignore]
fn fp16_long_two_binades_against_every_value() {
    let f = FloatFormat::FP16;
    let t = fp16_table();
    let mut bad = 0;
    let fin: Vec<u64> = finite_fp16().collect();
    for a in binade(0x3c00).chain(binade(0x0000)) {
        for &b in &fin {
            check("mul", a, b, f.mul_rne(a, b), half_mul(a, b), &mut bad);
            check("sub", a, b, f.sub_rne(a, b), t.nearest(t.value(a) - t.value(b)), &mut bad);
        }
    }
    assert_eq!(bad, 0);
}

// ---------------------------------------------------------------------------------------------
// The RTL units' Verilog and bench vectors, for testbenches/fp/run.sh (`make sim-fp`).

fn twos_hex(v: &BigInt, width: u32) -> String {
    let m = if v.sign() == num_bigint::Sign::Minus {
        v + (BigInt::from(1u8) << width)
    } else {
        v.clone()
    };
    assert!(m.sign() != num_bigint::Sign::Minus && m.bits() <= width as u64, "{v} in {width} bits");
    m.to_str_radix(16)
}

struct Unit {
    module: kllm_gen::verilog::Module,
    params: String,
    /// Input port, output port, and a second input port (`""` if none).
    ports: (&'static str, &'static str, &'static str),
    widths: (u32, u32),
    vectors: Vec<(String, String)>,
}

fn to_fixed_unit(f: FloatFormat) -> Unit {
    let module = kllm_gen::fp_rtl::fp_to_fixed(f);
    let mut vectors = vec![];
    for b in 0..(1u64 << f.width()) {
        if let Ok(x) = f.to_fixed(b) {
            vectors.push((format!("{b:x}"), twos_hex(&x, f.fixed_width())));
        }
    }
    let params = format!("{}: E={}, M={}", f.name(), f.e(), f.m());
    Unit { module, params, ports: ("f", "q", ""), widths: (f.width(), f.fixed_width()), vectors }
}

/// Rounder vectors: edge values (powers of two and their neighbours, constructed ties with
/// sticky bits either side, the subnormal and overflow boundaries) and `random` values whose
/// bit length is uniform over the width, so every exponent is exercised; every value when the
/// width is at most 16 bits.
fn to_f32_unit(w: u32, frac: u32, params: String, random: usize, rng: &mut Rng) -> Unit {
    let module = kllm_gen::fp_rtl::fixed_to_f32(w, frac).unwrap();
    let one = || BigInt::from(1u8);
    let (lo, hi): (BigInt, BigInt) = (-(one() << (w - 1)), (one() << (w - 1)) - 1i32);
    let mut vals: Vec<BigInt> =
        vec![BigInt::from(0), one(), -one(), lo.clone(), hi.clone(), &lo + 1, &hi - 1];
    for p in 0..w - 1 {
        for d in [-1i64, 0, 1] {
            vals.push((one() << p) + d);
            vals.push(-((one() << p) + d));
        }
    }
    for p in 24..w - 1 {
        // Leading one at bit p, 24 significant bits, then exactly half an ulp (± a sticky one).
        for _ in 0..4 {
            let sig = (1u64 << 23) | rng.below(1 << 23);
            let tie = (BigInt::from(sig) << (p - 23)) + (one() << (p - 24));
            for d in [-1i64, 0, 1] {
                vals.push(&tie + d);
                vals.push(-(&tie + d));
            }
        }
    }
    for v in 0..(1i64 << 10).min(1 << (w - 2)) {
        vals.push(BigInt::from(v)); // every small value: subnormal results when F ≥ 126
        vals.push(BigInt::from(-v));
    }
    if w > frac + 128 {
        // binary32's largest finite value, and halfway to the next binade (→ infinity).
        let max = BigInt::from((1u64 << 24) - 1) << (104 + frac);
        let half = one() << (103 + frac);
        for v in [&max - 1, max.clone(), &max + &half - 1, &max + &half, &max + &half + 1] {
            vals.push(v.clone());
            vals.push(-v);
        }
    }
    for _ in 0..random {
        let len = rng.below(w as u64) as u32; // magnitude bits, 0..w-1
        let words: Vec<u32> = (0..len.div_ceil(32)).map(|_| rng.next_u64() as u32).collect();
        let mut v = BigInt::from(
            num_bigint::BigUint::from_slice(&words) % (num_bigint::BigUint::from(1u8) << len),
        );
        if len > 0 {
            v |= one() << (len - 1);
        }
        vals.push(if rng.chance(1, 2) { -v } else { v });
    }
    if w <= 16 {
        vals = (-(1i64 << (w - 1))..1 << (w - 1)).map(BigInt::from).collect();
    }
    let vectors = vals
        .iter()
        .filter(|v| **v >= lo && **v <= hi)
        .map(|v| {
            let y = match FloatFormat::BINARY32.rne_fixed(v, -(frac as i64)) {
                Ok(y) => y,
                // Beyond binary32: IEEE rounds to infinity (the float-mode reference refuses).
                Err(_) => {
                    if v.sign() == num_bigint::Sign::Minus {
                        0xff80_0000
                    } else {
                        0x7f80_0000
                    }
                }
            };
            (twos_hex(v, w), format!("{y:x}"))
        })
        .collect();
    Unit { module, params, ports: ("s", "y", ""), widths: (w, 32), vectors }
}

/// The rounder an exact sum of `k_max` table entries and `comp` compensation terms of `f` needs.
fn sum_rounder(f: FloatFormat, k_max: u64, comp: u64, random: usize, rng: &mut Rng) -> Unit {
    let w = f.acc_width(k_max, comp);
    let frac = (-f.unit_exp()) as u32;
    let params = format!(
        "W={w}, F={frac}: {} sums of k_max={k_max} entries + {comp} compensation terms",
        f.name()
    );
    to_f32_unit(w, frac, params, random, rng)
}

/// Multiplier vectors, input `{a, b}`: every finite pair for formats up to 8 bits; otherwise
/// all pairs of [1, 2)², every subnormal against the edges of every normal binade, the largest
/// finite values, and `random` random pairs.
fn mul_unit(f: FloatFormat, random: usize, rng: &mut Rng) -> Unit {
    let w = f.width();
    let finite = |b: u64| f.decode(b).is_ok();
    let all: Vec<u64> = (0..1u64 << w).filter(|&b| finite(b)).collect();
    let mut pairs = vec![];
    if w <= 8 {
        for &a in &all {
            pairs.extend(all.iter().map(|&b| (a, b)));
        }
    } else {
        let one_pat = (f.bias() as u64) << f.m();
        let binade: Vec<u64> = (one_pat..one_pat + (1 << f.m())).collect();
        for &a in &binade {
            pairs.extend(binade.iter().map(|&b| (a, b)));
        }
        let sign = 1u64 << (w - 1);
        let fmask = (1u64 << f.m()) - 1;
        for s in (0..=fmask).chain(sign..=sign | fmask) {
            for ef in 1..(1u64 << f.e()) - 1 {
                for fr in [0, 1, fmask / 2, fmask / 2 + 1, fmask] {
                    pairs.push((s, ef << f.m() | fr));
                    pairs.push((sign | ef << f.m() | fr, s));
                }
            }
        }
        let max = f.max_finite();
        for b in [max, max - 1, one_pat, one_pat + 1, one_pat | fmask, 0, sign] {
            pairs.push((max, b));
            pairs.push((sign | max, b));
        }
        for _ in 0..random {
            pairs.push((
                all[rng.below(all.len() as u64) as usize],
                all[rng.below(all.len() as u64) as usize],
            ));
        }
    }
    let vectors = pairs
        .iter()
        .map(|&(a, b)| {
            let p = match f.mul_rne(a, b) {
                Ok(p) => p,
                // Beyond the largest finite value: IEEE rounds to infinity (the reference refuses).
                Err(_) => ((a ^ b) & (1 << (w - 1))) | ((1u64 << f.e()) - 1) << f.m(),
            };
            (format!("{:x}", a << w | b), format!("{p:x}"))
        })
        .collect();
    let module = kllm_gen::fp_rtl::fp_mul(f);
    let params = format!("{}: E={}, M={}", f.name(), f.e(), f.m());
    Unit { module, params, ports: ("a", "p", "b"), widths: (2 * w, w), vectors }
}

/// The F subtractor against `sub_rne`: every pair for 8-bit formats; otherwise all pairs of
/// [1, 2) against [1, 2) (cancellation, exact) and against −[2^−6, 2^−5) (an addition that
/// rounds, ties included), every subnormal against the edges of every normal binade (both
/// ways), the largest finite values against small and large values (overflow to infinity
/// included), and `random` random pairs.
fn sub_unit(f: FloatFormat, random: usize, rng: &mut Rng) -> Unit {
    let w = f.width();
    let all: Vec<u64> = (0..1u64 << w).filter(|&b| f.decode(b).is_ok()).collect();
    let mut pairs = vec![];
    if w <= 8 {
        for &a in &all {
            pairs.extend(all.iter().map(|&b| (a, b)));
        }
    } else {
        let sign = 1u64 << (w - 1);
        let one_pat = (f.bias() as u64) << f.m();
        let low_pat = ((f.bias() - 6) as u64) << f.m();
        let binade: Vec<u64> = (one_pat..one_pat + (1 << f.m())).collect();
        for &a in &binade {
            pairs.extend(binade.iter().map(|&b| (a, b)));
            pairs.extend((low_pat..low_pat + (1 << f.m())).map(|b| (a, sign | b)));
        }
        let fmask = (1u64 << f.m()) - 1;
        for s in (0..=fmask).chain(sign..=sign | fmask) {
            for ef in 1..(1u64 << f.e()) - 1 {
                for fr in [0, 1, fmask / 2, fmask / 2 + 1, fmask] {
                    pairs.push((s, ef << f.m() | fr));
                    pairs.push((sign | ef << f.m() | fr, s));
                }
            }
        }
        let max = f.max_finite();
        for b in [max, max - 1, one_pat, one_pat + 1, one_pat | fmask, 0, sign, 1, sign | 1] {
            for a in [max, sign | max] {
                pairs.push((a, b));
                pairs.push((b, a));
                pairs.push((a, sign ^ b));
            }
        }
        // Exact zeros and their signs: (−0) − (+0) = −0, every other zero difference +0.
        for x in [0, 1, one_pat, max] {
            for (p, q) in [(x, x), (sign | x, sign | x), (x, sign | x), (sign | x, x)] {
                pairs.push((p, q));
            }
        }
        for _ in 0..random {
            pairs.push((all[rng.below(all.len() as u64) as usize], all[rng.below(all.len() as u64) as usize]));
        }
    }
    let vectors = pairs
        .iter()
        .map(|&(a, b)| {
            let d = match f.sub_rne(a, b) {
                Ok(d) => d,
                // Beyond the largest finite value: IEEE rounds to infinity (the reference refuses).
                Err(_) => {
                    let neg = f.to_f64(a).unwrap() < f.to_f64(b).unwrap();
                    (neg as u64) << (w - 1) | ((1u64 << f.e()) - 1) << f.m()
                }
            };
            (format!("{:x}", a << w | b), format!("{d:x}"))
        })
        .collect();
    let module = kllm_gen::fp_rtl::fp_sub(f);
    let params = format!("{}: E={}, M={}", f.name(), f.e(), f.m());
    Unit { module, params, ports: ("a", "d", "b"), widths: (2 * w, w), vectors }
}

/// Writes `<module>.v`, `<module>.vec` and `units.txt` into `KLLM_FP_OUT` (default build/fp).
#[test]
#[ignore]
fn write_fp_bench_files() {
    let out = std::path::PathBuf::from(std::env::var("KLLM_FP_OUT").unwrap_or("build/fp".into()));
    std::fs::create_dir_all(&out).unwrap();
    let mut rng = Rng::new(seed());
    let units = vec![
        to_fixed_unit(FloatFormat::FP16),
        to_fixed_unit(FloatFormat::FP8_E4M3),
        to_fixed_unit(FloatFormat::FP8_E5M2),
        to_fixed_unit(FloatFormat::BF16),
        sum_rounder(FloatFormat::FP16, 4096, 64, 200_000, &mut rng),
        sum_rounder(FloatFormat::FP8_E4M3, 64, 0, 50_000, &mut rng),
        sum_rounder(FloatFormat::BF16, 64, 2, 50_000, &mut rng),
        mul_unit(FloatFormat::FP16, 300_000, &mut rng),
        mul_unit(FloatFormat::FP8_E4M3, 0, &mut rng),
        mul_unit(FloatFormat::FP8_E5M2, 0, &mut rng),
        mul_unit(FloatFormat::BF16, 300_000, &mut rng),
        // Corners of the supported parameter ranges: the smallest format, an odd one, rounders
        // that are tiny, all-subnormal, or cross the subnormal boundary while rounding.
        to_fixed_unit(FloatFormat::new(2, 1).unwrap()),
        mul_unit(FloatFormat::new(2, 1).unwrap(), 0, &mut rng),
        mul_unit(FloatFormat::new(3, 4).unwrap(), 0, &mut rng),
        to_f32_unit(2, 0, "W=2, F=0".into(), 0, &mut rng),
        to_f32_unit(16, 149, "W=16, F=149: every value subnormal".into(), 0, &mut rng),
        to_f32_unit(60, 149, "W=60, F=149: across the subnormal boundary".into(), 50_000, &mut rng),
        // The compensation path's subtractor (residual x − ca[ia]).
        sub_unit(FloatFormat::FP16, 300_000, &mut rng),
        sub_unit(FloatFormat::FP8_E4M3, 0, &mut rng),
        sub_unit(FloatFormat::FP8_E5M2, 0, &mut rng),
        sub_unit(FloatFormat::BF16, 100_000, &mut rng),
        sub_unit(FloatFormat::new(2, 1).unwrap(), 0, &mut rng),
        sub_unit(FloatFormat::new(3, 4).unwrap(), 0, &mut rng),
    ];
    let mut list = String::new();
    for u in units {
        let name = &u.module.name;
        std::fs::write(
            out.join(format!("{name}.v")),
            kllm_gen::fp_rtl::render(&u.module, &u.params),
        )
        .unwrap();
        let mut vec = format!("# {name} {} {} {}\n", u.widths.0, u.widths.1, u.vectors.len());
        for (i, o) in &u.vectors {
            vec.push_str(&format!("{i} {o}\n"));
        }
        std::fs::write(out.join(format!("{name}.vec")), vec).unwrap();
        list.push_str(format!("{name} {} {} {}", u.ports.0, u.ports.1, u.ports.2).trim_end());
        list.push('\n');
        println!("{name}: {} vectors ({})", u.vectors.len(), u.params);
    }
    std::fs::write(out.join("units.txt"), list).unwrap();
}
