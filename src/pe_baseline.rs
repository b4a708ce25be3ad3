//! Dequantize-and-multiply baseline PE line (`kllm_dq_pe_line`), generated next to
//! `kllm_pe_line` when `[pe_line] baseline = true`, for side-by-side area and throughput figures.
//!
//! It computes the same dot product `Y = Σ ca[ia_k]·cw[iw_k]` at the same throughput (`lanes`
//! index pairs per cycle) the conventional way: every lane looks its two indices up in
//! run-time-loaded codebooks, multiplies the centroids, an adder tree sums the lanes, and an
//! accumulator sums the beats. Same stream ports, same `y_bits`, same result bit for bit as the
//! PE line with `LUT = ca·cw`; only the codebook write port differs (two small codebooks instead
//! of one product table).
//!
//! Pipeline (one row per register stage, `timing` mirrors it):
//! ```text
//!  s_* ──► S1 input regs ──► S2 dequantize regs (ca, cw per lane) ──► S3 product regs
//!      ──► adder tree, a register after every 3 levels ──► accumulate ──► result FIFO ──► m_*
//! ```

use serde::Serialize;

use crate::config::{Config, QuantConfig};
use crate::pe_line;
use crate::registry::{BlockKind, Workload};
use crate::golden::{hex_lanes, hex_signed, GoldenWriter};
use crate::pe_line::{golden_dots, DotGolden, PeLineConfig, PeLineDerived, PePredicted};
use crate::reference;
use crate::verilog::{clog2, if_, if_else, lit, nb, sext, ubits, Design, Handle, Item, Module};

pub const TOP: &str = "kllm_dq_pe_line";

/// Adder levels between two registers of the lane tree. `kllm_pe_line`'s default weighing stage
/// is an 8-term tree (3 levels); capping the baseline at the same depth keeps both at a
/// comparable clock period, so cycles compare like for like.
pub const LEVELS_PER_STAGE: u32 = 3;

/// Every derived quantity of the baseline; the manifest and `explain` print this.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PeBaselineDerived {
    pub lanes: u32,
    pub na: u32,
    pub nw: u32,
    pub ac_bits: u32,
    pub wc_bits: u32,
    /// `cfg_addr` width: 1 + max(na, nw) (MSB selects the weight codebook).
    pub cfg_addr_bits: u32,
    /// `cfg_wdata` width: max(ac_bits, wc_bits), signed.
    pub cfg_data_bits: u32,
    /// Signed product width, ac_bits + wc_bits.
    pub product_bits: u32,
    /// Signed result width, the same as the PE line's for this config.
    pub y_bits: u32,
    pub k_max: u32,
    /// One ac_bits x wc_bits multiplier per lane.
    pub multipliers: u32,
    /// Adder levels of the lane tree, ceil(log2 lanes).
    pub tree_levels: u32,
    /// Register stages in the lane tree: one after every 3 levels and after the last.
    pub tree_stages: u32,
    /// Width of the tree's sum: product_bits + tree_levels, at most y_bits.
    pub tree_out_bits: u32,
    pub fifo_depth: u32,
    /// Cycles from the first input beat's transfer to the result's transfer, inclusive, for one
    /// dot product of `n` beats on an idle line: `n + latency_extra`.
    pub latency_extra: u32,
    /// Register bits in the RTL as written. Yosys reports log2(fifo_depth) more: it turns the
    /// result FIFO's read into a registered memory port with its own address register.
    pub register_bits: u64,
    pub predicted: PePredicted,
    /// Float mode's widths (absent in integer mode). Then `ac_bits`, `wc_bits` and
    /// `cfg_data_bits` are the F pattern width, `product_bits` the exact fixed-point width of a
    /// lane's product `RNE_F(ca·cw)` entering the tree, the tree and the accumulator sum at
    /// `float.acc_bits`, and `y_bits` is 32 (a binary32 pattern).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float: Option<crate::pe_fp::FloatDerived>,
}

/// Register stages before the accumulator besides the tree's: S1, S2, S3.
const FRONT_STAGES: u32 = 3;

impl PeBaselineDerived {
    pub fn new(q: &QuantConfig, c: &PeLineConfig) -> Self {
        let pe = PeLineDerived::new(q, c);
        let l = c.lanes;
        let float = pe.float.clone();
        // Codebook entry widths, the tree's term width, the result on m_y, the accumulator, and
        // the registered product (an F pattern in float mode, converted after the register).
        let (ab, wb, pb, yb, acc, s3b) = match &float {
            None => (q.ac_bits, q.wc_bits, q.ac_bits + q.wc_bits, pe.y_bits, pe.y_bits, q.ac_bits + q.wc_bits),
            Some(f) => (f.f_bits, f.f_bits, f.fixed_bits, f.y_bits, f.acc_bits, f.f_bits),
        };
        let levels = clog2(l as u64);
        let stages = levels.div_ceil(LEVELS_PER_STAGE);
        // Edges from the first transfer to the result's pop: the front stages and tree stages,
        // the accumulate edge (which pushes into the FIFO) and the pop.
        let latency_extra = FRONT_STAGES + stages + 1;
        let fifo_depth = fifo_depth(latency_extra);
        let (lw, ybw) = (l as u64, acc as u64);
        let tree_regs: u64 = tree_shape(l, pb, acc)
            .iter()
            .filter(|lv| lv.registered)
            .map(|lv| 2 + lv.nodes as u64 * lv.width as u64) // valid, last, sums
            .sum();
        let register_bits = (2 + lw * (q.na as u64 + q.nw as u64 + 1)) // S1: valid, last, indices, keep
            + (2 + lw * (ab + wb) as u64) // S2: valid, last, ca and cw per lane
            + (2 + lw * s3b as u64) // S3: valid, last, products
            + tree_regs
            + ybw + 1 // accumulator, acc_fresh
            + ubits(fifo_depth as u64) as u64 // credits
            + (1u64 << q.na) * ab as u64 + (1u64 << q.nw) * wb as u64 // codebooks
            + fifo_depth as u64 * ybw + 2 * (clog2(fifo_depth as u64) as u64 + 1); // result FIFO
        let mut d = PeBaselineDerived {
            lanes: l,
            na: q.na,
            nw: q.nw,
            ac_bits: ab,
            wc_bits: wb,
            cfg_addr_bits: 1 + q.na.max(q.nw),
            cfg_data_bits: ab.max(wb),
            product_bits: pb,
            y_bits: yb,
            k_max: c.k_max,
            multipliers: l,
            tree_levels: levels,
            tree_stages: stages,
            tree_out_bits: (pb + levels).min(acc),
            fifo_depth,
            latency_extra,
            register_bits,
            predicted: PePredicted::default(),
            float,
        };
        d.predicted = PePredicted::from_model(c.k_max, c.lanes, |beats| timing::cycles(&d, beats));
        d
    }
}

