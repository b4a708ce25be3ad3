//! SPEC's tile (GEMV) contract in integer mode, stated as plain Rust: one activation vector
//! against every row of a weight-index matrix, with look-ahead outlier compensation.
//!
//! This is the one reference both the tile's golden writer (random GEMVs) and
//! `golden --from-layer` (the decoder layer's MatMuls) use, so the hardware and the layer
//! evaluation agree on the outlier rule: the outliers are chosen on the **integer** vector the
//! tile sees (after scaling and clamping to `x_bits`), not on the f32 token.

/// One GEMV of the tile contract.
#[derive(Clone, Debug, PartialEq)]
pub struct Gemv {
    /// Activation centroids, ascending and distinct (signed `ac_bits`).
    pub ca: Vec<i64>,
    /// Weight centroids of this matrix (signed `wc_bits`).
    pub cw: Vec<i64>,
    /// The raw activation vector (signed `x_bits`), length K.
    pub x: Vec<i64>,
    /// Weight-index rows (`iw`), each of length K.
    pub rows: Vec<Vec<u32>>,
    /// Outliers per side: the k largest and the k smallest values (0: no compensation).
    pub k: usize,
}

/// Positions of the `k` largest and the `k` smallest values of `x` as one ascending set (an
/// element in both lists counted once). Equal values leave in ascending position order, as
/// Orizuru's result contract says.
pub fn outlier_set(x: &[i64], k: usize) -> Vec<usize> {
    let k = k.min(x.len());
    if k == 0 {
        return vec![];
    }
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[b].cmp(&x[a]).then(a.cmp(&b)));
    let mut set: Vec<usize> = order[..k].to_vec();
    order.sort_by(|&a, &b| x[a].cmp(&x[b]).then(a.cmp(&b)));
    set.extend_from_slice(&order[..k]);
    set.sort_unstable();
    set.dedup();
    set
}

impl Gemv {
    /// Length of the reduction.
    pub fn k_len(&self) -> usize {
        self.x.len()
    }

    /// Activation indices of the whole vector (look-ahead: outliers are encoded too).
    pub fn ia(&self) -> Vec<u32> {
        let b = super::midpoints(&self.ca);
        self.x.iter().map(|&v| super::encode(v, &b)).collect()
    }

    /// The outlier positions the tile compensates.
    pub fn outliers(&self) -> Vec<usize> {
        outlier_set(&self.x, self.k)
    }

