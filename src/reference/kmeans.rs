//! 1-D K-Means for codebooks: k-means++ seeding + Lloyd, and exact optimal solvers.
//!
//! Both work on a [`Histogram`]: sorted *atoms* (a distinct value, or a narrow bin of values),
//! each with its total weight and its exact first and second moments, and prefix sums of those.
//! In one dimension a cluster of a sorted set is a contiguous range, so with prefix sums the mean
//! and the squared error of any range of atoms cost O(1):
//!
//! - a Lloyd iteration is `k` binary searches (find the range between two midpoints) instead of a
//!   pass over every value, so Lloyd costs O(k log n) per iteration after the histogram;
//! - the exact solvers are the Ckmeans.1d.dp dynamic program `D[q][i] = min_j D[q-1][j] +
//!   cost(j, i)`, each layer solved by divide and conquer over the monotone split point
//!   (O(k n log n), n = atoms). The split point is monotone because the cost is Monge.
//!
//! Codebooks end up as signed integers on a fixed grid (SPEC's integer centroids), and a
//! nearest-integer-centroid partition only ever cuts the value axis at multiples of half a grid
//! step. [`FineHist`] therefore bins values at a fixed sub-division of that half step: its bins
//! regrouped by half steps ([`FineHist::grid`]) lose nothing for the integer problem, and
//! [`optimal_int`] on them is the exact optimum over integer codebooks (a few hundred atoms for
//! 8-bit centroids, whatever the number of values); Lloyd runs on the fine bins, whose moments are
//! exact, so only its assignment step is rounded to a bin (1/128 of a half step for 8-bit
//! centroids).
//!
//! Sample weights are the per-value weights of the objective (a value normalized by its row's
//! scale `s` carries `s²`, so the solvers minimize the error in the original units); equal
//! values are merged by adding their weights, which changes nothing in either objective.

use crate::rng::Rng;

/// One atom of a [`Histogram`]: total weight `w` and the moments `m1 = Σw·(v−c)`,
/// `m2 = Σw·(v−c)²` of its values `v` about its centre `c` (a distinct value has `m1 = m2 = 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Atom {
    pub c: f64,
    pub w: f64,
    pub m1: f64,
    pub m2: f64,
}

/// Sorted atoms with total weights and prefix sums of their moments (about the weighted mean of
/// everything, so that `Σw·x²` does not cancel catastrophically).
#[derive(Clone, Debug)]
pub struct Histogram {
    /// Each atom's weighted mean, ascending (for distinct values: the values).
    pub x: Vec<f64>,
    /// Total weight of each atom (> 0).
    pub w: Vec<f64>,
    shift: f64,
    pw: Vec<f64>,
    p1: Vec<f64>,
    p2: Vec<f64>,
}

/// A total-order key for f32 (sign-magnitude to unsigned): sorting keys sorts the values.
fn key(v: f32) -> u32 {
    let b = v.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

fn unkey(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & 0x7fff_ffff } else { !k })
}

/// LSD radix sort of u32 keys in two 16-bit passes: ~10x faster than a comparison sort on the
/// 10 M-value matrices this is used for.
fn radix_sort(keys: &mut Vec<u32>) {
    let mut tmp = vec![0u32; keys.len()];
    for shift in [0u32, 16] {
        let mut count = vec![0usize; 1 << 16];
        for &k in keys.iter() {
            count[((k >> shift) & 0xffff) as usize] += 1;
        }
        let mut pos = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = pos;
            pos += n;
        }
        for &k in keys.iter() {
            let b = ((k >> shift) & 0xffff) as usize;
            tmp[count[b]] = k;
            count[b] += 1;
        }
        std::mem::swap(keys, &mut tmp);
    }
}