/// Result FIFO depth so that a ready sink never stalls the input: a dot product's credit is
/// taken when its last beat is accepted and comes back (registered) after its result's pop,
/// `latency_extra` edges later, while one-beat dot products may take a credit every cycle.
fn fifo_depth(latency_extra: u32) -> u32 {
    (latency_extra + 1).next_power_of_two().max(2)
}

/// One adder level of the lane tree: `nodes` sums of `width` bits, and whether a register
/// stage follows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TreeLevel {
    pub nodes: u32,
    pub width: u32,
    pub registered: bool,
}

/// Levels 1..=ceil(log2 n) of a tree over `n` terms of `w` bits. A level's sums are one bit wider
/// than its inputs, up to `cap` bits; past the cap, sums wrap modulo 2^cap, which is still exact
/// for anything whose true value fits `cap` bits (the dot product does).
pub fn tree_shape(n: u32, w: u32, cap: u32) -> Vec<TreeLevel> {
    let levels = clog2(n as u64);
    let mut out = vec![];
    let mut nodes = n;
    for j in 1..=levels {
        nodes = nodes.div_ceil(2);
        out.push(TreeLevel {
            nodes,
            width: (w + j).min(cap),
            registered: j % LEVELS_PER_STAGE == 0 || j == levels,
        });
    }
    out
}

/// `kllm_add_tree_pipe_n{n}_w{w}_o{o}`: sum of `n` two's-complement terms of `w` bits, with a
/// register after every [`LEVELS_PER_STAGE`] levels and after the last; the sum has `o` bits
/// (w + levels, or less when the caller caps it). Returns the module name and its stages.
pub fn add_tree_pipe_module(d: &mut Design, n: u32, w: u32, cap: u32) -> (String, u32) {
    assert!(n >= 2, "a one-term tree is a wire");
    let shape = tree_shape(n, w, cap);
    let o = shape.last().unwrap().width;
    let stages = shape.iter().filter(|l| l.registered).count() as u32;
    let name = format!("kllm_add_tree_pipe_n{n}_w{w}_o{o}");
    if d.get(&name).is_some() {
        return (name, stages);
    }
    let mut m = Module::new(&name);
    m.doc(format!(
        "Sum of {n} two's-complement terms of {w} bits in {} adder {}, registered after every \
         {LEVELS_PER_STAGE} levels and after the last ({stages} {}).",
        shape.len(),
        plural(shape.len() as u32, "level"),
        plural(stages, "stage")
    ));
    m.doc(format!(
        "Each level's sums are one bit wider than its inputs, up to {o} bits{}.",
        if o < w + shape.len() as u32 {
            "; beyond that they wrap, which is exact because the caller's total fits that width"
        } else {
            ", so no sum can overflow"
        }
    ));
    m.input("clk", 1, "clock")
        .input("i_terms", n * w, "term t at [t*W +: W]")
        .output("o_sum", o, &format!("sum of the terms {stages} {} earlier", plural(stages, "cycle")));
    let (mut prev, mut prev_nodes, mut prev_w) = ("i_terms".to_string(), n, w);
    for (j, lv) in shape.iter().enumerate() {
        let j = j as u32 + 1;
        let bus = format!("lvl{j}");
        let pairs = prev_nodes / 2;
        let grow = lv.width > prev_w;
        m.comment(format!(
            "Level {j}: {} {} of {} bits{}.",
            lv.nodes,
            plural(lv.nodes, "sum"),
            lv.width,
            if grow { "" } else { " (at the cap: wraps, exact for the final sum)" }
        ));
        m.wire(&bus, lv.nodes * lv.width);
        let ext = |e: &str| if grow { sext(e, prev_w, lv.width) } else { e.to_string() };
        m.push(Item::GenFor {
            label: format!("g_level{j}"),
            var: "node".into(),
            count: pairs,
            body: vec![
                Item::Wire {
                    name: "lhs".into(),
                    width: prev_w,
                    signed: false,
                    depth: None,
                    init: Some(format!("{prev}[(2*node)*{prev_w} +: {prev_w}]")),
                },
                Item::Wire {
                    name: "rhs".into(),
                    width: prev_w,
                    signed: false,
                    depth: None,
                    init: Some(format!("{prev}[(2*node+1)*{prev_w} +: {prev_w}]")),
                },
                Item::Assign {
                    lhs: format!("{bus}[node*{} +: {}]", lv.width, lv.width),
                    rhs: format!("{} + {}", ext("lhs"), ext("rhs")),
                },
            ],
        });
        if prev_nodes % 2 == 1 {
            // An odd term out passes to the next level unchanged (sign-extended).
            let odd = format!("lvl{j}_odd");
            m.wire_eq(&odd, prev_w, format!("{prev}[{} +: {prev_w}]", (prev_nodes - 1) * prev_w));
            m.assign(format!("{bus}[{} +: {}]", pairs * lv.width, lv.width), ext(&odd));
        }
        prev = bus;
        if lv.registered {
            let q = format!("lvl{j}_q");
            m.reg(&q, lv.nodes * lv.width);
            m.clocked(&format!("stage_lvl{j}"), vec![nb(&q, &prev)]);
            prev = q;
        }
        prev_nodes = lv.nodes;
        prev_w = lv.width;
    }
    m.assign("o_sum", prev);
    d.add(m);
    (name, stages)
}

