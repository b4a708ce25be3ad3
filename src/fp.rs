//! Float-mode numerics (SPEC.md, "Float mode"): the storage formats F = (E, M), the two roundings
//! `RNE_F` and `RNE_32`, the exact dot-product sum, and the widths every float-mode block derives.
//!
//! Everything here is exact until the one rounding a step is allowed. A finite F value is
//! `±sig · 2^exp` with an integer `sig`, hence an integer multiple of F's smallest subnormal
//! `2^unit_exp`; products, differences, midpoints and sums are formed exactly on integers
//! (arbitrary precision, because bf16's fixed point alone needs 262 bits) and rounded in one
//! place, [`FloatFormat::round`]. So "exact, then one rounding" holds by construction, and the
//! RTL may add the terms of a sum in any order and still match bit for bit.
//!
//! NaN and infinity never enter the datapath (SPEC.md): every function that takes an F pattern
//! refuses them with an error naming the pattern, and a result that would round to infinity is
//! refused with an error naming the exact value.
//!
//! Zero signs follow IEEE 754 so the bit patterns agree with an FP16 MAC (and with the
//! independent checks in tests/fp.rs): a product has the sign of its operands even when it is
//! zero or underflows to zero; an exact-zero difference is +0 except (−0) − (+0) = −0. The one
//! exception the spec makes is the dot product: S = 0 gives +0.

use anyhow::{Result, bail};
use num_bigint::{BigInt, BigUint, Sign};

/// Supported exponent widths. E ≥ 2 so that normal numbers exist besides the all-ones exponent
/// reserved for infinity and NaN; E ≤ 8 keeps F's range inside binary32's.
pub const E_RANGE: std::ops::RangeInclusive<u32> = 2..=8;
/// Supported fraction widths. M ≥ 1 so that infinity and NaN have distinct encodings (IEEE);
/// M ≤ 23, with E ≤ 8, makes every F value a binary32 value, so `RNE_32` of a single term is
/// exact and binary32 itself is the format (8, 23).
pub const M_RANGE: std::ops::RangeInclusive<u32> = 1..=23;

/// An IEEE-754-style binary floating-point format: sign, `e` exponent bits (bias 2^(e−1) − 1),
/// `m` fraction bits, subnormals, and the all-ones exponent reserved for infinity and NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FloatFormat {
    e: u32,
    m: u32,
}

/// A finite F value taken apart: `(−1)^neg · sig · 2^exp`, `sig` the integer significand
/// (hidden bit included for normal numbers), `exp` the weight of its least significant bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub neg: bool,
    pub sig: u64,
    pub exp: i32,
}

const NAMED: [(&str, FloatFormat); 5] = [
    ("fp16", FloatFormat::FP16),
    ("bf16", FloatFormat::BF16),
    ("fp8_e4m3", FloatFormat::FP8_E4M3),
    ("fp8_e5m2", FloatFormat::FP8_E5M2),
    ("fp32", FloatFormat::BINARY32),
];

impl FloatFormat {
    /// IEEE binary16: E5M10, bias 15, largest finite 65504.
    pub const FP16: Self = FloatFormat { e: 5, m: 10 };
    /// bfloat16: E8M7, binary32's exponent range with 8 significant bits.
    pub const BF16: Self = FloatFormat { e: 8, m: 7 };
    /// fp8 E4M3, IEEE-style (exponent 15 reserved, so the largest finite is 240; the OCP
    /// "E4M3FN" variant that reuses that exponent for numbers up to 448 is a different format).
    pub const FP8_E4M3: Self = FloatFormat { e: 4, m: 3 };
    /// fp8 E5M2: binary16's exponent range with 3 significant bits, largest finite 57344.
    pub const FP8_E5M2: Self = FloatFormat { e: 5, m: 2 };
    /// IEEE binary32, the format of every dot-product result `Y`.
    pub const BINARY32: Self = FloatFormat { e: 8, m: 23 };

    /// A format with `e` exponent and `m` fraction bits, if both are in the supported ranges.
    pub fn new(e: u32, m: u32) -> Result<Self> {
        if !E_RANGE.contains(&e) {
            bail!(
                "float format: exponent width E = {e} is outside the supported range {}..={}",
                E_RANGE.start(),
                E_RANGE.end()
            );
        }
        if !M_RANGE.contains(&m) {
            bail!(
                "float format: fraction width M = {m} is outside the supported range {}..={}",
                M_RANGE.start(),
                M_RANGE.end()
            );
        }
        Ok(FloatFormat { e, m })
    }