impl Histogram {
    /// Builds the histogram. Errors (one line) on empty input, non-finite values, or weights
    /// that are negative, non-finite, or of the wrong length. Zero-weight samples are dropped.
    pub fn new(values: &[f32], weights: Option<&[f32]>) -> Result<Histogram, String> {
        if let Some(w) = weights
            && w.len() != values.len()
        {
            return Err(format!("{} sample weights for {} values", w.len(), values.len()));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("value {i} is not finite ({})", values[i]));
        }
        let (mut x, mut w) = (Vec::new(), Vec::new());
        let mut push = |v: f32, wt: f64| {
            if x.last() == Some(&(v as f64)) {
                *w.last_mut().unwrap() += wt;
            } else {
                x.push(v as f64);
                w.push(wt);
            }
        };
        match weights {
            None => {
                let mut keys: Vec<u32> = values.iter().map(|&v| key(v)).collect();
                radix_sort(&mut keys);
                for k in keys {
                    push(unkey(k), 1.0);
                }
            }
            Some(ws) => {
                if let Some(i) = ws.iter().position(|v| !v.is_finite() || *v < 0.0) {
                    return Err(format!("sample weight {i} is negative or not finite ({})", ws[i]));
                }
                let mut pairs: Vec<(u32, f32)> =
                    values.iter().zip(ws).filter(|(_, w)| **w > 0.0).map(|(&v, &w)| (key(v), w)).collect();
                pairs.sort_unstable_by_key(|p| p.0);
                for (k, wt) in pairs {
                    push(unkey(k), wt as f64);
                }
            }
        }
        if x.is_empty() {
            return Err("no values to cluster (empty input or all weights zero)".into());
        }
        Ok(Histogram::from_atoms(x.into_iter().zip(w).map(|(c, w)| Atom { c, w, m1: 0.0, m2: 0.0 }).collect()))
    }

    /// A histogram of ascending atoms with positive weight (callers drop empty bins).
    pub fn from_atoms(atoms: Vec<Atom>) -> Histogram {
        debug_assert!(atoms.windows(2).all(|a| a[0].c < a[1].c) && atoms.iter().all(|a| a.w > 0.0));
        let total: f64 = atoms.iter().map(|a| a.w).sum();
        let shift = if total > 0.0 { atoms.iter().map(|a| a.w * a.c + a.m1).sum::<f64>() / total } else { 0.0 };
        let n = atoms.len();
        let (mut pw, mut p1, mut p2) = (vec![0.0; n + 1], vec![0.0; n + 1], vec![0.0; n + 1]);
        for (i, a) in atoms.iter().enumerate() {
            // Moments about the global mean from moments about the atom's centre: no cancellation.
            let e = a.c - shift;
            pw[i + 1] = pw[i] + a.w;
            p1[i + 1] = p1[i] + a.m1 + a.w * e;
            p2[i + 1] = p2[i] + a.m2 + 2.0 * e * a.m1 + a.w * e * e;
        }
        let x = atoms.iter().map(|a| a.c + a.m1 / a.w).collect();
        let w = atoms.iter().map(|a| a.w).collect();
        Histogram { x, w, shift, pw, p1, p2 }
    }

    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Squared error of distinct values `[a, b)` around their weighted mean.
    fn cost(&self, a: usize, b: usize) -> f64 {
        let w = self.pw[b] - self.pw[a];
        if w <= 0.0 {
            return 0.0;
        }
        let s = self.p1[b] - self.p1[a];
        ((self.p2[b] - self.p2[a]) - s * s / w).max(0.0)
    }

    /// Weighted mean of `[a, b)` (`None` if empty).
    fn mean(&self, a: usize, b: usize) -> Option<f64> {
        let w = self.pw[b] - self.pw[a];
        (b > a && w > 0.0).then(|| (self.p1[b] - self.p1[a]) / w + self.shift)
    }

    /// Squared error of `[a, b)` around `c`.
    fn cost_at(&self, a: usize, b: usize, c: f64) -> f64 {
        let c = c - self.shift;
        let v = (self.p2[b] - self.p2[a]) - 2.0 * c * (self.p1[b] - self.p1[a])
            + c * c * (self.pw[b] - self.pw[a]);
        v.max(0.0)
    }

    /// Ranges of the nearest-centroid partition for ascending `centroids`: value `x` goes to
    /// cluster `i` if it is above midpoint `i-1` and at most midpoint `i` (ties to the lower
    /// centroid, as SPEC's encoder).
    fn ranges(&self, centroids: &[f64]) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(centroids.len());
        let mut lo = 0;
        for i in 0..centroids.len() {
            let hi = if i + 1 == centroids.len() {
                self.x.len()
            } else {
                let mid = 0.5 * (centroids[i] + centroids[i + 1]);
                self.x.partition_point(|&v| v <= mid)
            };
            out.push((lo, hi.max(lo)));
            lo = hi.max(lo);
        }
        out
    }

    /// Weighted sum of squared distances to the nearest of `centroids` (any order).
    pub fn sse(&self, centroids: &[f64]) -> f64 {
        let mut c = centroids.to_vec();
        c.sort_by(f64::total_cmp);
        self.ranges(&c).iter().zip(&c).map(|(&(a, b), &ci)| self.cost_at(a, b, ci)).sum()
    }
}

