//! Float mode of the tile (SPEC.md, "Float mode" and "Tile (GEMV) contract"): the widths the
//! tile derives from (E, M), its float compensation unit, and its golden vectors.
//!
//! `y[n] = RNE_32(Σ_j LUT[p_j] + Σ_{j∈O} t_j)`, `t_j = RNE_F(RNE_F(x_j − ca[ia_j]) · cw[iw_nj])`,
//! the sum exact. In the RTL (`tile::generate` with a float config):
//! - the vector phase is the integer tile's with the float encoder (thresholds `t_i` through cfg),
//!   float Orizuru, and residual slots that hold the F pattern `RNE_F(x − ca[ia])`
//!   (`kllm_fp_sub`, one per popped value, in the cycle that writes the slot);
//! - each compensation MAC ([`comp_unit`]) is `kllm_fp_mul` (`RNE_F(r · cw)`), a register, then
//!   `kllm_fp_to_fixed`, summed exactly (`comp_acc_bits`): two stages per step;
//! - each PE line is the float line without its rounder (`pe_line::generate_float_exact`), so
//!   the join adds two exact sums (`sum_bits`) and rounds once per line (`kllm_fixed_to_f32`).
//! The other added units are combinational inside existing stages. The cycle model is the
//! integer tile's plus the compensation stage ([`COMP_PIPE_STAGES`]: a row's compensation
//! result one cycle later, the same throughput). The weight-index buffer holds indices only, so it is the integer tile's;
//! [`golden`] loads and reads it the way the integer golden does, with F data.

use serde::Serialize;

use crate::config::QuantConfig;
use crate::fp::FloatFormat;
use crate::golden::{hex_lanes, GoldenWriter};
use crate::pe_fp::{self, Style};
use crate::reference::gemv::GemvFp;
use crate::rng::Rng;
use crate::tile::{self, TileConfig, TileDerived};
use crate::verilog::{clog2, if_, if_else, nb, sext, Design, Handle, Item, Module};

/// Float mode's widths of a tile (manifest and `explain`: `float.*`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TileFloat {
    /// `quant.numerics`.
    pub numerics: String,
    pub e: u32,
    pub m: u32,
    /// An F pattern: raw activations, centroids, thresholds, table entries, residuals.
    pub f_bits: u32,
    /// Signed width of an F value's exact fixed point (2^E + M − 1); bit 0 weighs 2^−fixed_frac.
    pub fixed_bits: u32,
    pub fixed_frac: u32,
    /// A PE line's exact sum of up to k_max table entries: `acc_width(k_max, 0)`.
    pub line_acc_bits: u32,
    /// A compensation unit's exact sum of up to 2k terms: `acc_width(0, 2k)`.
    pub comp_acc_bits: u32,
    /// The join's exact sum of both, rounded once to binary32: `acc_width(k_max, 2k)`.
    pub sum_bits: u32,
    /// Pipeline registers in a compensation step ([`COMP_PIPE_STAGES`]): each is one more cycle
    /// from a row's last step to its compensation result (the tile's cycle model counts them).
    pub comp_pipe_stages: u32,
}

/// Registers inside the float compensation step: one, after each `kllm_fp_mul` (its product
/// `RNE_F(r · cw)`, F bits per MAC). Without it a step was operand select, the F multiply, the
/// F-to-fixed shift, the adder tree and the accumulator in one cycle (the float tile's longest
/// path); with it the multiply is one stage and convert-sum-accumulate the next.
pub const COMP_PIPE_STAGES: u32 = 1;

impl TileFloat {
    pub fn new(f: FloatFormat, q: &QuantConfig, c: &TileConfig) -> Self {
        let slots = 2 * c.k as u64;
        TileFloat {
            numerics: q.numerics.clone(),
            e: f.e(),
            m: f.m(),
            f_bits: f.width(),
            fixed_bits: f.fixed_width(),
            fixed_frac: (-f.unit_exp()) as u32,
            line_acc_bits: f.acc_width(c.k_max as u64, 0),
            comp_acc_bits: f.acc_width(0, slots),
            sum_bits: f.acc_width(c.k_max as u64, slots),
            comp_pipe_stages: COMP_PIPE_STAGES,
        }
    }
}