    /// A format by name: `fp16`, `bf16`, `fp8_e4m3`, `fp8_e5m2`, `fp32`, or `e<E>m<M>` (`e5m10`).
    pub fn by_name(name: &str) -> Result<Self> {
        if let Some((_, f)) = NAMED.iter().find(|(n, _)| *n == name) {
            return Ok(*f);
        }
        let parsed = name
            .strip_prefix('e')
            .and_then(|r| r.split_once('m'))
            .and_then(|(e, m)| Some((e.parse::<u32>().ok()?, m.parse::<u32>().ok()?)));
        match parsed {
            Some((e, m)) => Self::new(e, m),
            None => bail!(
                "float format '{name}' is unknown (allowed: fp16, bf16, fp8_e4m3, fp8_e5m2, fp32, \
                 or e<E>m<M> with E in {}..={} and M in {}..={})",
                E_RANGE.start(),
                E_RANGE.end(),
                M_RANGE.start(),
                M_RANGE.end()
            ),
        }
    }

    /// The short name: a known name, or `e<E>m<M>`.
    pub fn name(&self) -> String {
        match NAMED.iter().find(|(_, f)| f == self) {
            Some((n, _)) => n.to_string(),
            None => format!("e{}m{}", self.e, self.m),
        }
    }

    pub fn e(&self) -> u32 {
        self.e
    }
    pub fn m(&self) -> u32 {
        self.m
    }
    /// Storage width: sign + E + M.
    pub fn width(&self) -> u32 {
        1 + self.e + self.m
    }
    pub fn bias(&self) -> i32 {
        (1 << (self.e - 1)) - 1
    }
    /// Exponent of the smallest normal number.
    pub fn emin(&self) -> i32 {
        1 - self.bias()
    }
    /// Exponent of the largest finite number.
    pub fn emax(&self) -> i32 {
        self.bias()
    }
    /// `log2` of the smallest subnormal: the unit every F value is an integer multiple of, and
    /// the weight of bit 0 of [`to_fixed`](Self::to_fixed) (fp16: −24).
    pub fn unit_exp(&self) -> i32 {
        self.emin() - self.m as i32
    }
    fn exp_ones(&self) -> u64 {
        (1 << self.e) - 1
    }
    fn sign_bit(&self) -> u64 {
        1 << (self.e + self.m)
    }
    /// Bit pattern of the largest finite positive value (fp16: 0x7bff = 65504).
    pub fn max_finite(&self) -> u64 {
        ((self.exp_ones() - 1) << self.m) | ((1 << self.m) - 1)
    }

    /// Takes a finite pattern apart; refuses patterns wider than the format, infinity and NaN.
    pub fn decode(&self, bits: u64) -> Result<Decoded> {
        if bits >> self.width() != 0 {
            bail!("{} pattern {bits:#x} has more than {} bits", self.name(), self.width());
        }
        let expf = (bits >> self.m) & self.exp_ones();
        let frac = bits & ((1 << self.m) - 1);
        let neg = bits & self.sign_bit() != 0;
        if expf == self.exp_ones() {
            let what = match (frac, neg) {
                (0, false) => "+infinity",
                (0, true) => "-infinity",
                _ => "NaN",
            };
            bail!(
                "{} value {bits:#x} is {what}; float mode takes finite values only \
                 (exponent field 0..={})",
                self.name(),
                self.exp_ones() - 1
            );
        }
        Ok(if expf == 0 {
            Decoded { neg, sig: frac, exp: self.unit_exp() }
        } else {
            let exp = expf as i32 - self.bias() - self.m as i32;
            Decoded { neg, sig: frac | 1 << self.m, exp }
        })
    }

    /// The exact value as an f64 (exact: every supported F value is a binary32 value).
    pub fn to_f64(&self, bits: u64) -> Result<f64> {
        let d = self.decode(bits)?;
        let v = d.sig as f64 * 2f64.powi(d.exp);
        Ok(if d.neg { -v } else { v })
    }