/// k-means++ seeding followed by Lloyd iterations until the centroids stop moving. Returns
/// `min(k, distinct values)` ascending centroids. Deterministic for a seed.
pub fn lloyd(h: &Histogram, k: usize, seed: u64) -> Vec<f64> {
    let n = h.len();
    if n <= k {
        return h.x.clone();
    }
    let mut rng = Rng::new(seed);
    let mut c = kmeanspp(h, k, &mut rng);
    // Each iteration costs O(k log n), so a generous cap is cheap; it only guards against
    // floating-point cycling.
    for _ in 0..10_000 {
        c.sort_by(f64::total_cmp);
        let ranges = h.ranges(&c);
        let mut next = c.clone();
        for (i, &(a, b)) in ranges.iter().enumerate() {
            match h.mean(a, b) {
                Some(m) => next[i] = m,
                None => next[i] = farthest_value(h, &c),
            }
        }
        next.sort_by(f64::total_cmp);
        next.dedup();
        while next.len() < k {
            // A centroid collapsed onto another: restart it where the error is largest.
            let v = farthest_value(h, &next);
            next.push(v);
            next.sort_by(f64::total_cmp);
        }
        if next == c {
            break;
        }
        c = next;
    }
    c.sort_by(f64::total_cmp);
    c
}

/// The distinct value with the largest weighted squared distance to its nearest centroid.
fn farthest_value(h: &Histogram, c: &[f64]) -> f64 {
    let mut best = (f64::NEG_INFINITY, h.x[0]);
    for (x, w) in h.x.iter().zip(&h.w) {
        let d = c.iter().map(|ci| (x - ci) * (x - ci)).fold(f64::INFINITY, f64::min);
        if c.contains(x) {
            continue;
        }
        if w * d > best.0 {
            best = (w * d, *x);
        }
    }
    best.1
}

/// k-means++: the first centroid with probability proportional to weight, each next one
/// proportional to weight times squared distance to the nearest chosen centroid.
fn kmeanspp(h: &Histogram, k: usize, rng: &mut Rng) -> Vec<f64> {
    /// Index where the running sum of `score` first exceeds `r` (the last index if rounding
    /// leaves `r` unspent).
    fn pick(score: &[f64], mut r: f64) -> usize {
        for (i, s) in score.iter().enumerate() {
            r -= s;
            if r < 0.0 {
                return i;
            }
        }
        score.len() - 1
    }
    let n = h.len();
    let total_w: f64 = h.w.iter().sum();
    let first = pick(&h.w, rng.unit() * total_w);
    let mut c = vec![h.x[first]];
    // score[i] = w_i * (distance to the nearest chosen centroid)^2
    let mut score: Vec<f64> = h.x.iter().zip(&h.w).map(|(x, w)| w * (x - h.x[first]).powi(2)).collect();
    while c.len() < k {
        let total: f64 = score.iter().sum();
        if total <= 0.0 {
            break; // every distinct value is a centroid; n > k excludes this
        }
        let i = pick(&score, rng.unit() * total);
        let v = h.x[i];
        c.push(v);
        // Only a window around the new centroid gets closer to it: walking outward, the first
        // value that an old centroid serves at least as well has that centroid between it and
        // `v`, and so does every value beyond it.
        let update = |j: usize, score: &mut Vec<f64>| {
            let d = h.w[j] * (h.x[j] - v) * (h.x[j] - v);
            if d < score[j] {
                score[j] = d;
                true
            } else {
                d == 0.0 && score[j] == 0.0
            }
        };
        let mut j = i;
        while update(j, &mut score) && j > 0 {
            j -= 1;
        }
        j = i + 1;
        while j < n && update(j, &mut score) {
            j += 1;
        }
    }
    c
}

