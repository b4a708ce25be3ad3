//! 1-D K-Means for codebooks: k-means++ seeding + Lloyd, and an exact optimal solver.
//!
//! Both work on a [`Histogram`]: the distinct input values, sorted, with their total weights and
//! prefix sums of `w`, `w·x` and `w·x²`. In one dimension a cluster of a sorted set is a
//! contiguous range, so with prefix sums the mean and the squared error of any range cost O(1):
//!
//! - a Lloyd iteration is `k` binary searches (find the range between two midpoints) instead of a
//!   pass over every value, so Lloyd costs O(k log n) per iteration after the sort;
//! - the exact solver is the Ckmeans.1d.dp dynamic program `D[q][i] = min_j D[q-1][j] +
//!   cost(j, i)`, each layer solved by divide and conquer over the monotone split point
//!   (O(k n log n), n = distinct values).
//!
//! Real checkpoints store f16/bf16 weights, which have at most 65 536 distinct values, so both
//! solvers finish in milliseconds after the O(N) histogram; arbitrary f32 input is still exact,
//! only slower (the cost grows with the number of distinct values).
//!
//! Sample weights (the paper's Fisher-weighted K-Means for activations) are optional; equal
//! values are merged by adding their weights, which changes nothing in either objective.

use crate::rng::Rng;

/// Sorted distinct values with total weights and prefix sums (values shifted by their weighted
/// mean so that `Σw·x²` does not cancel catastrophically).
#[derive(Clone, Debug)]
pub struct Histogram {
    /// Distinct values, ascending.
    pub x: Vec<f64>,
    /// Total weight of each distinct value (> 0).
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
        let total: f64 = w.iter().sum();
        let shift = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / total;
        let n = x.len();
        let (mut pw, mut p1, mut p2) = (vec![0.0; n + 1], vec![0.0; n + 1], vec![0.0; n + 1]);
        for i in 0..n {
            let d = x[i] - shift;
            pw[i + 1] = pw[i] + w[i];
            p1[i + 1] = p1[i] + w[i] * d;
            p2[i + 1] = p2[i] + w[i] * d * d;
        }
        Ok(Histogram { x, w, shift, pw, p1, p2 })
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

/// The exact minimum-SSE `k` centroids (ascending; `min(k, distinct)` of them), by dynamic
/// programming over the sorted distinct values.
pub fn optimal(h: &Histogram, k: usize) -> Vec<f64> {
    let n = h.len();
    if n <= k {
        return h.x.clone();
    }
    // prev[i]: least SSE of the first i values in q-1 clusters; split[q][i]: where the last of
    // q clusters starts in the best solution for the first i values.
    let mut prev: Vec<f64> = (0..=n).map(|i| h.cost(0, i)).collect();
    let mut split: Vec<Vec<u32>> = vec![vec![0; n + 1]];
    for q in 2..=k {
        let mut cur = vec![f64::INFINITY; n + 1];
        let mut s = vec![0u32; n + 1];
        // Row i in q..=n may split at j in q-1..i (each cluster non-empty).
        solve_layer(h, &prev, &mut cur, &mut s, q, n, q - 1, n - 1);
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
    bounds.windows(2).filter_map(|b| h.mean(b[0], b[1])).collect()
}

/// Divide and conquer for one DP layer: the best split of row `mid` lies between those of its
/// neighbours (the split point is monotone in `i` for 1-D squared error).
#[allow(clippy::too_many_arguments)]
fn solve_layer(
    h: &Histogram,
    prev: &[f64],
    cur: &mut [f64],
    s: &mut [u32],
    lo: usize,
    hi: usize,
    jlo: usize,
    jhi: usize,
) {
    if lo > hi {
        return;
    }
    let mid = (lo + hi) / 2;
    let mut best = (f64::INFINITY, jlo);
    for (j, p) in prev.iter().enumerate().take(jhi.min(mid - 1) + 1).skip(jlo) {
        let v = p + h.cost(j, mid);
        if v < best.0 {
            best = (v, j);
        }
    }
    cur[mid] = best.0;
    s[mid] = best.1 as u32;
    if mid > lo {
        solve_layer(h, prev, cur, s, lo, mid - 1, jlo, best.1);
    }
    solve_layer(h, prev, cur, s, mid + 1, hi, best.1, jhi);
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