    /// The exact value as a two's-complement integer in units of the smallest subnormal
    /// (`value = to_fixed · 2^unit_exp`). −0 and +0 both give 0.
    pub fn to_fixed(&self, bits: u64) -> Result<BigInt> {
        let d = self.decode(bits)?;
        let mag = BigInt::from(d.sig) << (d.exp - self.unit_exp()) as u32;
        Ok(if d.neg { -mag } else { mag })
    }

    /// Width of [`to_fixed`](Self::to_fixed) as a signed integer: 2^E + M − 1 bits.
    ///
    /// The largest magnitude is `(2^(M+1) − 1) · 2^(emax − M)`; in units of `2^(emin − M)` that
    /// is `(2^(M+1) − 1) · 2^(emax − emin)` with `emax − emin = 2·bias − 1 = 2^E − 3`, an integer
    /// of `(M + 1) + (2^E − 3)` bits, plus a sign bit. fp16: 41, fp8 E4M3: 18, E5M2: 33, bf16: 262.
    pub fn fixed_width(&self) -> u32 {
        (1 << self.e) + self.m - 1
    }

    /// `RNE_F` of the exact value `(−1)^neg · mag · 2^exp`: round to nearest, ties to even.
    /// A zero `mag` gives a zero of sign `neg`; a value that rounds beyond the largest finite
    /// number (IEEE would give infinity) is refused with an error naming it.
    pub fn round(&self, neg: bool, mag: &BigUint, exp: i64) -> Result<u64> {
        let sign = if neg { self.sign_bit() } else { 0 };
        let n = mag.bits() as i64;
        if n == 0 {
            return Ok(sign);
        }
        let m = self.m as i64;
        let lead = exp + n - 1; // value in [2^lead, 2^(lead+1))
        // Weight of the last significand bit kept: M bits below the leading one for a normal
        // result, fixed at the subnormal unit below the normal range.
        let mut q = lead.max(self.emin() as i64) - m;
        let mut sig = if q <= exp {
            mag << (exp - q) as u64
        } else {
            let sh = (q - exp) as u64;
            let kept = mag >> sh;
            let rest = mag - (&kept << sh);
            let half = BigUint::from(1u8) << (sh - 1);
            let up = rest > half || (rest == half && kept.bit(0));
            kept + BigUint::from(up as u8)
        };
        if sig.bits() as i64 > m + 1 {
            // Rounding carried into a new binade: sig is exactly 2^(M+1).
            sig >>= 1u32;
            q += 1;
        }
        if q + m > self.emax() as i64 {
            bail!(
                "{}: the exact value {} rounds beyond the largest finite {} value {} \
                 (it would be infinity)",
                self.name(),
                approx(neg, mag, exp),
                self.name(),
                self.to_f64(self.max_finite()).unwrap()
            );
        }
        let sig = u64::try_from(&sig).expect("significand fits M + 1 bits");
        let fields = if sig >> self.m == 0 {
            sig // subnormal (or a subnormal that stayed below 2^emin)
        } else {
            ((q + m + self.bias() as i64) as u64) << self.m | (sig - (1 << self.m))
        };
        Ok(sign | fields)
    }

    /// `RNE_F` of a finite f64 (whose value is exact: `±mant · 2^exp`), rounded once; a zero keeps
    /// its sign. NaN and infinity are refused, and so is a value that would round to infinity.
    pub fn from_f64(&self, v: f64) -> Result<u64> {
        if !v.is_finite() {
            bail!("{v} is not a finite value");
        }
        if v == 0.0 {
            return Ok(if v.is_sign_negative() { self.sign_bit() } else { 0 });
        }
        let bits = v.to_bits();
        let expf = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (mant, exp) = if expf == 0 { (frac, -1074) } else { (frac | 1 << 52, expf - 1075) };
        self.round(v < 0.0, &BigUint::from(mant), exp)
    }

    /// `RNE` of an exact fixed-point value `v · 2^lsb_exp`; 0 gives +0.
    pub fn rne_fixed(&self, v: &BigInt, lsb_exp: i64) -> Result<u64> {
        self.round(v.sign() == Sign::Minus, v.magnitude(), lsb_exp)
    }

    /// `RNE_F(a · b)`: the exact product, rounded once.
    pub fn mul_rne(&self, a: u64, b: u64) -> Result<u64> {
        let (da, db) = (self.decode(a)?, self.decode(b)?);
        let mag = BigUint::from(da.sig) * BigUint::from(db.sig);
        self.round(da.neg != db.neg, &mag, da.exp as i64 + db.exp as i64)
    }