/// The exact minimum-SSE `k` centroids (ascending; `min(k, atoms)` of them), by dynamic
/// programming over the sorted atoms. For distinct values this is the optimum over all real
/// codebooks.
pub fn optimal(h: &Histogram, k: usize) -> Vec<f64> {
    if h.len() <= k {
        return h.x.clone();
    }
    let bounds = dp_bounds(h, k, |a, b| h.cost(a, b));
    bounds.windows(2).filter_map(|b| h.mean(b[0], b[1])).collect()
}

/// The exact minimum-SSE codebook of at most `k` *integer* centroids in `lo..=hi` (ascending,
/// distinct, as f64). A cluster's best integer centroid is its mean rounded (clamped) to the
/// grid, so its cost is `cost + W·(mean − round(mean))²`; a minimum over centres of additive
/// costs is still Monge, so the same divide-and-conquer DP is exact. Exact over *all* integer
/// codebooks when every nearest-centroid partition is a union of atoms, as for
/// [`FineHist::grid`]; fewer than `k` centroids come back when the data needs fewer (two
/// clusters may share their best integer), and adding centroids never raises the error.
pub fn optimal_int(h: &Histogram, k: usize, lo: i64, hi: i64) -> Vec<f64> {
    let best = |a: usize, b: usize| h.mean(a, b).map(|m| m.round().clamp(lo as f64, hi as f64));
    let bounds = if h.len() <= k {
        (0..=h.len()).collect()
    } else {
        dp_bounds(h, k, |a, b| best(a, b).map_or(0.0, |g| h.cost_at(a, b, g)))
    };
    let mut c: Vec<f64> = bounds.windows(2).filter_map(|b| best(b[0], b[1])).collect();
    c.dedup();
    c
}

/// Cluster boundaries `0 = b_0 < b_1 < … < b_k = n` minimizing `Σ cost(b_i, b_{i+1})` over
/// `n > k` atoms, for a Monge `cost` (the best split of row `i` is monotone in `i`).
fn dp_bounds(h: &Histogram, k: usize, cost: impl Fn(usize, usize) -> f64) -> Vec<usize> {
    let n = h.len();
    // prev[i]: least cost of the first i atoms in q-1 clusters; split[q][i]: where the last of
    // q clusters starts in the best solution for the first i atoms.
    let mut prev: Vec<f64> = (0..=n).map(|i| cost(0, i)).collect();
    let mut split: Vec<Vec<u32>> = vec![vec![0; n + 1]];
    for q in 2..=k {
        let mut cur = vec![f64::INFINITY; n + 1];
        let mut s = vec![0u32; n + 1];
        // Row i in q..=n may split at j in q-1..i (each cluster non-empty).
        solve_layer(&cost, &prev, &mut cur, &mut s, (q, n), (q - 1, n - 1));
        prev = cur;
        split.push(s);
    }
    let mut bounds = vec![n];
    let mut i = n;
    for q in (1..k).rev() {
        i = split[q][i] as usize;
        bounds.push(i);
    }
    bounds.push(0);
    bounds.reverse();
    bounds
}

/// Divide and conquer for one DP layer: the best split of row `mid` lies between those of its
/// neighbours. Rows `lo..=hi`, candidate splits `jlo..=jhi`.
fn solve_layer(
    cost: &impl Fn(usize, usize) -> f64,
    prev: &[f64],
    cur: &mut [f64],
    s: &mut [u32],
    (lo, hi): (usize, usize),
    (jlo, jhi): (usize, usize),
) {
    if lo > hi {
        return;
    }
    let mid = (lo + hi) / 2;
    let mut best = (f64::INFINITY, jlo);
    for (j, p) in prev.iter().enumerate().take(jhi.min(mid - 1) + 1).skip(jlo) {
        let v = p + cost(j, mid);
        if v < best.0 {
            best = (v, j);
        }
    }
    cur[mid] = best.0;
    s[mid] = best.1 as u32;
    if mid > lo {
        solve_layer(cost, prev, cur, s, (lo, mid - 1), (jlo, best.1));
    }
    solve_layer(cost, prev, cur, s, (mid + 1, hi), (best.1, jhi));
}