/// `kllm_tile_comp_fp_*`: the float compensation unit of one line. The capture of the weight
/// indices at the slots' positions is the integer unit's; each of the `comp_macs` MACs is an F
/// multiplier `RNE_F(r · cw[iw])`, a register, and an F-to-fixed converter, and the terms are
/// summed exactly; the step's enable and first flag follow the products one register behind.
pub fn comp_unit(d: &mut Design, q: &QuantConfig, g: &TileDerived, tf: &TileFloat, f: FloatFormat) -> Handle {
    let (sp, pb, bb, lb, fb, cb, cm, nw, l) =
        (g.slots_padded, g.pos_bits, g.beat_bits, g.lane_bits, tf.f_bits, tf.comp_acc_bits, g.comp_macs, q.nw, g.lanes);
    let fx = tf.fixed_bits;
    let t = g.comp_steps;
    let tb = clog2(t as u64);
    assert_eq!(tf.comp_pipe_stages, 1, "the float compensation unit is built with one register after its multipliers");
    let name = format!("kllm_tile_comp_fp_s{sp}_m{cm}_l{l}_p{pb}_w{nw}_e{}m{}_a{cb}_pipe1", tf.e, tf.m);
    if d.get(&name).is_none() {
        let tree = crate::pe_line::add_tree_module(d, cm, cb);
        let mul = pe_fp::mul_unit(d, f);
        let to_fixed = pe_fp::to_fixed_unit(d, f);
        let mut m = Module::new(&name);
        m.doc(format!(
            "Outlier compensation of one PE line, float mode ({}): {sp} slots (position, residual r = RNE_F(x - ca[ia(x)])), \
             {cm} multipliers, {t} step(s) per row.",
            tf.numerics
        ));
        m.doc("sum over slots of RNE_F(r * cw[iw at the slot's position]), exact; empty slots hold r = +0.");
        m.doc("Two stages per step: select and multiply | convert, sum and accumulate. o_acc is final one cycle after");
        m.doc("the integer unit's (the cycle after the delayed last step).");
        m.input("clk", 1, "clock").input("rst", 1, "synchronous reset: no step in flight");
        m.input("i_fire", 1, "a weight beat of the row transfers")
            .input("i_beat", bb, "its beat within the row")
            .input("i_widx", l * nw, "this line's weight index of lane i at [i*NW +: NW]")
            .input("i_handoff", 1, "the row's last beat: captured indices become MAC operands")
            .input("i_step_en", 1, "a MAC step this cycle");
        if t > 1 {
            m.input("i_step", tb, "which slots: step*CM ..");
        }
        m.input("i_first", 1, "first step of a row: the sum restarts")
            .input("i_slot_pos", sp * pb, "slot s's position at [s*P_W +: P_W]")
            .input("i_slot_r", sp * fb, "slot s's residual at [s*F_W +: F_W], an F pattern")
            .input("i_cw", (1 << nw) * fb, "weight centroid j at [j*F_W +: F_W], an F pattern")
            .output_signed("o_acc", cb, &format!("the row's compensation, exact in units of 2^-{}, once its last step is done", tf.fixed_frac));
        for (p, v) in [("P_W", pb), ("F_W", fb), ("NW", nw), ("A_W", cb), ("LB", lb)] {
            m.localparam(p, 0, v as i64);
        }
        m.comment("Per slot: capture register (filled as the row's beats pass) and MAC operand register.");
        m.wire("iw_bus", sp * nw);
        let gw = |name: &str, width: u32, expr: String| Item::Wire { name: name.into(), width, signed: false, depth: None, init: Some(expr) };
        let slot_body = vec![
            gw("beat", bb, format!("i_slot_pos[s*P_W+LB +: {bb}]")),
            gw("lane", lb, "i_slot_pos[s*P_W +: LB]".into()),
            gw("hit", 1, "i_beat == beat".into()),
            gw("iw_new", nw, "i_widx[lane*NW +: NW]".into()),
            Item::Reg { name: "cap_q".into(), width: nw, signed: false, depth: None },
            Item::Reg { name: "op_q".into(), width: nw, signed: false, depth: None },
            Item::Clocked {
                label: "capture".into(),
                body: vec![
                    if_("i_fire & hit", vec![nb("cap_q", "iw_new")]),
                    if_("i_handoff", vec![nb("op_q", "hit ? iw_new : cap_q")]),
                ],
            },
            Item::Assign { lhs: "iw_bus[s*NW +: NW]".into(), rhs: "op_q".into() },
        ];
        m.push(Item::GenFor { label: "g_slot".into(), var: "s".into(), count: sp, body: slot_body });
        m.comment(format!(
            "{cm} float MACs. Stage 1 (multiply): slot step*CM+u's residual times cw of its captured index,\n\
             rounded once to F (the FP16 MAC's second rounding), into prod_q. Stage 2 (accumulate): its exact\n\
             {fx}-bit value, so the terms add without error."
        ));
        m.wire("terms", cm * cb);
        let sel = if t > 1 { "(i_step*CM + u)".to_string() } else { "u".to_string() };
        if t > 1 {
            m.localparam("CM", 0, cm as i64);
        }
        let mac_body = vec![
            gw("r", fb, format!("i_slot_r[{sel}*F_W +: F_W]")),
            gw("iw", nw, format!("iw_bus[{sel}*NW +: NW]")),
            gw("cw", fb, "i_cw[iw*F_W +: F_W]".into()),
            Item::Wire { name: "prod".into(), width: fb, signed: false, depth: None, init: None },
            Item::Reg { name: "prod_q".into(), width: fb, signed: false, depth: None },
            Item::Wire { name: "term".into(), width: fx, signed: true, depth: None, init: None },
            Item::Instance { module: mul.clone(), name: "u_mul".into(), conns: vec![("a".into(), "r".into()), ("b".into(), "cw".into()), ("p".into(), "prod".into())] },
            // Loaded every cycle: only a product whose step is marked in step_en_q is accumulated.
            Item::Clocked { label: "multiply_stage".into(), body: vec![nb("prod_q", "prod")] },
            Item::Instance { module: to_fixed.clone(), name: "u_to_fixed".into(), conns: vec![("f".into(), "prod_q".into()), ("q".into(), "term".into())] },
            Item::Assign { lhs: "terms[u*A_W +: A_W]".into(), rhs: sext("term", fx, cb) },
        ];
        m.push(Item::GenFor { label: "g_mac".into(), var: "u".into(), count: cm, body: mac_body });
        m.wire("step_sum", cb);
        m.instance(&tree, "u_sum", &[("i_terms", "terms".into()), ("o_sum", "step_sum".into())]);
        m.comment("The step's control, one stage behind with its products (a reset drops a step in flight).");
        m.reg("step_en_q", 1).reg("first_q", 1);
        m.clocked(
            "step_stage",
            vec![if_else("rst", vec![nb("step_en_q", "1'b0")], vec![nb("step_en_q", "i_step_en")]), nb("first_q", "i_first")],
        );
        m.reg_signed("acc_q", cb);
        m.comment(format!(
            "|sum| <= 2k * (largest finite F value) < 2^{}: the {cb}-bit exact accumulator cannot overflow.",
            cb - 1
        ));
        m.clocked("accumulate", vec![if_("step_en_q", vec![nb("acc_q", format!("(first_q ? {cb}'sd0 : acc_q) + $signed(step_sum)"))])]);
        m.assign("o_acc", "acc_q");
        d.add(m);
    }
    Handle::of(d, &name, serde_json::Value::Null)
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

/// What the tile's tables hold, so a GEMV with the same codebooks and k loads nothing.
#[derive(Default)]
pub struct LoadedFp {
    tables: Option<(Vec<u64>, Vec<u64>)>,
    k: Option<usize>,
    /// Inputs were written since the last `sync` (a cfg write must start a segment).
    pending: bool,
}

/// Loads `g`'s tables (if they changed) and its k: LUT patterns, encoder thresholds, ca, cw.
fn write_tables(q: &QuantConfig, d: &TileDerived, g: &GemvFp, w: &mut GoldenWriter, loaded: &mut LoadedFp) {
    let dw = d.cfg_data_bits;
    let tables = (g.ca.clone(), g.cw.clone());
    if loaded.tables.as_ref() != Some(&tables) {
        let cb = g.codebooks(q.nw).expect("checked GEMV");
        let thresholds = g.f.encoder_thresholds(&g.ca).expect("ascending codebook");
        for (region, words) in [
            (tile::REGION_LUT, &cb.lut),
            (tile::REGION_MIDPOINT, &thresholds),
            (tile::REGION_CA, &g.ca),
            (tile::REGION_CW, &g.cw),
        ] {
            for (j, &v) in words.iter().enumerate() {
                w.cfg(tile::cfg_addr(d, region, j as u64), &hex_lanes(&[v], dw));
            }
        }
        loaded.tables = Some(tables);
    }
    w.cfg(tile::cfg_addr(d, tile::REGION_K, 0), &hex_lanes(&[g.k as u64], dw));
    loaded.k = Some(g.k);
}

/// Writes one GEMV (tables first when they differ from what is loaded), every row streamed;
/// lanes past K carry junk (finite F values, extremes too), lines without a row junk indices.
fn write_gemv(q: &QuantConfig, c: &TileConfig, d: &TileDerived, g: &GemvFp, rng: &mut Rng, w: &mut GoldenWriter, loaded: &mut LoadedFp) {
    write_gemv_from(q, c, d, g, &[], rng, w, loaded)
}

/// Writes one GEMV; `from[gi]` = Some(entry): group gi's rows are read from the weight buffer
/// (one read token naming the group's first entry; the rows must be there), None (or `from`
/// empty): streamed. As the integer tile's `write_gemv_from`, with F patterns.
#[allow(clippy::too_many_arguments)]
fn write_gemv_from(
    q: &QuantConfig,
    c: &TileConfig,
    d: &TileDerived,
    g: &GemvFp,
    from: &[Option<u32>],
    rng: &mut Rng,
    w: &mut GoldenWriter,
    loaded: &mut LoadedFp,
) {
    let y = g.expected(q.nw).unwrap_or_else(|e| panic!("a float GEMV the golden writer built is refused: {e}"));
    let kk = g.k_len();
    assert!(kk >= 1 && kk <= c.k_max as usize && g.k <= c.k as usize && !g.rows.is_empty());
    if loaded.tables.as_ref() != Some(&(g.ca.clone(), g.cw.clone())) || loaded.k != Some(g.k) {
        if loaded.pending {
            w.sync();
            loaded.pending = false;
        }
        write_tables(q, d, g, w, loaded);
    }
    loaded.pending = true;
    let (l, p) = (c.lanes as usize, c.lines as usize);
    let fb = d.cfg_data_bits;
    let nb = kk.div_ceil(l);
    for bi in 0..nb {
        let mut vals = vec![0u64; l];
        let mut keep = vec![0u64; l];
        for (lane, v) in vals.iter_mut().enumerate() {
            let pos = bi * l + lane;
            if pos < kk {
                *v = g.x[pos];
                keep[lane] = 1;
            } else {
                let s = [Style::Any, Style::Huge, Style::Tiny][rng.below(3) as usize];
                *v = pe_fp::random_f(rng, g.f, s);
            }
        }
        let last = bi == nb - 1;
        let keep = if last { keep } else { (0..l).map(|_| rng.below(2)).collect() };
        w.input_on("x", &[hex_lanes(&vals, fb), hex_lanes(&keep, 1), (last as u8).to_string()]);
    }
    // Weight beats, group by group; a group read from the buffer is one token (its idx junk).
    let groups = g.rows.len().div_ceil(p);
    for gi in 0..groups {
        let rows: Vec<u64> = (0..p).map(|j| (gi * p + j < g.rows.len()) as u64).collect();
        if let Some(Some(entry)) = from.get(gi) {
            let junk: Vec<u64> = (0..p * l).map(|_| rng.below(1 << q.nw)).collect();
            let last = gi == groups - 1;
            tile::w_beat(d, w, rng, hex_lanes(&junk, q.nw), hex_lanes(&rows, 1), last, tile::OP_READ, Some(*entry as u64));
            continue;
        }
        for bi in 0..nb {
            let idx = tile::entry_indices(q, c, &g.rows, gi, bi, rng);
            let last = gi == groups - 1 && bi == nb - 1;
            tile::w_beat(d, w, rng, hex_lanes(&idx, q.nw), hex_lanes(&rows, 1), last, tile::OP_STREAM, None);
        }
    }
    for gi in 0..groups {
        let vals: Vec<u64> = (0..p).map(|j| *y.get(gi * p + j).unwrap_or(&0) as u64).collect();
        let rows: Vec<u64> = (0..p).map(|j| (gi * p + j < g.rows.len()) as u64).collect();
        w.out(&[hex_lanes(&vals, d.y_bits), hex_lanes(&rows, 1)]);
    }
}

fn real(f: FloatFormat, p: u64) -> f64 {
    f.to_f64(p).expect("finite")
}

/// The F value equal to `v`, if `v` is one exactly (the edge cases are built from such values).
fn exact(f: FloatFormat, v: f64) -> Option<u64> {
    let p = f.from_f64(v).ok()?;
    (real(f, p) == v).then_some(p)
}

/// Random codebooks for the tile: `ca` strictly ascending as real values (duplicates, −0 next
/// to +0 included, are redrawn), the table finite.
fn random_codebooks(rng: &mut Rng, f: FloatFormat, q: &QuantConfig, sa: Style, sw: Style) -> (Vec<u64>, Vec<u64>) {
    loop {
        let (mut ca, cw) = pe_fp::random_codebooks(rng, f, q, sa, sw);
        ca.sort_by(|a, b| real(f, *a).partial_cmp(&real(f, *b)).unwrap());
        if ca.windows(2).all(|p| real(f, p[0]) < real(f, p[1])) {
            return (ca, cw);
        }
    }
}

/// A random raw activation vector of length `kk`: all equal, three values full of ties (both
/// zeros among them), extremes, centroid-scale values with rare spikes, subnormals and zeros,
/// values at and next to the encoder's thresholds and the centroids, or any finite values.
fn random_x(rng: &mut Rng, f: FloatFormat, ca: &[u64], kk: usize) -> Vec<u64> {
    let neg_zero = 1u64 << (f.e() + f.m());
    let any = |rng: &mut Rng| pe_fp::random_f(rng, f, Style::Any);
    let extremes = [f.max_finite(), neg_zero | f.max_finite(), 0, neg_zero, 1, neg_zero | 1];
    match rng.below(9) {
        0 => vec![pe_fp::random_f(rng, f, Style::Typical); kk],
        1 => {
            let vals = [pe_fp::random_f(rng, f, Style::Typical), 0, neg_zero];
            (0..kk).map(|_| vals[rng.below(3) as usize]).collect()
        }
        2 => (0..kk).map(|_| extremes[rng.below(extremes.len() as u64) as usize]).collect(),
        3 | 4 => {
            let (lo, hi) = (real(f, ca[0]), real(f, ca[ca.len() - 1]));
            let span = (hi - lo).max(1e-3);
            (0..kk)
                .map(|_| {
                    if rng.chance(1, 30) {
                        if rng.chance(1, 2) { any(rng) } else { extremes[rng.below(2) as usize] }
                    } else {
                        let v = lo - span / 4.0 + rng.unit() * span * 1.5;
                        f.from_f64(v).unwrap_or(0)
                    }
                })
                .collect()
        }
        5 => (0..kk).map(|_| pe_fp::random_f(rng, f, Style::Tiny)).collect(),
        6 | 7 => {
            // Thresholds, centroids and their F neighbours: both sides of every decision.
            let t = f.encoder_thresholds(ca).expect("ascending codebook");
            let pool: Vec<u64> = t.iter().chain(ca).copied().collect();
            (0..kk)
                .map(|_| {
                    let p = pool[rng.below(pool.len() as u64) as usize];
                    let key = f.order_key(p).unwrap() + rng.range(-1, 2);
                    f.from_key(key).unwrap_or(p)
                })
                .collect()
        }
        _ => (0..kk).map(|_| any(rng)).collect(),
    }
}

/// A random float GEMV (shapes as the integer tile's `random_gemv`); data whose compensation
/// would overflow F is redrawn (the reference refuses it). After 20 refused draws (huge weight
/// centroids make most residuals overflow) x is drawn from the centroids themselves: every
/// residual is then ±0 and every term finite, so the loop always ends.
fn random_gemv(rng: &mut Rng, q: &QuantConfig, c: &TileConfig, f: FloatFormat, ca: &[u64], cw: &[u64]) -> GemvFp {
    let shape = tile::random_gemv(rng, q, c, &[0, 1], &[0]);
    let kk = shape.x.len();
    for tries in 0..=20 {
        let x = if tries < 20 { random_x(rng, f, ca, kk) } else { (0..kk).map(|_| ca[rng.below(ca.len() as u64) as usize]).collect() };
        let g = GemvFp { f, ca: ca.to_vec(), cw: cw.to_vec(), x, rows: shape.rows.clone(), k: shape.k };
        if g.expected(q.nw).is_ok() {
            return g;
        }
    }
    panic!("a vector of centroids has finite compensation terms (residuals are zero)")
}

/// The edge GEMVs (written first, each checked by a unit test to hold what it claims for fp16):
/// ±(largest finite) far from its centroid, residuals that are exact RNE ties (both directions),
/// products that are ties, ±0 everywhere, subnormal vectors and codebooks, and compensation
/// cancelling the centroid sum to exactly +0. The tie values follow from M (fp16: residuals
/// 2049 and 2051, products 1025 · 1.5 and 1027 · 1.5); a case whose values are not all values of
/// the format, or that the reference refuses, is left out (so a narrow format gets fewer). Tiles
/// with fewer than 4 centroids per codebook get none.
pub fn edge_gemvs(q: &QuantConfig, c: &TileConfig, f: FloatFormat) -> Vec<(&'static str, GemvFp)> {
    if q.na < 2 || q.nw < 2 {
        return vec![];
    }
    let v = |x: f64| exact(f, x);
    let (na, nw) = (1usize << q.na, 1usize << q.nw);
    let neg_zero = 1u64 << (f.e() + f.m());
    // Codebooks padded to 2^na / 2^nw entries: ca continues with the next F values up.
    let ca_of = |vals: &[f64]| -> Option<Vec<u64>> {
        let mut ca: Vec<u64> = vals.iter().map(|&x| v(x)).collect::<Option<_>>()?;
        while ca.len() < na {
            let next = f.from_key(f.order_key(*ca.last().unwrap()).ok()? + 1)?;
            ca.push(next);
        }
        Some(ca)
    };
    let cw_of = |vals: &[f64]| (0..nw).map(|i| v(vals[i % vals.len()])).collect::<Option<Vec<u64>>>();
    let xs = |vals: &[f64]| vals.iter().map(|&x| v(x)).collect::<Option<Vec<u64>>>();
    let rows_of = |kk: usize, n: usize| -> Vec<Vec<u32>> { (0..n).map(|r| (0..kk).map(|j| ((r + j) % nw) as u32).collect()).collect() };
    let k = c.k as usize;
    let max = f.max_finite();
    let (big, half) = (2f64.powi(f.m() as i32 + 1), 2f64.powi(f.m() as i32));
    let u = 2f64.powi(f.unit_exp());
    let cases: Vec<(&'static str, Option<GemvFp>)> = vec![
        // The largest finite value of either sign far from every centroid: max − 2 rounds back to
        // max (its neighbours are further apart), times |cw| ≤ 1 it stays finite.
        ("x = ±max far from the centroids", (|| {
            let mut x = xs(&[1.0, -0.75, 0.5, 3.0])?;
            x.splice(0..0, [max, neg_zero | max]);
            x.extend([max, neg_zero | max]);
            Some(GemvFp { f, ca: ca_of(&[-2.0, -1.0, 1.0, 2.0])?, cw: cw_of(&[0.5, -0.5, 0.25, -1.0])?, rows: rows_of(x.len(), 5), x, k })
        })()),
        // Residual ties: with ca = ±3, x = ±(2^(M+1) + 4) gives ±(2^(M+1) + 1), halfway between two
        // F values (to the even 2^(M+1)); x = ±(2^(M+1) + 6) gives ±(2^(M+1) + 3) (to the even
        // 2^(M+1) + 4). Product ties: x = 2^M + 4 and −(2^M + 6) give the odd residuals 2^M + 1 and
        // −(2^M + 3), times cw = ±1.5 halfway between two F values.
        ("residual and product RNE ties", (|| {
            let x = xs(&[big + 4.0, -(big + 4.0), big + 6.0, -(big + 6.0), half + 4.0, -(half + 6.0), 0.5, -0.5])?;
            Some(GemvFp { f, ca: ca_of(&[-3.0, -1.0, 1.0, 3.0])?, cw: cw_of(&[1.5, -1.5, 3.0, -0.75])?, rows: rows_of(x.len(), 5), x, k })
        })()),
        // ±0: a vector of zeros of both signs (all ties: outliers by position), a −0 centroid.
        ("±0 values and a -0 centroid", (|| {
            let x: Vec<u64> = (0..12).map(|j| if j % 3 == 0 { neg_zero } else { 0 }).collect();
            let mut ca = ca_of(&[-1.0, 0.0, 1.0, 2.0])?;
            ca[1] = neg_zero;
            Some(GemvFp { f, ca, cw: cw_of(&[1.0, -0.0, 2.0, -3.0])?, rows: rows_of(x.len(), 3), x, k })
        })()),
        // Subnormals: tiny x against tiny centroids (residuals exact, products underflow to ±0).
        ("subnormals", (|| {
            let x = xs(&[u, -u, 3.0 * u, -7.0 * u, 5.0 * u, 0.0, 2.0 * u, -2.0 * u])?;
            Some(GemvFp { f, ca: ca_of(&[-4.0 * u, -u, u, 4.0 * u])?, cw: cw_of(&[0.5, 1.0, 8.0, -3.0])?, rows: rows_of(x.len(), 4), x, k })
        })()),
        // Compensation cancels the centroid sum: x = (3, −1.5), ca = (−2, −1, 1, 2): ia = 3 and 0
        // (−1.5 is the midpoint of −2 and −1, a tie to the lower index), residuals 1 and 0.5;
        // cw[1] = 1, cw[2] = 2 on the row (1, 2): LUT 2 − 4 = −2, compensation 1 + 1 = 2: S = 0, +0.
        ("compensation cancelling the sum to +0", (|| {
            let mut cw = cw_of(&[0.5, 1.0, 2.0, -1.0])?;
            cw[1] = v(1.0)?;
            cw[2] = v(2.0)?;
            let rows = vec![vec![1, 2], vec![2, 1], vec![1, 2]];
            Some(GemvFp { f, ca: ca_of(&[-2.0, -1.0, 1.0, 2.0])?, cw, rows, x: xs(&[3.0, -1.5])?, k: 1.min(k) })
        })()),
    ];
    cases.into_iter().filter_map(|(n, g)| g.filter(|g| g.expected(q.nw).is_ok()).map(|g| (n, g))).collect()
}

/// The codebook styles the random segments take in turn (as the PE line's float golden).
const STYLES: [(Style, Style); 7] = [
    (Style::Typical, Style::Typical),
    (Style::Any, Style::Typical),
    (Style::Tiny, Style::Typical),
    (Style::Huge, Style::Unit),
    (Style::Unit, Style::Huge),
    (Style::Tiny, Style::Tiny),
    (Style::Typical, Style::Any),
];

/// Random float GEMVs in segments of fresh codebooks (shapes in turn, as the PE line's float
/// golden), the edge GEMVs first, then the integer tile's timed segments. With a weight
/// buffer the random GEMVs read their rows from it the way a layer does (`random_buffered`),
/// and the timed segments include the integer tile's buffered ones.
pub fn golden(q: &QuantConfig, c: &TileConfig, d: &TileDerived, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let f = q.float().expect("float mode");
    let mut rng = Rng::new(seed);
    tile::header("tile", d, w);
    let mut loaded = LoadedFp::default();
    for (_, g) in edge_gemvs(q, c, f) {
        write_gemv(q, c, d, &g, &mut rng, w, &mut loaded);
    }
    if d.weight_buffer_rows > 0 {
        random_buffered(q, c, d, f, vectors, &mut rng, w, &mut loaded);
    } else {
        let mut done = 0;
        let mut seg = 0;
        while done < vectors {
            let (sa, sw) = STYLES[seg % STYLES.len()];
            seg += 1;
            let (ca, cw) = random_codebooks(&mut rng, f, q, sa, sw);
            let n = 25.min(vectors - done);
            for _ in 0..n {
                let g = random_gemv(&mut rng, q, c, f, &ca, &cw);
                write_gemv(q, c, d, &g, &mut rng, w, &mut loaded);
            }
            done += n;
        }
    }
    // Timed segments: each starts with a cfg write (the runtime k), so the bench waits for idle.
    // Buffered ones load their rows in an untimed segment of their own first (no x beats, so
    // no mid-segment reset), each GEMV's at its own place; a reload segment's later GEMVs are
    // preceded (inside the timed segment) by the loads of their rows over the first's.
    let (ca, cw) = random_codebooks(&mut rng, f, q, Style::Typical, Style::Typical);
    for t in tile::timed_workloads(c, d) {
        let gemvs: Vec<GemvFp> = t
            .gemvs
            .iter()
            .map(|&(kk, rows)| {
                let x = (0..kk).map(|_| pe_fp::random_f(&mut rng, f, Style::Typical)).collect();
                let rows = (0..rows).map(|_| (0..kk).map(|_| rng.below(1 << q.nw) as u32).collect()).collect();
                GemvFp { f, ca: ca.clone(), cw: cw.clone(), x, rows, k: c.k as usize }
            })
            .collect();
        let (mut from, mut reloads) = (vec![], vec![]);
        if t.buffered {
            if loaded.pending {
                w.sync();
            }
            let rows: Vec<(&[Vec<u32>], usize)> = gemvs.iter().map(|g| (g.rows.as_slice(), g.k_len())).collect();
            (from, reloads) = tile::timed_loads(q, c, d, &rows, t.reload, &mut rng, w);
            loaded.pending = true;
        }
        if loaded.pending {
            w.sync();
        }
        loaded.pending = false;
        loaded.k = None;
        write_tables(q, d, &gemvs[0], w, &mut loaded);
        w.timing(t.cycles);
        for (i, g) in gemvs.iter().enumerate() {
            for beat in reloads.get(i).map(Vec::as_slice).unwrap_or(&[]) {
                w.input_on("w", beat);
            }
            write_gemv_from(q, c, d, g, from.get(i).map(Vec::as_slice).unwrap_or(&[]), &mut rng, w, &mut loaded);
        }
        w.sync();
        loaded.pending = false;
    }
}

/// A layer for the weight buffer: F codebooks, K, rows and its runtime k.
struct BufLayer {
    ca: Vec<u64>,
    cw: Vec<u64>,
    rows: Vec<Vec<u32>>,
    k: usize,
}

/// A fresh activation vector for `rows` under a layer's codebooks: drawn as `random_x` until
/// the reference accepts it (compensation terms finite), after 20 refusals from the centroids
/// themselves (residuals ±0, always accepted).
fn token_x(rng: &mut Rng, f: FloatFormat, nw: u32, layer: &BufLayer, k: usize) -> GemvFp {
    let kk = layer.rows[0].len();
    for tries in 0..=20 {
        let x = if tries < 20 {
            random_x(rng, f, &layer.ca, kk)
        } else {
            (0..kk).map(|_| layer.ca[rng.below(layer.ca.len() as u64) as usize]).collect()
        };
        let g = GemvFp { f, ca: layer.ca.clone(), cw: layer.cw.clone(), x, rows: layer.rows.clone(), k };
        if g.expected(nw).is_ok() {
            return g;
        }
    }
    panic!("a vector of centroids has finite compensation terms (residuals are zero)")
}

/// Random GEMVs of a float tile with a weight buffer, as the integer tile's `random_buffered`:
/// the buffer is two halves; a layer's rows are loaded into one half while the GEMVs of the
/// previous layer (one to four tokens, fresh x each, the same rows, the codebook styles in
/// turn) read the other half, their load beats in chunks between those GEMVs' weight beats.
/// About one group in eight is streamed instead of read, one token in four has another k.
#[allow(clippy::too_many_arguments)]
fn random_buffered(q: &QuantConfig, c: &TileConfig, d: &TileDerived, f: FloatFormat, vectors: u32, rng: &mut Rng, w: &mut GoldenWriter, loaded: &mut LoadedFp) {
    let half = d.weight_buffer_entries / 2;
    let mut seg = 0;
    let mut new_layer = |rng: &mut Rng| {
        let (sa, sw) = STYLES[seg % STYLES.len()];
        seg += 1;
        let (ca, cw) = random_codebooks(rng, f, q, sa, sw);
        let t = random_gemv(rng, q, c, f, &ca, &cw);
        BufLayer { rows: tile::buffer_layer_rows(q, c, d, &t.rows, t.k_len(), rng), ca, cw, k: t.k }
    };
    let mut cur = new_layer(rng);
    let mut h = 0u32;
    if loaded.pending {
        w.sync();
    }
    let mut firsts = tile::write_loads(q, c, d, &cur.rows, 0, rng, w);
    loaded.pending = true;
    let mut done = 0;
    while done < vectors {
        let next = new_layer(rng);
        let (loads, next_firsts) = tile::plan_loads(q, c, d, &next.rows, (1 - h) * half, rng);
        let tokens = (1 + rng.below(4) as u32).min(vectors - done);
        let chunk = loads.len().div_ceil(tokens as usize);
        for t in 0..tokens as usize {
            let k = if rng.chance(1, 4) { rng.range(0, c.k as i64) as usize } else { cur.k };
            let g = token_x(rng, f, q.nw, &cur, k);
            let from: Vec<Option<u32>> = firsts.iter().map(|&e| if rng.chance(1, 8) { None } else { Some(e) }).collect();
            write_gemv_from(q, c, d, &g, &from, rng, w, loaded);
            for beat in loads.iter().skip(t * chunk).take(chunk) {
                w.input_on("w", beat);
            }
        }
        done += tokens;
        cur = next;
        firsts = next_firsts;
        h = 1 - h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn small() -> Config {
        Config::parse(&std::fs::read_to_string("generators/tile_fp16_small.toml").unwrap()).unwrap()
    }

    /// The edge GEMVs hold what `edge_gemvs` claims (checked on the values, not by restating
    /// the construction): a ±65504 outlier, residual ties rounded both ways, ±0 outliers and a
    /// −0 centroid, subnormal values, and a row whose result is +0 only because of compensation.
    #[test]
    fn edge_gemvs_hold_what_they_claim() {
        let cfg = small();
        let (q, c) = (&cfg.quant, cfg.tile.as_ref().unwrap());
        let f = q.float().unwrap();
        let e = edge_gemvs(q, c, f);
        assert_eq!(e.len(), 5, "fp16 has every edge GEMV");
        let get = |name: &str| &e.iter().find(|(n, _)| *n == name).unwrap().1;
        let neg_zero = 1u64 << 15;
        // Every edge GEMV is accepted by the reference.
        for (n, g) in &e {
            g.expected(q.nw).unwrap_or_else(|err| panic!("{n}: {err}"));
        }
        let g = get("x = ±max far from the centroids");
        let o = g.outliers();
        assert!(o.iter().any(|&j| g.x[j] == 0x7bff) && o.iter().any(|&j| g.x[j] == 0xfbff), "{o:?}");
        // Residual ties: the exact residual lies halfway between two F neighbours for at least
        // one outlier rounded down and one rounded up (in magnitude).
        let g = get("residual and product RNE ties");
        let cb = g.codebooks(q.nw).unwrap();
        let ia = cb.ia(&g.x).unwrap();
        let (mut down, mut up) = (0, 0);
        for &j in &g.outliers() {
            let exact = real(f, g.x[j]) - real(f, g.ca[ia[j]]);
            let r = real(f, f.sub_rne(g.x[j], g.ca[ia[j]]).unwrap());
            let ulp = 2f64.powi((exact.abs().log2().floor() as i32) - 10);
            if (exact - r).abs() == ulp / 2.0 {
                if r.abs() < exact.abs() { down += 1 } else { up += 1 }
            }
        }
        assert!(down >= 1 && up >= 1, "residual ties: {down} rounded down, {up} up");
        let mut product_ties = 0;
        for iw in &g.rows {
            for &j in &g.outliers() {
                let r = f.sub_rne(g.x[j], g.ca[ia[j]]).unwrap();
                let exact = real(f, r) * real(f, g.cw[iw[j] as usize]);
                let t = real(f, f.mul_rne(r, g.cw[iw[j] as usize]).unwrap());
                let ulp = 2f64.powi((exact.abs().log2().floor() as i32) - 10);
                product_ties += (exact != 0.0 && (exact - t).abs() == ulp / 2.0) as u32;
            }
        }
        assert!(product_ties >= 2, "{product_ties} product ties");
        let g = get("±0 values and a -0 centroid");
        assert!(g.x.contains(&0) && g.x.contains(&neg_zero) && g.ca.contains(&neg_zero));
        assert!(g.outliers().iter().any(|&j| g.x[j] == neg_zero));
        let g = get("subnormals");
        assert!(g.x.iter().filter(|&&x| x & 0x7c00 == 0 && x & 0x3ff != 0).count() >= 6);
        // +0 with compensation, and not +0 without it.
        let g = get("compensation cancelling the sum to +0");
        assert_eq!(g.expected(q.nw).unwrap()[0], 0);
        let g0 = GemvFp { k: 0, ..g.clone() };
        assert_ne!(g0.expected(q.nw).unwrap()[0], 0);
    }

    /// tile_fp16_buf's golden file exercises the buffer: its random part (before the first timed
    /// segment) loads rows and reads most groups from the buffer (op 2 tokens), and its timed segments are the integer
    /// tile_buf's (the buffered sweep and the reload segments included), with the same
    /// predicted cycles. Without a buffer no beat carries an op.
    #[test]
    fn buffered_golden_loads_and_reads_the_buffer() {
        let load = |p: &str| Config::parse(&std::fs::read_to_string(p).unwrap()).unwrap();
        let (fcfg, icfg) = (load("generators/tile_fp16_buf.toml"), load("generators/tile_buf.toml"));
        let (q, c) = (&fcfg.quant, fcfg.tile.as_ref().unwrap());
        let d = TileDerived::new(q, c);
        let mut w = GoldenWriter::new("t", 3);
        golden(q, c, &d, 40, 3, &mut w);
        let text = w.finish();
        // `in.w <idx> <rows> <last> <op> <addr>`
        let random_part = &text[..text.find("\ntiming ").unwrap()];
        let ops: Vec<&str> = random_part.lines().filter_map(|l| l.strip_prefix("in.w ")).map(|l| l.split(' ').nth(3).unwrap()).collect();
        let count = |op: &str| ops.iter().filter(|&&o| o == op).count();
        let (streamed, loads, tokens) = (count("0"), count("1"), count("2"));
        assert!(loads >= 100 && tokens >= 40 && streamed >= 1, "{streamed} streamed beats, {loads} loads, {tokens} read tokens");
        let timings: Vec<&str> = text.lines().filter(|l| l.starts_with("timing")).collect();
        let id = TileDerived::new(&icfg.quant, icfg.tile.as_ref().unwrap());
        let want = tile::timed_workloads(icfg.tile.as_ref().unwrap(), &id);
        assert_eq!(timings.len(), want.len());
        assert!(want.iter().filter(|t| t.buffered).count() >= 20);
        for (l, t) in timings.iter().zip(&want) {
            assert!(l.ends_with(&format!(" {}", t.cycles)), "{l} vs {} cycles", t.cycles);
        }
        let small = small();
        let ds = TileDerived::new(&small.quant, small.tile.as_ref().unwrap());
        let mut w = GoldenWriter::new("t", 3);
        golden(&small.quant, small.tile.as_ref().unwrap(), &ds, 5, 3, &mut w);
        assert!(w.finish().lines().filter(|l| l.starts_with("in.w ")).all(|l| l.split(' ').count() == 4));
    }
}