/// "stage" or "stages", for generated comments.
fn plural(n: u32, word: &str) -> String {
    if n == 1 { word.to_string() } else { format!("{word}s") }
}

/// Builds the baseline as module `module` (`kllm_dq_pe_line` as a design's top) and its
/// sub-modules into `d`.
pub fn generate(d: &mut Design, q: &QuantConfig, c: &PeLineConfig, module: &str) -> Handle {
    let g = PeBaselineDerived::new(q, c);
    let fl = q.float().zip(g.float.clone());
    // yb: the accumulator (and result FIFO) width; the port m_y is 32 bits in float mode.
    let (l, ab, wb, pb) = (g.lanes, g.ac_bits, g.wc_bits, g.product_bits);
    let yb = fl.as_ref().map_or(g.y_bits, |(_, fd)| fd.acc_bits);
    let signed = fl.is_none();
    let (aw, dw, depth) = (g.cfg_addr_bits, g.cfg_data_bits, g.fifo_depth);
    let ob = ubits(depth as u64);
    let ts = g.tree_stages;

    let mut m = Module::new(module);
    if let Some((_, fd)) = &fl {
        m.doc(format!(
            "Dequantize-multiply baseline PE line, float mode ({}: E{}M{}): {l} index pairs per cycle \
             (na={}, nw={}), {l} F multipliers, K <= {}.",
            fd.numerics, fd.e, fd.m, q.na, q.nw, c.k_max
        ));
        m.doc("Y = RNE_32(sum over k of RNE_F(ca[idx_a_k] * cw[idx_w_k])), the sum exact: the same bits as kllm_pe_line.");
    } else {
        m.doc(format!(
            "Dequantize-multiply baseline PE line: {l} index pairs per cycle (na={}, nw={}), {l} \
             multipliers of {ab} x {wb} bits, K <= {}.",
            q.na, q.nw, c.k_max
        ));
        m.doc("Y = sum over k of ca[idx_a_k] * cw[idx_w_k]: the same result as kllm_pe_line with LUT = ca*cw.");
    }
    m.doc("Write the codebooks through cfg_* only while `idle` is high; K must not exceed K_MAX.");
    m.clock_reset();
    m.input("cfg_we", 1, "codebook write enable").input(
        "cfg_addr",
        aw,
        "MSB 0: activation centroid ca[cfg_addr[NA-1:0]]; MSB 1: weight centroid cw[cfg_addr[NW-1:0]]",
    );
    match &fl {
        None => m.input_signed("cfg_wdata", dw, "centroid, signed; the low AC_W or WC_W bits are written"),
        Some((_, fd)) => m.input("cfg_wdata", dw, &format!("centroid, a finite {} bit pattern", fd.numerics)),
    };
    m.input("s_valid", 1, "input beat valid")
        .output("s_ready", 1, "input beat accepted when valid && ready")
        .input("s_idx_a", l * q.na, "activation index of lane i at [i*NA +: NA]")
        .input("s_idx_w", l * q.nw, "weight index of lane i at [i*NW +: NW]")
        .input("s_keep", l, "lane i holds a reduction element")
        .input("s_last", 1, "last beat of this dot product")
        .output("m_valid", 1, "result valid")
        .input("m_ready", 1, "result taken when valid && ready");
    match &fl {
        None => m.output_signed("m_y", yb, "dot product, signed"),
        Some(_) => m.output("m_y", 32, "dot product RNE_32(S), binary32 bit pattern (S = 0 gives +0)"),
    };
    m.output("idle", 1, "nothing in flight: codebook writes are safe");

    for (name, value) in [("NA", q.na), ("NW", q.nw), ("AC_W", ab), ("WC_W", wb), ("P_W", pb), ("Y_W", yb)] {
        m.localparam(name, 0, value as i64);
    }

    // ---------------------------------------------------------------- codebooks
    m.comment(
        "Codebooks, loaded at run time: 2^NA activation and 2^NW weight centroids. One write port\n\
         serves both; the address MSB picks the codebook.",
    );
    if signed {
        m.reg_array_signed("ca_q", ab, 1 << q.na).reg_array_signed("cw_q", wb, 1 << q.nw);
    } else {
        m.reg_array("ca_q", ab, 1 << q.na).reg_array("cw_q", wb, 1 << q.nw);
    }
    m.clocked(
        "codebook_write",
        vec![
            if_(
                format!("cfg_we & ~cfg_addr[{}]", aw - 1),
                vec![nb("ca_q[cfg_addr[NA-1:0]]", "cfg_wdata[AC_W-1:0]")],
            ),
            if_(
                format!("cfg_we & cfg_addr[{}]", aw - 1),
                vec![nb("cw_q[cfg_addr[NW-1:0]]", "cfg_wdata[WC_W-1:0]")],
            ),
        ],
    );

    // ---------------------------------------------------------------- S1: input registers
    m.comment(format!(
        "Input handshake. The pipeline never stalls; instead a dot product takes a result-FIFO\n\
         credit when its last beat is accepted and returns it when its result is popped. With\n\
         {depth} credits for a {}-cycle credit loop, a ready sink never holds up the input.",
        g.latency_extra
    ));
    m.reg("outstanding_q", ob);
    m.assign("s_ready", format!("(outstanding_q < {})", lit(ob, depth as u64)));
    m.wire_eq("in_fire", 1, "s_valid & s_ready");
    m.reg("s1_valid_q", 1)
        .reg("s1_last_q", 1)
        .reg("s1_idx_a_q", l * q.na)
        .reg("s1_idx_w_q", l * q.nw)
        .reg("s1_keep_q", l);
    m.clocked(
        "stage1",
        vec![
            nb("s1_valid_q", "rst ? 1'b0 : in_fire"),
            if_(
                "in_fire",
                vec![
                    nb("s1_last_q", "s_last"),
                    nb("s1_idx_a_q", "s_idx_a"),
                    nb("s1_idx_w_q", "s_idx_w"),
                    nb("s1_keep_q", "s_keep"),
                ],
            ),
        ],
    );

    // ---------------------------------------------------------------- S2: dequantize
    m.comment(if signed {
        "S2: every lane reads its two centroids. A dropped lane (keep = 0) loads zeros, so its\n\
         junk indices contribute nothing (and its multiplier does not toggle)."
    } else {
        "S2: every lane reads its two centroids. A dropped lane (keep = 0) loads +0, so its junk\n\
         indices contribute nothing (and its multiplier does not toggle)."
    });
    m.reg("s2_valid_q", 1).reg("s2_last_q", 1).reg("s2_ca_q", l * ab).reg("s2_cw_q", l * wb);
    // A one-bit bus is declared without a range and cannot be bit-selected (one lane, 1-bit index).
    let lane_field = |bus: &str, bits: u32, part: &str| {
        if l * bits == 1 { bus.to_string() } else { format!("{bus}[{part}]") }
    };
    let idx_a = lane_field("s1_idx_a_q", q.na, "lane*NA +: NA");
    let idx_w = lane_field("s1_idx_w_q", q.nw, "lane*NW +: NW");
    let keep = lane_field("s1_keep_q", 1, "lane");
    m.push(Item::GenFor {
        label: "g_dequantize".into(),
        var: "lane".into(),
        count: l,
        body: vec![
            Item::Wire {
                name: "ca_rd".into(),
                width: ab,
                signed,
                depth: None,
                init: Some(format!("ca_q[{idx_a}]")),
            },
            Item::Wire {
                name: "cw_rd".into(),
                width: wb,
                signed,
                depth: None,
                init: Some(format!("cw_q[{idx_w}]")),
            },
            Item::Clocked {
                label: "dequantize".into(),
                body: vec![
                    nb("s2_ca_q[lane*AC_W +: AC_W]", format!("{keep} ? ca_rd : {{AC_W{{1'b0}}}}")),
                    nb("s2_cw_q[lane*WC_W +: WC_W]", format!("{keep} ? cw_rd : {{WC_W{{1'b0}}}}")),
                ],
            },
        ],
    });
    m.clocked(
        "stage2",
        vec![nb("s2_valid_q", "rst ? 1'b0 : s1_valid_q"), nb("s2_last_q", "s1_last_q")],
    );

    // ---------------------------------------------------------------- S3: multiply
    let tree_in = if let Some((f, fd)) = &fl {
        let mul = crate::pe_fp::mul_unit(d, *f);
        let to_fixed = crate::pe_fp::to_fixed_unit(d, *f);
        m.comment(format!(
            "S3: one {} multiplier per lane, RNE_F(ca * cw): the table entry the index line loads.",
            fd.numerics
        ));
        m.reg("s3_valid_q", 1).reg("s3_last_q", 1).reg("s3_prod_q", l * ab);
        let operand = |name: &str, bus: &str| Item::Wire {
            name: name.into(),
            width: ab,
            signed: false,
            depth: None,
            init: Some(format!("{bus}[lane*AC_W +: AC_W]")),
        };
        m.push(Item::GenFor {
            label: "g_multiply".into(),
            var: "lane".into(),
            count: l,
            body: vec![
                operand("op_a", "s2_ca_q"),
                operand("op_w", "s2_cw_q"),
                Item::Wire { name: "prod".into(), width: ab, signed: false, depth: None, init: None },
                Item::Instance {
                    module: mul,
                    name: "u_fp_mul".into(),
                    conns: vec![("a".into(), "op_a".into()), ("b".into(), "op_w".into()), ("p".into(), "prod".into())],
                },
                Item::Clocked { label: "product".into(), body: vec![nb("s3_prod_q[lane*AC_W +: AC_W]", "prod")] },
            ],
        });
        m.comment(format!(
            "Every product to its exact value in units of 2^-{} (P_W bits): the tree and the\n\
             accumulator then sum exactly, in any order.",
            fd.fixed_frac
        ));
        m.wire("s3_fixed", l * pb);
        m.push(Item::GenFor {
            label: "g_to_fixed".into(),
            var: "lane".into(),
            count: l,
            body: vec![Item::Instance {
                module: to_fixed,
                name: "u_to_fixed".into(),
                conns: vec![
                    ("f".into(), "s3_prod_q[lane*AC_W +: AC_W]".into()),
                    ("q".into(), "s3_fixed[lane*P_W +: P_W]".into()),
                ],
            }],
        });
        "s3_fixed"
    } else {
        m.comment(
            "S3: one signed AC_W x WC_W multiplier per lane; the P_W = AC_W + WC_W bit product is exact.",
        );
        m.reg("s3_valid_q", 1).reg("s3_last_q", 1).reg("s3_prod_q", l * pb);
        m.push(Item::GenFor {
            label: "g_multiply".into(),
            var: "lane".into(),
            count: l,
            body: vec![
                Item::Wire {
                    name: "op_a".into(),
                    width: ab,
                    signed: true,
                    depth: None,
                    init: Some("s2_ca_q[lane*AC_W +: AC_W]".into()),
                },
                Item::Wire {
                    name: "op_w".into(),
                    width: wb,
                    signed: true,
                    depth: None,
                    init: Some("s2_cw_q[lane*WC_W +: WC_W]".into()),
                },
                Item::Wire {
                    name: "prod".into(),
                    width: pb,
                    signed: true,
                    depth: None,
                    init: Some("op_a * op_w".into()),
                },
                Item::Clocked { label: "product".into(), body: vec![nb("s3_prod_q[lane*P_W +: P_W]", "prod")] },
            ],
        });
        "s3_prod_q"
    };
    m.clocked(
        "stage3",
        vec![nb("s3_valid_q", "rst ? 1'b0 : s2_valid_q"), nb("s3_last_q", "s2_last_q")],
    );

    // ---------------------------------------------------------------- lane tree
    let to = g.tree_out_bits;
    let (sum, sum_valid, sum_last) = if ts == 0 {
        (tree_in.to_string(), "s3_valid_q".to_string(), "s3_last_q".to_string())
    } else {
        let (tree, stages) = add_tree_pipe_module(d, l, pb, yb);
        assert_eq!(stages, ts);
        m.comment(format!(
            "Lane tree: {} adder levels with a register after every {LEVELS_PER_STAGE} ({ts} {}), so no stage is\n\
             deeper than the 8-term weigh tree of kllm_pe_line's default config and both lines close\n\
             timing at a comparable clock: their cycle counts then compare like for like. Each beat's\n\
             valid and last travel alongside in a shift register.",
            g.tree_levels,
            plural(ts, "stage")
        ));
        m.wire("tree_sum", to).reg("tree_valid_q", ts).reg("tree_last_q", ts);
        m.instance(
            &tree,
            "u_lane_tree",
            &[("clk", "clk".into()), ("i_terms", tree_in.into()), ("o_sum", "tree_sum".into())],
        );
        let shift = |q: &str, from: &str| {
            if ts == 1 { from.to_string() } else { format!("{{{q}[{}:0], {from}}}", ts - 2) }
        };
        m.clocked(
            "tree_side",
            vec![
                if_else(
                    "rst",
                    vec![nb("tree_valid_q", lit(ts, 0))],
                    vec![nb("tree_valid_q", shift("tree_valid_q", "s3_valid_q"))],
                ),
                nb("tree_last_q", shift("tree_last_q", "s3_last_q")),
            ],
        );
        let top = |q: &str| if ts == 1 { q.to_string() } else { format!("{q}[{}]", ts - 1) };
        ("tree_sum".to_string(), top("tree_valid_q"), top("tree_last_q"))
    };

    // ---------------------------------------------------------------- accumulate
    m.comment(if fl.is_some() {
        "Accumulate the beats of one dot product exactly at Y_W bits. The first beat loads instead\n\
         of adding (no clear cycle); the last beat's total goes straight into the result FIFO.\n\
         |S| <= K_MAX * (largest finite F value) < 2^(Y_W-1): nothing can overflow for K <= K_MAX."
    } else {
        "Accumulate the beats of one dot product at Y_W bits. The first beat loads instead of\n\
         adding (no clear cycle); the last beat's total goes straight into the result FIFO.\n\
         |Y| <= K_MAX * 2^(P_W-2) < 2^(Y_W-1): nothing can overflow for K <= K_MAX."
    });
    m.reg("acc_q", yb).reg("acc_fresh_q", 1);
    m.wire_eq("sum_valid", 1, &sum_valid).wire_eq("sum_last", 1, &sum_last);
    m.wire_eq("beat_sum", to, &sum);
    m.wire_eq("beat_ext", yb, sext("beat_sum", to, yb));
    m.wire_eq("acc_next", yb, "(acc_fresh_q ? {Y_W{1'b0}} : acc_q) + beat_ext");
    m.clocked(
        "accumulate",
        vec![
            if_("sum_valid", vec![nb("acc_q", "acc_next")]),
            if_else(
                "rst",
                vec![nb("acc_fresh_q", "1'b1")],
                vec![if_("sum_valid", vec![nb("acc_fresh_q", "sum_last")])],
            ),
        ],
    );

    // ---------------------------------------------------------------- result FIFO
    let fifo = crate::common::fifo_module(d, yb, depth);
    m.comment("Results wait here for the sink; credits guarantee a free slot for every push.");
    m.wire_eq("push", 1, "sum_valid & sum_last");
    m.wire_eq("pop", 1, "m_valid & m_ready");
    m.wire_eq("claim", 1, "in_fire & s_last");
    m.wire("fifo_data", yb);
    m.instance(
        &fifo,
        "u_result_fifo",
        &[
            ("clk", "clk".into()),
            ("rst", "rst".into()),
            ("push", "push".into()),
            ("push_data", "acc_next".into()),
            ("pop", "pop".into()),
            ("m_valid", "m_valid".into()),
            ("m_data", "fifo_data".into()),
        ],
    );
    if let Some((_, fd)) = &fl {
        m.comment("The one rounding of the dot product, on the result's way out.");
        let round = crate::pe_fp::round_unit(d, fd);
        m.wire_signed_eq("sum_exact", yb, "fifo_data");
        m.instance(&round, "u_round_f32", &[("s", "sum_exact".into()), ("y", "m_y".into())]);
    } else {
        m.assign("m_y", "fifo_data");
    }
    m.clocked(
        "credits",
        vec![if_else(
            "rst",
            vec![nb("outstanding_q", lit(ob, 0))],
            vec![nb(
                "outstanding_q",
                format!("outstanding_q + {{{}'d0, claim}} - {{{}'d0, pop}}", ob - 1, ob - 1),
            )],
        )],
    );
    let tree_idle = if ts == 0 { String::new() } else { format!(" & (tree_valid_q == {})", lit(ts, 0)) };
    m.comment("Idle: no beat in the pipeline, no half-accumulated dot product, no result waiting.");
    m.assign(
        "idle",
        format!(
            "~s1_valid_q & ~s2_valid_q & ~s3_valid_q{tree_idle} & acc_fresh_q & (outstanding_q == {})",
            lit(ob, 0)
        ),
    );
    d.add(m);
    Handle::of(d, module, serde_json::to_value(&g).unwrap())
}