/// Values on the integer-centroid scale `t` (one unit = one step between integer centroids
/// `lo..=hi`), binned at `2^sub` bins per half unit with exact moments per bin.
///
/// Bin `f` holds `t ∈ ((f−1)/2^(sub+1), f/2^(sub+1)]`, i.e. `f = ⌈2^(sub+1)·t⌉` (the scaling by a
/// power of two is exact). Half-unit bin `g = ⌈f / 2^sub⌉ = ⌈2t⌉` then holds `t ∈ ((g−1)/2, g/2]`,
/// so a midpoint `m/2` between two integer centroids is always a bin edge, and a value exactly on
/// it sits in the lower bin, as SPEC's encoder (ties to the lower centroid) puts it.
#[derive(Clone, Debug)]
pub struct FineHist {
    lo: i64,
    hi: i64,
    sub: u32,
    /// Index of bin 0 in the vectors: `f = first + i`.
    first: i64,
    w: Vec<f64>,
    m1: Vec<f64>,
    m2: Vec<f64>,
}

impl FineHist {
    /// An empty histogram for integer centroids `lo..=hi` with about `2^17` bins in all.
    pub fn new(lo: i64, hi: i64) -> FineHist {
        let span = 2 * (hi - lo) as u64;
        let sub = (17 - (64 - span.leading_zeros()).min(17)).min(10);
        let first = (lo << (sub + 1)) + 1;
        let n = ((hi - lo) << (sub + 1)) as usize;
        FineHist { lo, hi, sub, first, w: vec![0.0; n], m1: vec![0.0; n], m2: vec![0.0; n] }
    }

    fn centre(&self, f: i64) -> f64 {
        (f as f64 - 0.5) / (1u64 << (self.sub + 1)) as f64
    }

    /// Adds value `t` (on the centroid scale) with weight `wt`. Values beyond the grid go to
    /// the end bins (their moments stay exact; only the bin edge is off, and no centroid lies
    /// beyond the grid to split them).
    #[inline]
    pub fn add(&mut self, t: f64, wt: f64) {
        let f = ((t * (1u64 << (self.sub + 1)) as f64).ceil() as i64).clamp(self.first, self.first + self.w.len() as i64 - 1);
        let i = (f - self.first) as usize;
        let d = t - self.centre(f);
        self.w[i] += wt;
        self.m1[i] += wt * d;
        self.m2[i] += wt * d * d;
    }

    /// Adds another histogram of the same grid, bin by bin.
    pub fn merge(&mut self, o: &FineHist) {
        for i in 0..self.w.len() {
            self.w[i] += o.w[i];
            self.m1[i] += o.m1[i];
            self.m2[i] += o.m2[i];
        }
    }

    /// Total weight.
    pub fn weight(&self) -> f64 {
        self.w.iter().sum()
    }

    /// The non-empty fine bins as atoms (for Lloyd).
    pub fn fine(&self) -> Histogram {
        let atoms = (0..self.w.len())
            .filter(|&i| self.w[i] > 0.0)
            .map(|i| Atom { c: self.centre(self.first + i as i64), w: self.w[i], m1: self.m1[i], m2: self.m2[i] })
            .collect();
        Histogram::from_atoms(atoms)
    }