    /// `RNE_F(a − b)`: the exact difference, rounded once.
    pub fn sub_rne(&self, a: u64, b: u64) -> Result<u64> {
        let d = self.to_fixed(a)? - self.to_fixed(b)?;
        if d.sign() == Sign::NoSign {
            // IEEE: an exact zero sum is +0 under round-to-nearest, unless both addends are −0
            // (here a = −0 and −b = −0).
            let neg_zero = a == self.sign_bit() && b == 0;
            return Ok(if neg_zero { self.sign_bit() } else { 0 });
        }
        self.rne_fixed(&d, self.unit_exp() as i64)
    }

    /// The outlier compensation term `t = RNE_F(RNE_F(x − ca) · cw)`: an FP16 MAC's subtract
    /// and multiply, each rounded once.
    pub fn comp_term(&self, x: u64, ca: u64, cw: u64) -> Result<u64> {
        self.mul_rne(self.sub_rne(x, ca)?, cw)
    }

    /// A key whose integer order is the real-value order of finite patterns (−0 and +0 both
    /// give 0): the magnitude field, negated for negative values. Orizuru compares these.
    pub fn order_key(&self, bits: u64) -> Result<i64> {
        let d = self.decode(bits)?;
        let mag = (bits & (self.sign_bit() - 1)) as i64;
        Ok(if d.neg { -mag } else { mag })
    }

    /// The finite pattern whose [`order_key`](Self::order_key) is `key` (+0 for 0); `None` when
    /// no finite value has that key.
    pub fn from_key(&self, key: i64) -> Option<u64> {
        let mag = key.unsigned_abs();
        if mag > self.max_finite() {
            return None;
        }
        Some(if key < 0 { self.sign_bit() | mag } else { mag })
    }