/// Registry entry: the PE line's conventional baseline, selected by `[pe_line] baseline = true`.
pub struct DqPeLineBlock;

impl BlockKind for DqPeLineBlock {
    fn name(&self) -> &'static str {
        "dq_pe_line"
    }
    fn top(&self) -> &'static str {
        TOP
    }
    fn section(&self) -> &'static str {
        "pe_line"
    }
    fn selected(&self, cfg: &Config) -> bool {
        cfg.pe_line.as_ref().is_some_and(|c| c.baseline)
    }
    fn derived(&self, cfg: &Config) -> serde_json::Value {
        serde_json::to_value(PeBaselineDerived::new(&cfg.quant, pe_line::section(cfg))).unwrap()
    }
    fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle {
        generate(d, &cfg.quant, pe_line::section(cfg), module)
    }
    fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
        golden(&cfg.quant, pe_line::section(cfg), vectors, seed, w)
    }
    fn workload(&self) -> Option<Workload> {
        Some(pe_line::gemv_workload())
    }
    fn baseline_of(&self) -> Option<&'static str> {
        Some("pe_line")
    }
    fn float_mode(&self) -> bool {
        true
    }
    fn accuracy_outliers(&self, cfg: &Config) -> Option<f64> {
        cfg.quant.float().is_none().then_some(0.0)
    }
}