    /// The non-empty half-unit bins as atoms: every nearest-integer-centroid partition is a
    /// union of them, so [`optimal_int`] on this histogram is exact.
    pub fn grid(&self) -> Histogram {
        let per = 1i64 << self.sub;
        let mut atoms: Vec<Atom> = Vec::new();
        let mut cur: Option<(i64, Atom)> = None;
        for i in 0..self.w.len() {
            if self.w[i] <= 0.0 {
                continue;
            }
            let f = self.first + i as i64;
            let g = -((-f).div_euclid(per)); // ⌈f / 2^sub⌉
            let gc = (g as f64 - 0.5) / 2.0;
            let e = self.centre(f) - gc;
            let (w, m1, m2) = (self.w[i], self.m1[i], self.m2[i]);
            if cur.as_ref().is_none_or(|(cg, _)| *cg != g) {
                if let Some((_, a)) = cur.take() {
                    atoms.push(a);
                }
                cur = Some((g, Atom { c: gc, ..Atom::default() }));
            }
            let a = &mut cur.as_mut().unwrap().1;
            a.w += w;
            a.m2 += m2 + 2.0 * e * m1 + w * e * e;
            a.m1 += m1 + w * e;
        }
        atoms.extend(cur.map(|(_, a)| a));
        Histogram::from_atoms(atoms)
    }