    /// `y[n] = Σ_j ca[ia_j]·cw[iw_nj] + Σ_{j∈O} (x_j − ca[ia_j])·cw[iw_nj]` for every row n.
    pub fn expected(&self) -> Vec<i64> {
        let ia = self.ia();
        let o = self.outliers();
        self.rows.iter().map(|iw| super::dot_with_outliers(&self.ca, &self.cw, &self.x, &ia, iw, &o)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlier_ties_leave_by_position_and_overlaps_count_once() {
        // Largest two: 9 at 1, then the 7 at 2 before the 7 at 4; smallest two: -3 at 0, 0 at 3.
        assert_eq!(outlier_set(&[-3, 9, 7, 0, 7], 2), vec![0, 1, 2, 3]);
        // 2k > K: position 1 is in both lists and is counted once.
        assert_eq!(outlier_set(&[1, 2, 3], 2), vec![0, 1, 2]);
        // All equal: both lists take the lowest positions, so position 2 is no outlier.
        assert_eq!(outlier_set(&[5, 5, 5], 2), vec![0, 1]);
        assert_eq!(outlier_set(&[1, 2, 3], 0), Vec::<usize>::new());
    }

    #[test]
    fn compensation_makes_outliers_exact() {
        // With every position an outlier, Y is the exact dot product of x and cw[iw].
        let g = Gemv { ca: vec![-4, 0, 4], cw: vec![-2, 3], x: vec![-9, 1, 2, 11], rows: vec![vec![0, 1, 1, 0]], k: 2 };
        assert_eq!(g.outliers(), vec![0, 1, 2, 3]);
        assert_eq!(g.expected(), vec![-9 * -2 + 3 + 2 * 3 + 11 * -2]);
        // Without outliers, Y is the centroid dot product: ia = [0, 1, 1, 2].
        let g0 = Gemv { k: 0, ..g };
        assert_eq!(g0.expected(), vec![-4 * -2 + 0 + 0 + 4 * -2]);
    }
}

// ---------------------------------------------------------------------------------------------
// Float mode (SPEC.md, "Float mode"): the same contract on F values.

use anyhow::{bail, Result};
use num_bigint::BigInt;

use crate::fp::FloatFormat;

/// Positions of the `k` largest and the `k` smallest F values of `x` by real value as one
/// ascending set (an element in both lists counted once): Orizuru's float reference, so −0 and
/// +0 tie and ties leave by position.
pub fn outlier_set_fp(f: FloatFormat, x: &[u64], k: usize) -> Vec<usize> {
    let k = k.min(x.len());
    if k == 0 {
        return vec![];
    }
    let (hi, lo) = crate::orizuru::reference_topk_fp(f, x, k);
    let mut set: Vec<usize> = hi.iter().chain(&lo).map(|&(_, p)| p as usize).collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// One pair of F codebooks and everything float mode's dot product derives from them once: the
/// table `LUT[j] = RNE_F(ca·cw)` (patterns and exact values) and the exact encoder midpoints.
/// The one implementation of SPEC's float dot product with compensation, used by the tile's
/// reference ([`GemvFp`]) and by the float decoder layer (`layer_fp`).
#[derive(Clone, Debug)]
pub struct FpCodebooks {
    pub f: FloatFormat,
    pub nw: u32,
    pub ca: Vec<u64>,
    pub cw: Vec<u64>,
    /// `LUT[j]` as an F pattern (what the hardware's table is loaded with).
    pub lut: Vec<u64>,
    /// `LUT[j]` exactly, in units of F's smallest subnormal.
    lut_fixed: Vec<i128>,
    mids: Vec<BigInt>,
}

/// Widest exact F value the reference's `i128` sums take: with at most 2^62 terms no sum of
/// such values overflows 127 bits (fp16: 41 bits, fp8: 18 / 33; bf16's 262 do not fit).
const FIXED_BITS_MAX: u32 = 64;

impl FpCodebooks {
    /// Refuses a codebook that is not strictly ascending (`ca`), a NaN or infinite centroid, a
    /// table entry that would round to infinity (naming the entry, both centroids and the exact
    /// value), and a format whose exact values do not fit the reference's sums.
    pub fn new(f: FloatFormat, ca: &[u64], cw: &[u64], nw: u32) -> Result<Self> {
        if f.fixed_width() > FIXED_BITS_MAX {
            bail!(
                "{}: an exact value needs {} bits; the float GEMV reference sums values of up to {FIXED_BITS_MAX} bits (fp16, fp8_e4m3, fp8_e5m2)",
                f.name(),
                f.fixed_width()
            );
        }
        for (name, book) in [("cw", cw), ("ca", ca)] {
            for (i, &v) in book.iter().enumerate() {
                f.decode(v).map_err(|e| anyhow::anyhow!("codebook {name}[{i}]: {e}"))?;
            }
        }
        let mids = f.midpoints(ca)?;
        let lut = crate::pe_fp::lut(f, ca, cw, nw)?;
        let lut_fixed = lut.iter().map(|&t| fixed(f, t)).collect();
        Ok(FpCodebooks { f, nw, ca: ca.to_vec(), cw: cw.to_vec(), lut, lut_fixed, mids })
    }

    /// Activation indices by the exact midpoint rule (ties to the lower index).
    pub fn ia(&self, x: &[u64]) -> Result<Vec<usize>> {
        x.iter().enumerate().map(|(j, &v)| self.f.encode(v, &self.mids).map_err(|e| anyhow::anyhow!("x[{j}]: {e}"))).collect()
    }

    /// The compensation term of outlier `j` against weight index `iw`:
    /// `RNE_F(RNE_F(x_j − ca[ia_j]) · cw[iw])`, refused (naming the position, the operands and
    /// the exact value) where a rounding would give infinity.
    pub fn comp_term(&self, j: usize, x: u64, ia: usize, iw: u32) -> Result<u64> {
        let (ca, cw) = (self.ca[ia], self.cw[iw as usize]);
        self.f.comp_term(x, ca, cw).map_err(|e| {
            anyhow::anyhow!(
                "outlier x[{j}] = {} ({x:#x}): compensation term RNE(RNE(x - ca[{ia}] ({ca:#x})) * cw[{iw}] ({cw:#x})): {e}",
                self.f.to_f64(x).unwrap_or(f64::NAN)
            )
        })
    }

    /// `Y = RNE_32(Σ_j LUT[(ia_j << nw) | iw_j] + Σ_{j∈O} t_j)` for one weight row, the sum
    /// exact, as a binary32 pattern (S = 0 gives +0).
    pub fn row(&self, x: &[u64], ia: &[usize], o: &[usize], iw: &[u32]) -> Result<u32> {
        assert!(x.len() < 1 << 62 && ia.len() == x.len() && iw.len() == x.len());
        let mut s: i128 = 0;
        for (&a, &w) in ia.iter().zip(iw) {
            s += self.lut_fixed[super::pair_index(a as u32, w, self.nw)];
        }
        for &j in o {
            s += fixed(self.f, self.comp_term(j, x[j], ia[j], iw[j])?);
        }
        self.f.rne32(&BigInt::from(s))
    }
}

/// The exact value of a finite F pattern (checked to fit `FIXED_BITS_MAX` by `FpCodebooks::new`).
fn fixed(f: FloatFormat, bits: u64) -> i128 {
    i128::try_from(f.to_fixed(bits).expect("finite F pattern")).expect("checked width")
}

/// One GEMV of the tile contract in float mode: codebooks, raw activations and results are F
/// patterns, `y[n] = RNE_32(Σ_j LUT[p_j] + Σ_{j∈O} RNE_F(RNE_F(x_j − ca[ia_j]) · cw[iw_nj]))`.
#[derive(Clone, Debug, PartialEq)]
pub struct GemvFp {
    pub f: FloatFormat,
    /// Activation centroids, strictly ascending as real values.
    pub ca: Vec<u64>,
    /// Weight centroids of this matrix.
    pub cw: Vec<u64>,
    /// The raw activation vector (finite F patterns), length K.
    pub x: Vec<u64>,
    /// Weight-index rows (`iw`), each of length K.
    pub rows: Vec<Vec<u32>>,
    /// Outliers per side (0: no compensation).
    pub k: usize,
}

impl GemvFp {
    pub fn k_len(&self) -> usize {
        self.x.len()
    }

    /// The codebooks' derived tables (refusals as [`FpCodebooks::new`]).
    pub fn codebooks(&self, nw: u32) -> Result<FpCodebooks> {
        FpCodebooks::new(self.f, &self.ca, &self.cw, nw)
    }

    /// The outlier positions the tile compensates.
    pub fn outliers(&self) -> Vec<usize> {
        outlier_set_fp(self.f, &self.x, self.k)
    }

    /// Every row's `Y` as a binary32 pattern; data that would produce infinity anywhere (a table
    /// entry, a residual, a compensation term) is refused with the row and the values.
    pub fn expected(&self, nw: u32) -> Result<Vec<u32>> {
        let cb = self.codebooks(nw)?;
        let ia = cb.ia(&self.x)?;
        let o = self.outliers();
        self.rows.iter().enumerate().map(|(r, iw)| cb.row(&self.x, &ia, &o, iw).map_err(|e| anyhow::anyhow!("row {r}: {e}"))).collect()
    }
}

#[cfg(test)]
mod tests_fp {
    use super::*;
    use crate::rng::Rng;

    const F: FloatFormat = FloatFormat::FP16;

    fn h(v: f64) -> u64 {
        let p = F.from_f64(v).unwrap();
        assert_eq!(F.to_f64(p).unwrap(), v, "{v} is not an fp16 value");
        p
    }

    /// A hand-computed row whose residual is an exact RNE tie: x = 2050 encodes to ca = 1, so
    /// x − ca = 2049 lies halfway between the fp16 values 2048 and 2050 and rounds to the even
    /// 2048; times cw = 3 that is 6144. (Without the rounding: 6147 → 6148; ties away: 2050·3 =
    /// 6150 → 6152.) The other outlier, −3 at ca = −1, gives −2·3 = −6; the third element is no
    /// outlier and counts LUT[1,0] = RNE(1·0.5) = 0.5. LUT sum 3 + 0.5 − 3 = 0.5, so
    /// Y = 0.5 + 6144 − 6 = 6138.5.
    #[test]
    fn residual_tie_rounds_to_even_in_a_hand_computed_row() {
        let g = GemvFp {
            f: F,
            ca: vec![h(-1.0), h(1.0)],
            cw: vec![h(0.5), h(3.0)],
            x: vec![h(2050.0), h(0.25), h(-3.0)],
            rows: vec![vec![1, 0, 1]],
            k: 1,
        };
        assert_eq!(g.outliers(), vec![0, 2]);
        assert_eq!(F.sub_rne(h(2050.0), h(1.0)).unwrap(), h(2048.0));
        assert_eq!(g.expected(1).unwrap(), vec![6138.5f32.to_bits()]);
        // Without compensation: LUT[1,1] + LUT[1,0] + LUT[0,1] = 3 + 0.5 - 3.
        assert_eq!(GemvFp { k: 0, ..g }.expected(1).unwrap(), vec![0.5f32.to_bits()]);
    }

    /// Compensation cancels the centroid sum exactly: x = (3, −3) against the same weight
    /// centroid 2 (both outliers, exact residuals and products), so S = 6 − 6 = 0 and Y is +0
    /// (0x00000000), not −0, although every term on the negative side is negative.
    #[test]
    fn compensation_cancelling_the_sum_gives_plus_zero() {
        let g = GemvFp {
            f: F,
            ca: vec![h(-1.0), h(1.0)],
            cw: vec![h(-2.0), h(2.0)],
            x: vec![h(3.0), h(-3.0)],
            rows: vec![vec![1, 1], vec![0, 0]],
            k: 1,
        };
        assert_eq!(g.expected(1).unwrap(), vec![0, 0]);
        // Without compensation the centroids alone: 1·2 + (−1)·2 = 0 as well, but with
        // x = (3, −2) the compensation is what makes the sum non-zero: 6 − 4 = 2.
        let g2 = GemvFp { x: vec![h(3.0), h(-2.0)], ..g.clone() };
        assert_eq!(g2.expected(1).unwrap(), vec![2.0f32.to_bits(), (-2.0f32).to_bits()]);
        assert_eq!(GemvFp { k: 0, ..g2 }.expected(1).unwrap(), vec![0, 0]);
    }

    /// x = ±65504 far from its centroid: a residual beyond fp16's range is refused with the
    /// position and the exact value, and so is a finite residual whose product overflows.
    #[test]
    fn overflowing_residuals_and_terms_are_refused_naming_the_value() {
        let g = GemvFp {
            f: F,
            ca: vec![h(-65504.0), h(-60000.0)],
            cw: vec![h(0.5), h(1.0)],
            x: vec![h(65504.0), h(-1.0)],
            rows: vec![vec![0, 0]],
            k: 1,
        };
        let e = g.expected(1).unwrap_err().to_string();
        assert!(e.contains("row 0") && e.contains("x[0] = 65504 (0x7bff)") && e.contains("exact value 125504") && e.contains("infinity"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        // Residual 65504 - 1 rounds to 65504, fine; times cw = 2 it overflows.
        let g = GemvFp { ca: vec![h(-1.0), h(1.0)], cw: vec![h(2.0), h(1.0)], ..g };
        let e = g.expected(1).unwrap_err().to_string();
        assert!(e.contains("x[0] = 65504") && e.contains("exact value 131008") && e.contains("infinity"), "{e}");
        // The same data without outliers is fine: the table 1·2 is finite.
        assert!(GemvFp { k: 0, ..g }.expected(1).is_ok());
        // An unsorted codebook is refused too.
        let g = GemvFp { ca: vec![h(1.0), h(-1.0)], cw: vec![h(1.0), h(1.0)], x: vec![h(1.0)], rows: vec![vec![0]], k: 0, f: F };
        assert!(g.expected(1).unwrap_err().to_string().contains("strictly ascending"));
    }

    /// The i128 fast path equals `FloatFormat::dot` (arbitrary precision, terms listed
    /// explicitly) on random GEMVs with every kind of F value, outliers and ±0.
    #[test]
    fn rows_equal_the_arbitrary_precision_dot_product() {
        let seed = std::env::var("FP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
        eprintln!("rows_equal_the_arbitrary_precision_dot_product: seed {seed} (FP_SEED=n for another)");
        let mut rng = Rng::new(seed);
        let mut checked = 0;
        let mut refused = 0;
        while checked < 300 {
            let q = crate::config::QuantConfig { nw: 2, na: 2, numerics: "fp16".into(), ..Default::default() };
            let (mut ca, cw) = crate::pe_fp::random_codebooks(&mut rng, F, &q, crate::pe_fp::Style::Typical, crate::pe_fp::Style::Typical);
            ca.sort_by(|a, b| F.to_f64(*a).unwrap().partial_cmp(&F.to_f64(*b).unwrap()).unwrap());
            let kk = rng.range(1, 40) as usize;
            use crate::pe_fp::Style;
            let styles = [Style::Typical, Style::Typical, Style::Tiny, Style::Unit, Style::Any];
            let x: Vec<u64> = (0..kk)
                .map(|_| {
                    let s = styles[rng.below(5) as usize];
                    crate::pe_fp::random_f(&mut rng, F, s)
                })
                .collect();
            let rows: Vec<Vec<u32>> = (0..3).map(|_| (0..kk).map(|_| rng.below(4) as u32).collect()).collect();
            let g = GemvFp { f: F, ca, cw, x, rows, k: rng.range(0, 4) as usize };
            let Ok(y) = g.expected(2) else {
                refused += 1;
                continue;
            };
            let cb = g.codebooks(2).unwrap();
            let ia = cb.ia(&g.x).unwrap();
            for (r, iw) in g.rows.iter().enumerate() {
                let p: Vec<usize> = (0..kk).map(|j| crate::reference::pair_index(ia[j] as u32, iw[j], 2)).collect();
                let t: Vec<u64> = g.outliers().iter().map(|&j| F.comp_term(g.x[j], g.ca[ia[j]], g.cw[iw[j] as usize]).unwrap()).collect();
                assert_eq!(y[r], F.dot(&cb.lut, &p, &t).unwrap(), "row {r} of {g:?}");
            }
            checked += 1;
        }
        assert!(refused < checked, "most random GEMVs must be finite ({refused} refused)");
    }
}