/// Cycle model of the baseline's control, register for register, with an always-valid source
/// and an always-ready sink. It predicts what the testbench measures.
pub mod timing {
    use super::{PeBaselineDerived, FRONT_STAGES};

    /// Cycles from the first input transfer to the last result transfer, inclusive, for dot
    /// products of `beats[i]` beats streamed back to back.
    pub fn cycles(d: &PeBaselineDerived, beats: &[u32]) -> u64 {
        let (first, outs) = schedule(d, beats);
        crate::pe_line::timing::span(first, &outs)
    }

    /// Returns the edge of the first input transfer and the edge of each result transfer.
    pub fn schedule(d: &PeBaselineDerived, beats: &[u32]) -> (Option<u64>, Vec<u64>) {
        let mut line = Line::new(d);
        let (mut dot, mut beat) = (0usize, 0u32);
        let mut first = None;
        let mut outs = vec![];
        let mut edge = 0u64;
        let stages = (FRONT_STAGES + d.tree_stages) as u64;
        let total: u64 = beats.iter().map(|&b| b.max(1) as u64).sum();
        let limit = 100 + total * 2 + beats.len() as u64 * (stages + 4) * 2;
        while outs.len() < beats.len() {
            assert!(edge < limit, "timing model did not finish");
            // Combinational values before the edge.
            let in_fire = dot < beats.len() && line.s_ready();
            let pop = line.m_valid();
            let mut in_last = false;
            if in_fire {
                first.get_or_insert(edge);
                beat += 1;
                in_last = beat >= beats[dot].max(1);
                if in_last {
                    dot += 1;
                    beat = 0;
                }
            }
            line.edge(in_fire, in_last, pop);
            if pop {
                outs.push(edge);
            }
            edge += 1;
        }
        (first, outs)
    }