    /// Integer range of the centroids.
    pub fn range(&self) -> (i64, i64) {
        (self.lo, self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_values(rng: &mut Rng, n: usize) -> Vec<f32> {
        // Mixtures with repeats, so ties and equal values are exercised.
        let modes = rng.range(1, 4) as usize;
        let centers: Vec<f64> = (0..modes).map(|_| rng.normal() * 5.0).collect();
        (0..n)
            .map(|_| {
                let c = centers[rng.below(modes as u64) as usize];
                let v = c + rng.normal();
                if rng.chance(1, 5) { v.round() as f32 } else { v as f32 }
            })
            .collect()
    }

    /// Least SSE over every partition of the sorted distinct values into `k` contiguous groups.
    fn brute_force(h: &Histogram, k: usize) -> f64 {
        fn go(h: &Histogram, start: usize, k: usize) -> f64 {
            if k == 1 {
                return h.cost(start, h.len());
            }
            (start + 1..=h.len() - (k - 1))
                .map(|e| h.cost(start, e) + go(h, e, k - 1))
                .fold(f64::INFINITY, f64::min)
        }
        go(h, 0, k.min(h.len()))
    }

    #[test]
    fn optimal_equals_brute_force_on_tiny_inputs() {
        for seed in 0..300u64 {
            let mut rng = Rng::new(seed);
            let n = rng.range(1, 11) as usize;
            let k = rng.range(1, 5) as usize;
            let v = random_values(&mut rng, n);
            let weights: Option<Vec<f32>> =
                rng.chance(1, 2).then(|| (0..n).map(|_| rng.range(1, 5) as f32).collect());
            let h = Histogram::new(&v, weights.as_deref()).unwrap();
            let opt = optimal(&h, k);
            let bf = brute_force(&h, k);
            let got = h.sse(&opt);
            assert!((got - bf).abs() <= 1e-9 * (1.0 + bf), "seed {seed}: optimal {got} vs brute force {bf}");
        }
    }

    #[test]
    fn optimal_is_never_worse_than_lloyd() {
        for seed in 0..200u64 {
            let mut rng = Rng::new(1000 + seed);
            let n = rng.range(1, 2000) as usize;
            let k = rng.range(1, 17) as usize;
            let v = random_values(&mut rng, n);
            let weights: Option<Vec<f32>> =
                rng.chance(1, 3).then(|| (0..n).map(|_| rng.unit() as f32 * 3.0).collect());
            let Ok(h) = Histogram::new(&v, weights.as_deref()) else { continue };
            let (o, l) = (h.sse(&optimal(&h, k)), h.sse(&lloyd(&h, k, seed)));
            assert!(o <= l * (1.0 + 1e-9) + 1e-9, "seed {seed}: optimal SSE {o} > Lloyd SSE {l}");
        }
    }

    /// Values on the integer scale with weights; some land exactly on half-integers (midpoints
    /// between integer centroids), where ties must go to the lower centroid.
    fn random_scaled(rng: &mut Rng, n: usize, lo: i64, hi: i64) -> Vec<(f64, f64)> {
        let span = (hi - lo) as f64;
        let centre = rng.unit() * span * 0.5 + lo as f64 + span * 0.25;
        (0..n)
            .map(|_| {
                let t = if rng.chance(1, 4) {
                    rng.range(2 * lo, 2 * hi) as f64 / 2.0
                } else {
                    (centre + rng.normal() * span * 0.2).clamp(lo as f64, hi as f64)
                };
                (t, 0.1 + rng.unit() * 4.0)
            })
            .collect()
    }

    /// Error of `values` against integer `codebook` with SPEC's encoder (nearest, ties low).
    fn encoder_sse(values: &[(f64, f64)], codebook: &[i64]) -> f64 {
        let mids: Vec<f64> = codebook.windows(2).map(|w| 0.5 * (w[0] + w[1]) as f64).collect();
        values
            .iter()
            .map(|&(t, w)| {
                let c = codebook[mids.partition_point(|&m| m < t)] as f64;
                w * (t - c) * (t - c)
            })
            .sum()
    }

    #[test]
    fn optimal_int_equals_brute_force_over_every_integer_codebook() {
        for seed in 0..150u64 {
            let mut rng = Rng::new(7000 + seed);
            let bits = rng.range(2, 4) as u32;
            let (lo, hi) = (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1);
            let k = rng.range(1, 4.min(hi - lo + 1)) as usize;
            let n = rng.range(1, 60) as usize;
            let values = random_scaled(&mut rng, n, lo, hi);
            let mut fh = FineHist::new(lo, hi);
            for &(t, w) in &values {
                fh.add(t, w);
            }
            let opt: Vec<i64> = optimal_int(&fh.grid(), k, lo, hi).iter().map(|&c| c as i64).collect();
            assert!(opt.len() <= k && opt.windows(2).all(|w| w[0] < w[1]), "seed {seed}: {opt:?}");
            let got = encoder_sse(&values, &opt);
            // Every codebook of exactly k distinct integers in lo..=hi.
            let mut best = f64::INFINITY;
            for mask in 0u32..1 << (hi - lo + 1) {
                if mask.count_ones() as usize == k {
                    let cb: Vec<i64> = (lo..=hi).filter(|v| mask >> (v - lo) & 1 == 1).collect();
                    best = best.min(encoder_sse(&values, &cb));
                }
            }
            assert!(got <= best * (1.0 + 1e-9) + 1e-9, "seed {seed}: optimal_int {got} > brute force {best} ({opt:?})");
        }
    }

    #[test]
    fn binned_moments_are_exact() {
        let mut rng = Rng::new(77);
        let values = random_scaled(&mut rng, 5000, -128, 127);
        let mut fh = FineHist::new(-128, 127);
        for &(t, w) in &values {
            fh.add(t, w);
        }
        for h in [fh.fine(), fh.grid()] {
            // The error of the whole set around any point, from prefix sums, equals the direct sum.
            for c in [-100.0, 0.0, 3.25, 90.0] {
                let direct: f64 = values.iter().map(|&(t, w)| w * (t - c) * (t - c)).sum();
                let got = h.cost_at(0, h.len(), c);
                assert!((got - direct).abs() <= 1e-9 * direct, "c = {c}: {got} vs {direct}");
            }
        }
        assert!(fh.grid().len() <= 511 && fh.fine().len() > 511);
    }

    #[test]
    fn histogram_sorts_and_merges() {
        let h = Histogram::new(&[3.0, -1.0, 3.0, -0.0, 0.0, -7.5], None).unwrap();
        assert_eq!(h.x, vec![-7.5, -1.0, 0.0, 3.0]);
        assert_eq!(h.w, vec![1.0, 1.0, 2.0, 2.0]);
        assert!(Histogram::new(&[1.0, f32::NAN], None).unwrap_err().contains("not finite"));
        assert!(Histogram::new(&[], None).is_err());
    }

    #[test]
    fn lloyd_is_deterministic_and_sse_matches_direct_sum() {
        let mut rng = Rng::new(5);
        let v = random_values(&mut rng, 3000);
        let h = Histogram::new(&v, None).unwrap();
        let a = lloyd(&h, 8, 42);
        assert_eq!(a, lloyd(&h, 8, 42));
        let direct: f64 = v
            .iter()
            .map(|&x| a.iter().map(|c| (x as f64 - c).powi(2)).fold(f64::INFINITY, f64::min))
            .sum();
        assert!((h.sse(&a) - direct).abs() < 1e-6 * direct, "{} vs {direct}", h.sse(&a));
    }
}
