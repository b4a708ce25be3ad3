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