    /// The encoder's thresholds in F: `t_i` = the largest F value not above the midpoint
    /// `m_i = (ca[i] + ca[i+1]) / 2`. For every F value `x`, `x > m_i` exactly when `x > t_i`
    /// (if `x > m_i` then `x > t_i` since `t_i <= m_i`; if `x > t_i` then `x` is an F value above
    /// the largest one not above `m_i`, so `x > m_i`). So an encoder that compares F patterns as
    /// real values with `t_i` takes the exact-midpoint decision `ia(x) = #{i : x > m_i}`, ties
    /// included, with comparators as wide as an F pattern. `t_i` lies in `[ca[i], ca[i+1])`;
    /// it is found by bisection over the order keys of that interval (consecutive keys are
    /// consecutive F values), compared exactly with the midpoint.
    pub fn encoder_thresholds(&self, ca: &[u64]) -> Result<Vec<u64>> {
        let mids = self.midpoints(ca)?;
        let mut t = Vec::with_capacity(mids.len());
        for (i, m) in mids.iter().enumerate() {
            // Invariant: value(lo) <= m < value(hi) (ca[i] < m < ca[i+1]).
            let (mut lo, mut hi) = (self.order_key(ca[i])?, self.order_key(ca[i + 1])?);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let p = self.from_key(mid).expect("a key between two finite keys is finite");
                if self.to_fixed(p)? << 1u32 <= *m {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            t.push(self.from_key(lo).expect("finite"));
        }
        Ok(t)
    }

    /// The exact midpoint `(lo + hi) / 2` in fixed point with one more fraction bit than
    /// [`to_fixed`](Self::to_fixed) (units of `2^(unit_exp − 1)`), i.e. `fixed(lo) + fixed(hi)`.
    pub fn midpoint(&self, lo: u64, hi: u64) -> Result<BigInt> {
        Ok(self.to_fixed(lo)? + self.to_fixed(hi)?)
    }

    /// Signed width of a [`midpoint`](Self::midpoint): one more than [`fixed_width`](Self::fixed_width).
    pub fn midpoint_width(&self) -> u32 {
        self.fixed_width() + 1
    }

    /// The encoder's midpoints `m_i = (ca[i] + ca[i+1]) / 2` of a codebook, which must be
    /// finite and strictly ascending as real values.
    pub fn midpoints(&self, ca: &[u64]) -> Result<Vec<BigInt>> {
        let fixed: Vec<BigInt> = ca.iter().map(|&c| self.to_fixed(c)).collect::<Result<_>>()?;
        for i in 1..ca.len() {
            if fixed[i] <= fixed[i - 1] {
                bail!(
                    "codebook ca[{i}] = {} ({:#x}) is not above ca[{}] = {} ({:#x}): a codebook \
                     must be strictly ascending as real values",
                    self.to_f64(ca[i])?,
                    ca[i],
                    i - 1,
                    self.to_f64(ca[i - 1])?,
                    ca[i - 1]
                );
            }
        }
        Ok(fixed.windows(2).map(|w| &w[0] + &w[1]).collect())
    }

    /// The encoder rule `ia(x) = #{i : x > m_i}` (a tie with a midpoint goes to the lower index).
    pub fn encode(&self, x: u64, mids: &[BigInt]) -> Result<usize> {
        let x2 = self.to_fixed(x)? << 1u32;
        Ok(mids.iter().filter(|m| x2 > **m).count())
    }

    /// The exact sum of F values, in units of the smallest subnormal.
    pub fn sum_exact(&self, terms: impl IntoIterator<Item = u64>) -> Result<BigInt> {
        let mut s = BigInt::from(0u8);
        for t in terms {
            s += self.to_fixed(t)?;
        }
        Ok(s)
    }

    /// `Y = RNE_32(S)` for an exact sum `S` in units of this format's smallest subnormal
    /// (as [`sum_exact`](Self::sum_exact) returns it); S = 0 gives +0. A sum beyond binary32's
    /// range (possible only for E = 8 formats) is refused.
    pub fn rne32(&self, s: &BigInt) -> Result<u32> {
        let y = FloatFormat::BINARY32.rne_fixed(s, self.unit_exp() as i64)?;
        Ok(y as u32)
    }

    /// The dot product `Y = RNE_32(Σ_j LUT[p_j] + Σ_o t_o)`, summed exactly.
    pub fn dot(&self, lut: &[u64], p: &[usize], t: &[u64]) -> Result<u32> {
        let mut terms = Vec::with_capacity(p.len() + t.len());
        for (j, &pj) in p.iter().enumerate() {
            match lut.get(pj) {
                Some(&v) => terms.push(v),
                None => bail!("dot product: p[{j}] = {pj} is outside the table (0..{})", lut.len()),
            }
        }
        terms.extend_from_slice(t);
        self.rne32(&self.sum_exact(terms)?)
    }

    /// Signed width of an accumulator that holds any exact sum of `k_max` table entries and
    /// `comp_terms` compensation terms (the outlier budget: |O| ≤ 2k terms) without overflow.
    ///
    /// Every term is an F value, so `|term| ≤ X`, the largest finite magnitude in units
    /// (`X = (2^(M+1) − 1) · 2^(2^E − 3)`, see [`fixed_width`](Self::fixed_width)). Hence
    /// `|S| ≤ n·X` with `n = k_max + comp_terms`, and a two's-complement integer of W bits holds
    /// it when `n·X ≤ 2^(W−1) − 1`: W = bitlength(n·X) + 1. The bound is reached (all terms at
    /// ±X), so no narrower accumulator is exact for every input.
    pub fn acc_width(&self, k_max: u64, comp_terms: u64) -> u32 {
        let x = self.to_fixed(self.max_finite()).unwrap();
        let bound = x * BigInt::from(k_max as u128 + comp_terms as u128);
        bound.bits() as u32 + 1
    }
}

/// An f64 approximation of `(−1)^neg · mag · 2^exp` for error messages.
fn approx(neg: bool, mag: &BigUint, exp: i64) -> f64 {
    let n = mag.bits();
    let (top, shift) = if n > 64 { (mag >> (n - 64), (n - 64) as i64) } else { (mag.clone(), 0) };
    let v = u64::try_from(&top).unwrap() as f64 * 2f64.powi((exp + shift) as i32);
    if neg { -v } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_formats_have_their_ieee_parameters() {
        let f = FloatFormat::FP16;
        assert_eq!((f.width(), f.bias(), f.unit_exp(), f.max_finite()), (16, 15, -24, 0x7bff));
        assert_eq!(f.to_f64(0x7bff).unwrap(), 65504.0);
        assert_eq!(FloatFormat::FP8_E4M3.to_f64(0x77).unwrap(), 240.0);
        assert_eq!(FloatFormat::FP8_E5M2.to_f64(0x7b).unwrap(), 57344.0);
        assert_eq!(FloatFormat::BF16.to_f64(0x7f7f).unwrap(), f32::from_bits(0x7f7f_0000) as f64);
        assert_eq!(FloatFormat::BINARY32.to_f64(0x7f7f_ffff).unwrap(), f32::MAX as f64);
        assert_eq!(FloatFormat::BINARY32.to_f64(1).unwrap(), 2f64.powi(-149));
        for (n, f) in NAMED {
            assert_eq!(FloatFormat::by_name(n).unwrap(), f);
            assert_eq!(f.name(), n);
        }
        assert_eq!(FloatFormat::by_name("e3m4").unwrap(), FloatFormat::new(3, 4).unwrap());
    }

    #[test]
    fn unsupported_formats_get_one_line_naming_value_and_range() {
        let cases = [
            ("e9m7", "exponent width E = 9 is outside the supported range 2..=8"),
            ("e1m4", "exponent width E = 1 is outside the supported range 2..=8"),
            ("e5m0", "fraction width M = 0 is outside the supported range 1..=23"),
            ("e8m24", "fraction width M = 24 is outside the supported range 1..=23"),
            ("fp64", "float format 'fp64' is unknown"),
        ];
        for (name, want) in cases {
            let err = FloatFormat::by_name(name).unwrap_err().to_string();
            assert!(err.contains(want) && !err.contains('\n'), "{name}: {err}");
        }
    }

    #[test]
    fn nan_infinity_and_overflow_are_refused_with_the_value() {
        let f = FloatFormat::FP16;
        let err = f.decode(0x7c00).unwrap_err().to_string();
        assert!(err.contains("0x7c00 is +infinity"), "{err}");
        assert!(f.decode(0xfe01).unwrap_err().to_string().contains("0xfe01 is NaN"));
        assert!(f.decode(0x1_0000).unwrap_err().to_string().contains("more than 16 bits"));
        // 65504 · 2 = 131008 rounds to infinity.
        let err = f.mul_rne(0x7bff, 0x4000).unwrap_err().to_string();
        assert!(err.contains("131008") && err.contains("65504"), "{err}");
        // 65504 + 16 is exactly halfway to 65536 (= infinity): ties-to-even goes up, refused.
        let err = f.sub_rne(0x7bff, 0xcc00).unwrap_err().to_string();
        assert!(err.contains("65520"), "{err}");
        // 65504 + 8 rounds back to 65504.
        assert_eq!(f.sub_rne(0x7bff, 0xc800).unwrap(), 0x7bff);
    }

    #[test]
    fn f64_to_f_rounds_once_to_nearest_even() {
        let f = FloatFormat::FP16;
        for v in [0.0, -0.0, 1.0, -2.5, 65504.0, 1e-7, 3.0e-8, 2f64.powi(-25), 2f64.powi(-25) * 1.0000001, 0.1] {
            let want = half::f16::from_f32(v as f32).to_bits() as u64; // v is an f32 value or rounds the same
            assert_eq!(f.from_f64(v).unwrap(), want, "{v}");
        }
        // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even (1).
        assert_eq!(f.from_f64(1.0 + 2f64.powi(-11)).unwrap(), 0x3c00);
        assert_eq!(f.from_f64(1.0 + 3.0 * 2f64.powi(-11)).unwrap(), 0x3c02);
        assert!(f.from_f64(65520.0).unwrap_err().to_string().contains("65520"));
        assert!(f.from_f64(f64::NAN).unwrap_err().to_string().contains("NaN is not a finite value"));
        assert!(f.from_f64(f64::NEG_INFINITY).is_err());
    }

    #[test]
    fn midpoints_refuse_unsorted_codebooks() {
        let f = FloatFormat::FP16;
        // 0.5, -0 then +0: equal real values are not strictly ascending.
        let err = f.midpoints(&[0xb800, 0x8000, 0x0000]).unwrap_err().to_string();
        assert!(err.contains("ca[2] = 0 (0x0) is not above ca[1] = -0 (0x8000)"), "{err}");
        let mids = f.midpoints(&[0xbc00, 0x0000, 0x3c00]).unwrap(); // -1, 0, 1
        // x = -0.5 equals m_0 exactly: ties go to the lower index.
        assert_eq!(f.encode(0xb800, &mids).unwrap(), 0);
        assert_eq!(f.encode(0xb7ff, &mids).unwrap(), 1); // just above -0.5
        assert_eq!(f.encode(0x3800, &mids).unwrap(), 1); // 0.5 = m_1
        assert_eq!(f.encode(0x3801, &mids).unwrap(), 2);
    }

    /// The encoder's F thresholds against an independent method: for F values, `x > t_i`
    /// (compared as f64) equals `x > (ca[i] + ca[i+1]) / 2` computed in f64 (exact there). fp8
    /// E4M3: every pair of distinct finite values against every finite x; fp16: every finite x
    /// against pairs that are neighbours, straddle zero, are far apart, equal-binade (midpoint an
    /// F value) and random (seeded).
    #[test]
    fn encoder_thresholds_decide_like_the_exact_midpoint() {
        let check = |f: FloatFormat, a: u64, b: u64, xs: &[u64]| {
            let (va, vb) = (f.to_f64(a).unwrap(), f.to_f64(b).unwrap());
            let t = f.encoder_thresholds(&[a, b]).unwrap()[0];
            let vt = f.to_f64(t).unwrap();
            let m = (va + vb) / 2.0;
            assert!(vt <= m && va <= vt && vt < vb, "{} t({a:#x},{b:#x}) = {t:#x}", f.name());
            for &x in xs {
                let vx = f.to_f64(x).unwrap();
                assert_eq!(vx > vt, vx > m, "{} a={a:#x} b={b:#x} x={x:#x}", f.name());
            }
        };
        let finite = |f: FloatFormat| -> Vec<u64> {
            (0..1u64 << f.width()).filter(|&p| f.decode(p).is_ok()).collect()
        };
        let f = FloatFormat::FP8_E4M3;
        let all = finite(f);
        for &a in &all {
            for &b in &all {
                if f.to_f64(a).unwrap() < f.to_f64(b).unwrap() {
                    check(f, a, b, &all);
                }
            }
        }
        let f = FloatFormat::FP16;
        let all = finite(f);
        let seed: u64 = std::env::var("FP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
        println!("encoder thresholds: seed {seed}");
        let mut rng = crate::rng::Rng::new(seed);
        let mut pairs = vec![(0x8000, 0x0001), (0x8001, 0x0000), (0xfbff, 0x7bff), (0x0000, 0x7bff), (0x3c00, 0x3c01), (0x7bfe, 0x7bff), (0x3c00, 0x3c02), (0xbc00, 0x3c00)];
        for _ in 0..60 {
            let a = all[rng.below(all.len() as u64) as usize];
            let b = all[rng.below(all.len() as u64) as usize];
            let (va, vb) = (f.to_f64(a).unwrap(), f.to_f64(b).unwrap());
            if va < vb {
                pairs.push((a, b));
            } else if vb < va {
                pairs.push((b, a));
            }
        }
        for &(a, b) in &pairs {
            check(f, a, b, &all);
        }
    }

    #[test]
    fn accumulator_width_is_tight_for_the_extreme_sum() {
        for f in
            [FloatFormat::FP16, FloatFormat::FP8_E4M3, FloatFormat::FP8_E5M2, FloatFormat::BF16]
        {
            for (k, c) in [(1, 0), (64, 0), (64, 2), (4096, 40), (3, 1)] {
                let w = f.acc_width(k, c);
                let max = f.max_finite();
                let top = f.sum_exact(std::iter::repeat_n(max, (k + c) as usize)).unwrap();
                let bottom = f.sum_exact(std::iter::repeat_n(max | f.sign_bit(), (k + c) as usize));
                let fits = |v: &BigInt, w: u32| {
                    *v < (BigInt::from(1u8) << (w - 1)) && *v >= -(BigInt::from(1u8) << (w - 1))
                };
                assert!(fits(&top, w) && fits(&bottom.unwrap(), w), "{} k={k} c={c}", f.name());
                assert!(!fits(&top, w - 1), "{} k={k} c={c}: {w} bits is not tight", f.name());
            }
        }
        assert_eq!(FloatFormat::FP16.acc_width(1, 0), FloatFormat::FP16.fixed_width());
    }
}
