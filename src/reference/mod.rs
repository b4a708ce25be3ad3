//! The reference model: SPEC.md's integer contract stated as plain Rust.
//!
//! These functions are the golden for every block. They are written the obvious way (a direct
//! dequantize-and-multiply dot product, a linear scan for the nearest centroid) so that the
//! hardware's cleverer methods (pair counting, binary-search comparator trees) are checked
//! against something that is easy to believe.

pub mod checkpoint;
pub mod gemv;
pub mod commands;
pub mod golden_layer;
pub mod kmeans;
pub mod layer;
pub mod layer_fp;
pub mod layer_gemv;
pub mod quant;
pub mod tensors;

use crate::rng::Rng;

/// Pair index `j = (ia << nw) | iw`.
pub fn pair_index(ia: u32, iw: u32, nw: u32) -> usize {
    ((ia << nw) | iw) as usize
}

/// `LUT[j] = ca[j >> nw] * cw[j & (2^nw - 1)]`.
pub fn lut(ca: &[i64], cw: &[i64], nw: u32) -> Vec<i64> {
    let mut t = vec![0; ca.len() * cw.len()];
    for (ia, a) in ca.iter().enumerate() {
        for (iw, w) in cw.iter().enumerate() {
            t[pair_index(ia as u32, iw as u32, nw)] = a * w;
        }
    }
    t
}

/// Encoder thresholds `b_i = (ca[i] + ca[i+1]) >>> 1` (floor division by two).
pub fn midpoints(ca: &[i64]) -> Vec<i64> {
    ca.windows(2).map(|w| (w[0] + w[1]).div_euclid(2)).collect()
}

/// `ia(x) = #{ i : x > b_i }`.
pub fn encode(x: i64, b: &[i64]) -> u32 {
    b.iter().filter(|&&bi| x > bi).count() as u32
}

/// The nearest centroid by a linear scan, ties to the lower index: what `encode` must equal.
pub fn nearest(x: i64, ca: &[i64]) -> u32 {
    let mut best = 0;
    for (i, c) in ca.iter().enumerate() {
        if (x - c).abs() < (x - ca[best]).abs() {
            best = i;
        }
    }
    best as u32
}

/// `Y = sum_j ca[ia_j] * cw[iw_j]`, by dequantize and multiply.
pub fn dot(ca: &[i64], cw: &[i64], ia: &[u32], iw: &[u32]) -> i64 {
    ia.iter().zip(iw).map(|(&a, &w)| ca[a as usize] * cw[w as usize]).sum()
}

/// The same dot product by the hardware's method: count pairs, then one small dot product of
/// the counts with the LUT.
pub fn dot_by_counting(lut: &[i64], nw: u32, ia: &[u32], iw: &[u32]) -> i64 {
    let mut count = vec![0i64; lut.len()];
    for (&a, &w) in ia.iter().zip(iw) {
        count[pair_index(a, w, nw)] += 1;
    }
    count.iter().zip(lut).map(|(c, l)| c * l).sum()
}

/// SPEC's dot product with outlier compensation: the main path sums every element's centroid
/// product; each outlier position adds `(x_j - ca[ia_j]) * cw[iw_j]`.
pub fn dot_with_outliers(
    ca: &[i64],
    cw: &[i64],
    x: &[i64],
    ia: &[u32],
    iw: &[u32],
    outliers: &[usize],
) -> i64 {
    let main = dot(ca, cw, ia, iw);
    let comp: i64 = outliers
        .iter()
        .map(|&j| (x[j] - ca[ia[j] as usize]) * cw[iw[j] as usize])
        .sum();
    main + comp
}

/// `n` distinct signed `bits`-wide values, ascending. With probability 1/4 the set includes the
/// extreme representable values, which is where width bugs live.
pub fn random_codebook(rng: &mut Rng, n: usize, bits: u32) -> Vec<i64> {
    let lo = -(1i64 << (bits - 1));
    let hi = (1i64 << (bits - 1)) - 1;
    assert!((hi - lo + 1) as usize >= n);
    let mut set = std::collections::BTreeSet::new();
    if n >= 2 && rng.chance(1, 4) {
        set.insert(lo);
        set.insert(hi);
    }
    // Sometimes a narrow cluster (many equal-ish centroids, small spacings), sometimes the range.
    let (a, b) = if rng.chance(1, 3) && (n as i64) < (hi - lo) / 4 {
        let width = (n as i64 * 2).max(4);
        let start = rng.range(lo, hi - width);
        (start, start + width)
    } else {
        (lo, hi)
    };
    while set.len() < n {
        set.insert(rng.range(a.max(lo), b.min(hi)));
    }
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_equals_direct_dot() {
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let (na, nw) = (rng.range(1, 4) as u32, rng.range(1, 4) as u32);
            let ca = random_codebook(&mut rng, 1 << na, 8);
            let cw = random_codebook(&mut rng, 1 << nw, 8);
            let k = rng.range(1, 300) as usize;
            let ia: Vec<u32> = (0..k).map(|_| rng.below(1 << na) as u32).collect();
            let iw: Vec<u32> = (0..k).map(|_| rng.below(1 << nw) as u32).collect();
            let t = lut(&ca, &cw, nw);
            assert_eq!(dot(&ca, &cw, &ia, &iw), dot_by_counting(&t, nw, &ia, &iw));
        }
    }

    #[test]
    fn midpoint_rule_is_nearest_centroid_ties_low() {
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let ca = random_codebook(&mut rng, 16, 8);
            let b = midpoints(&ca);
            for x in -200..200 {
                assert_eq!(encode(x, &b), nearest(x, &ca), "x={x} ca={ca:?}");
            }
        }
    }

    #[test]
    fn outlier_identity_of_spec_holds() {
        // sum over all + sum over O of (x - c)w == sum over non-O of c*w + sum over O of x*w
        let ca = [-5, 0, 7, 20];
        let cw = [-3, 2];
        let x = [100, -1, 6, -90, 3];
        let ia = [3, 1, 2, 0, 1];
        let iw = [1, 0, 1, 0, 1];
        let o = [0, 3];
        let lhs = dot_with_outliers(&ca, &cw, &x, &ia, &iw, &o);
        let rhs: i64 = (0..5)
            .map(|j| {
                let w = cw[iw[j] as usize];
                if o.contains(&j) { x[j] * w } else { ca[ia[j] as usize] * w }
            })
            .sum();
        assert_eq!(lhs, rhs);
    }
}