    /// The baseline line's control one clock edge at a time, for a caller that drives its
    /// handshakes itself (the tile's cycle model steps one per PE line, like
    /// `count_weigh::timing::Core`).
    #[derive(Clone, Debug)]
    pub struct Line {
        /// (valid, last) of S1, S2, S3 and each tree stage, oldest last.
        pipe: Vec<(bool, bool)>,
        fifo_depth: u32,
        /// Result-FIFO credits taken (a dot product's last beat) and not yet returned (its pop).
        outstanding: u32,
        /// Results waiting in the FIFO.
        fifo: u32,
    }

    impl Line {
        pub fn new(d: &PeBaselineDerived) -> Self {
            Line { pipe: vec![(false, false); (FRONT_STAGES + d.tree_stages) as usize], fifo_depth: d.fifo_depth, outstanding: 0, fifo: 0 }
        }

        /// `s_ready` before the edge: a result-FIFO credit is free (state only).
        pub fn s_ready(&self) -> bool {
            self.outstanding < self.fifo_depth
        }

        /// `m_valid` before the edge: a result waits in the FIFO.
        pub fn m_valid(&self) -> bool {
            self.fifo > 0
        }

        /// One clock edge: an input beat transfers (`in_fire`, the dot product's last beat if
        /// `in_last`) and/or the head result leaves (`pop`, only while `m_valid`).
        pub fn edge(&mut self, in_fire: bool, in_last: bool, pop: bool) {
            debug_assert!(!pop || self.m_valid(), "pop without a result");
            let (sv, sl) = *self.pipe.last().expect("at least the three front stages");
            let push = sv && sl;
            self.pipe.rotate_right(1);
            self.pipe[0] = (in_fire, in_last);
            self.outstanding = self.outstanding + (in_fire && in_last) as u32 - pop as u32;
            self.fifo = self.fifo + push as u32 - pop as u32;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

/// `cfg_addr` of activation centroid `i` and of weight centroid `i`.
fn ca_addr(i: usize) -> u64 {
    i as u64
}
fn cw_addr(d: &PeBaselineDerived, i: usize) -> u64 {
    (1u64 << (d.cfg_addr_bits - 1)) | i as u64
}

fn load_codebooks(w: &mut GoldenWriter, d: &PeBaselineDerived, ca: &[i64], cw: &[i64]) {
    for (i, v) in ca.iter().enumerate() {
        w.cfg(ca_addr(i), &hex_signed(*v, d.cfg_data_bits));
    }
    for (i, v) in cw.iter().enumerate() {
        w.cfg(cw_addr(d, i), &hex_signed(*v, d.cfg_data_bits));
    }
}

/// Writes the stimulus and expected results for `vectors` random dot products, in segments that
/// each load fresh random codebooks, then the two extreme dot products (largest |Y| of either
/// sign), then the PE line's timed workloads with cycle counts from the cycle model.
pub fn golden(q: &QuantConfig, c: &PeLineConfig, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let d = PeBaselineDerived::new(q, c);
    let k = c.k_max as usize;
    if q.float().is_some() {
        // The same stimulus and expectations as the float PE line's file; only the load differs.
        let load = |w: &mut GoldenWriter, ca: &[u64], cw: &[u64]| {
            for (i, v) in ca.iter().enumerate() {
                w.cfg(ca_addr(i), &hex_lanes(&[*v], d.cfg_data_bits));
            }
            for (i, v) in cw.iter().enumerate() {
                w.cfg(cw_addr(&d, i), &hex_lanes(&[*v], d.cfg_data_bits));
            }
        };
        let g = crate::pe_fp::FpGolden { block: "dq_pe_line", load: &load, cycles: &|beats| timing::cycles(&d, beats) };
        return crate::pe_fp::golden(q, c, vectors, seed, w, &g);
    }
    golden_dots(
        q,
        c,
        vectors,
        seed,
        w,
        &DotGolden {
            block: "dq_pe_line",
            load: &|w, ca, cw| load_codebooks(w, &d, ca, cw),
            cycles: &|beats| timing::cycles(&d, beats),
            // The overflow bound at both ends: K_MAX times the most negative centroids' product
            // (the largest Y), and K_MAX times the most negative activation and the most
            // positive weight.
            extra: &|w, rng, dot| {
                let mut ca = reference::random_codebook(rng, 1 << q.na, q.ac_bits);
                let mut cw = reference::random_codebook(rng, 1 << q.nw, q.wc_bits);
                ca[0] = -(1i64 << (q.ac_bits - 1));
                cw[0] = -(1i64 << (q.wc_bits - 1));
                let last_w = cw.len() - 1;
                if last_w > 0 {
                    cw[last_w] = (1i64 << (q.wc_bits - 1)) - 1;
                }
                load_codebooks(w, &d, &ca, &cw);
                for iw in [0u32, last_w as u32] {
                    dot(w, rng, &ca, &cw, &vec![0u32; k], &vec![iw; k]);
                }
                w.sync();
            },
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derived(q: &QuantConfig, lanes: u32, kmax: u32) -> PeBaselineDerived {
        PeBaselineDerived::new(q, &PeLineConfig { lanes, reduce_width: 1, k_max: kmax, baseline: true, ..PeLineConfig::default() })
    }

    #[test]
    fn single_dot_latency_is_beats_plus_extra() {
        let q = QuantConfig::default();
        for lanes in [1, 2, 4, 8, 9, 64, 512] {
            let d = derived(&q, lanes, 4096);
            assert_eq!(d.latency_extra, 4 + d.tree_stages);
            for n in [1, 2, 7, 256] {
                assert_eq!(timing::cycles(&d, &[n]), (n + d.latency_extra) as u64, "lanes={lanes} n={n}");
            }
        }
    }

    #[test]
    fn steady_state_is_one_beat_per_cycle() {
        let q = QuantConfig::default();
        for lanes in [1, 4, 64, 512] {
            let d = derived(&q, lanes, 4096);
            for n in [1, 2, 3, 32] {
                let (_, outs) = timing::schedule(&d, &[n; 40]);
                assert_eq!(outs[39] - outs[38], n as u64, "lanes={lanes} n={n}");
                // No bubble anywhere: 40 dot products take their beats plus one latency.
                assert_eq!(timing::cycles(&d, &[n; 40]), (40 * n + d.latency_extra) as u64);
            }
        }
    }

    #[test]
    fn same_result_width_as_the_pe_line() {
        for (na, nw, lanes, kmax) in [(2, 2, 4, 256), (3, 4, 64, 4096), (4, 4, 16, 16), (1, 8, 512, 1 << 20)] {
            let q = QuantConfig { na, nw, ..QuantConfig::default() };
            let c = PeLineConfig { lanes, reduce_width: 1, k_max: kmax, baseline: true, ..PeLineConfig::default() };
            assert_eq!(PeBaselineDerived::new(&q, &c).y_bits, PeLineDerived::new(&q, &c).y_bits);
        }
    }

    #[test]
    fn register_bits_by_hand() {
        // tiny: lanes 4, na = nw = 2, 8-bit centroids, K <= 256: y_bits 24, 2 tree levels in one stage.
        let q = QuantConfig { na: 2, nw: 2, ..QuantConfig::default() };
        let d = derived(&q, 4, 256);
        assert_eq!((d.product_bits, d.y_bits, d.tree_levels, d.tree_stages, d.tree_out_bits), (16, 24, 2, 1, 18));
        assert_eq!((d.latency_extra, d.fifo_depth, d.cfg_addr_bits, d.cfg_data_bits), (5, 8, 3, 8));
        // S1 2+4*5=22, S2 2+64=66, S3 66, tree 2+18=20, acc 24+1, credits 4, codebooks 32+32,
        // FIFO 8*24 + 2*4 = 200.
        assert_eq!(d.register_bits, 22 + 66 + 66 + 20 + 25 + 4 + 64 + 200);
        // wide: lanes 64, na 3, nw 4, K <= 4096: levels 3 and 6 registered (8 x 19 and 1 x 22 bits).
        let q = QuantConfig { na: 3, nw: 4, ..QuantConfig::default() };
        let d = derived(&q, 64, 4096);
        assert_eq!((d.y_bits, d.tree_levels, d.tree_stages, d.tree_out_bits, d.fifo_depth), (28, 6, 2, 22, 8));
        assert_eq!(d.register_bits, 514 + 1026 + 1026 + (2 + 8 * 19) + (2 + 22) + 29 + 4 + 192 + 232);
    }

    #[test]
    fn tree_widths_grow_to_the_cap() {
        let s = tree_shape(5, 16, 18);
        let got: Vec<_> = s.iter().map(|l| (l.nodes, l.width, l.registered)).collect();
        assert_eq!(got, [(3, 17, false), (2, 18, false), (1, 18, true)]);
        assert!(tree_shape(1, 16, 20).is_empty());
    }

    /// Replays a golden file's random section through the reference: the expected results are
    /// `reference::dot` of what the kept lanes carry, with the codebooks the file loaded.
    #[test]
    fn golden_matches_reference_dot() {
        let q = QuantConfig { na: 2, nw: 3, ac_bits: 6, wc_bits: 5, ..QuantConfig::default() };
        let c = PeLineConfig { lanes: 3, reduce_width: 1, k_max: 40, baseline: true, ..PeLineConfig::default() };
        let d = PeBaselineDerived::new(&q, &c);
        let mut w = GoldenWriter::new("t", 3);
        golden(&q, &c, 500, 3, &mut w);
        let text = w.finish();
        let field = |h: &str, bits: u32| {
            let v = i64::from_str_radix(h, 16).unwrap();
            (v << (64 - bits)) >> (64 - bits)
        };
        let (mut ca, mut cw) = (vec![0i64; 4], vec![0i64; 8]);
        let (mut ia, mut iw) = (vec![], vec![]);
        let mut checked = 0;
        for line in text.lines() {
            let t: Vec<&str> = line.split(' ').collect();
            match t[0] {
                "cfg" => {
                    let addr = u64::from_str_radix(t[1], 16).unwrap();
                    let v = field(t[2], d.cfg_data_bits);
                    if addr >> (d.cfg_addr_bits - 1) == 1 {
                        cw[(addr & 7) as usize] = v;
                    } else {
                        ca[(addr & 3) as usize] = v;
                    }
                }
                "in" => {
                    let (a, b, k) = (
                        u64::from_str_radix(t[1], 16).unwrap(),
                        u64::from_str_radix(t[2], 16).unwrap(),
                        u64::from_str_radix(t[3], 16).unwrap(),
                    );
                    for lane in 0..3 {
                        if k >> lane & 1 == 1 {
                            ia.push((a >> (2 * lane) & 3) as u32);
                            iw.push((b >> (3 * lane) & 7) as u32);
                        }
                    }
                }
                "out" => {
                    assert_eq!(field(t[1], d.y_bits), reference::dot(&ca, &cw, &ia, &iw), "{line}");
                    // The PE line's way gives the same number.
                    let lut = reference::lut(&ca, &cw, 3);
                    assert_eq!(reference::dot_by_counting(&lut, 3, &ia, &iw), reference::dot(&ca, &cw, &ia, &iw));
                    ia.clear();
                    iw.clear();
                    checked += 1;
                }
                _ => {}
            }
        }
        // 500 random, 2 extra (the baseline's own segment), the three manifest workloads, then
        // the length sweep: 32 weigh steps, so every length of 1..=96 beats that fits K <= 40.
        let sweep = crate::pe_line::back_to_back_lengths(32, 3, 40).len();
        assert_eq!(sweep, 13);
        assert_eq!(checked, 500 + 2 + 1 + 64 + 64 + crate::pe_line::BACK_TO_BACK * sweep);
        // The extreme dot product reaches the bound: K_MAX * (-32) * (-16).
        assert!(text.contains(&format!("out {}", hex_signed(40 * 32 * 16, d.y_bits))));
    }
}
