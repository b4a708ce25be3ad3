//! The KLLM tile (`kllm_tile`): one activation vector against every row of a weight-index
//! matrix, with look-ahead outlier compensation in hardware (SPEC "Tile (GEMV) contract").
//!
//! Built from the existing generators' handles — the activation encoder, Orizuru (with a keep
//! input for vectors shorter than `k_max`), `lines` PE lines — plus the tile's own parts: the
//! activation-index buffer, the outlier slots (position and residual `x − ca[ia(x)]`), one
//! compensation unit per line and the output join. docs/tile.md has the diagram and the reasons.
//!
//! ```text
//!  s_x ─┬─► act encoder ──► activation-index buffer (one beat-wide entry per beat) ──┐
//!       └─► Orizuru (k_max leaves; pads masked) ─► pops ─► encoder(2) ─► slots: pos, r │
//!  s_w (lines × lanes weight indices per beat) ─────┬──────────────────────────────────┤
//!                                                   ├─► PE line 0..P-1 (count, weigh) ─┤
//!                                                   └─► comp unit 0..P-1: capture iw at │
//!                                                       each slot, then Σ r·cw[iw] ─────┴─► join ─► m_y
//! ```
//! Phases per GEMV: the vector phase (x beats, then pad beats up to k_max, Orizuru's pops,
//! residuals) and the row phase (groups of `lines` rows in lockstep, one weight beat per cycle).
//! Time depends on K, the number of rows and the config only, never on the data or the runtime k.

use serde::{Deserialize, Serialize};

use crate::config::{in_range, power_of_two, Config, QuantConfig};
use crate::encoder::{self, EncoderConfig};
use crate::golden::{hex_lanes, hex_signed, GoldenWriter};
use crate::orizuru::{self, OrizuruConfig, OrizuruDerived};
use crate::pe_line::{self, PeLineConfig, PeLineDerived};
use crate::reference;
use crate::reference::gemv::Gemv;
use crate::registry::{BlockKind, Workload};
use crate::rng::Rng;
use crate::verilog::{
    clog2, if_, if_else, lit, nb, sext, ubits, zext, Design, Handle, Item, Module, Stmt,
};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TileConfig {
    /// PE lines (P): rows computed in lockstep.
    pub lines: u32,
    /// Index pairs per cycle and line; also activation values per input beat.
    pub lanes: u32,
    /// Multipliers of each line's weighted sum.
    pub reduce_width: u32,
    /// Multiply-accumulate units of each line's compensation unit.
    pub comp_macs: u32,
    /// Longest vector (K); Orizuru's leaf count, a power of two.
    pub k_max: u32,
    /// Outliers per side the hardware is built for (the runtime k, a cfg register, is <= k).
    pub k: u32,
    /// Orizuru's registered unit size (0: one flat tree).
    pub radix: u32,
    /// On-chip weight-index buffer, in rows of `k_max` indices (0: none, rows only stream in on
    /// s_w). `lines` times a power of two: whole groups of `lines` rows. Left out of the
    /// serialized config when 0, so configs without a buffer keep their hash.
    #[serde(skip_serializing_if = "is_zero")]
    pub weight_buffer_rows: u32,
    /// The PE lines: `"index"` (kllm_pe_line: counting and weighing) or `"dequant"` (the
    /// dequantize-multiply baseline line, `src/pe_baseline.rs`, at the same lanes; see
    /// `tile_dq`). Left out of the serialized config when `"index"`.
    #[serde(skip_serializing_if = "LineKind::is_index")]
    pub line: LineKind,
    /// Also emit `kllm_dq_tile`, this tile with dequantize-multiply lines, as the `dq_tile`
    /// block (the tile's baseline in sweeps). Left out of the serialized config when false.
    #[serde(skip_serializing_if = "crate::tile_dq::is_false")]
    pub baseline: bool,
}

pub use crate::tile_dq::LineKind;

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Default for TileConfig {
    fn default() -> Self {
        TileConfig { lines: 4, lanes: 16, reduce_width: 8, comp_macs: 8, k_max: 1024, k: 5, radix: 0, weight_buffer_rows: 0, line: LineKind::Index, baseline: false }
    }
}

impl TileConfig {
    pub fn validate(&self, q: &QuantConfig) -> Result<(), String> {
        in_range("tile.lines", self.lines, 1, 64)?;
        in_range("tile.lanes", self.lanes, 2, 512)?;
        power_of_two("tile.lanes", self.lanes)?;
        in_range("tile.k_max", self.k_max, 2 * self.lanes, 4096)
            .map_err(|e| format!("{e}; a vector must span at least two beats of `tile.lanes` = {}", self.lanes))?;
        power_of_two("tile.k_max", self.k_max)
            .map_err(|e| format!("{e} (Orizuru's leaf count; `tile.lanes` must divide it)"))?;
        in_range("tile.k", self.k, 1, self.k_max / 2)
            .map_err(|e| format!("{e}; at most half of `tile.k_max` per side"))?;
        in_range("tile.comp_macs", self.comp_macs, 1, 2 * self.k)
            .map_err(|e| format!("{e}; there are 2k = {} outlier slots to multiply", 2 * self.k))?;
        if self.weight_buffer_rows > 0 {
            let rows_max = self.weight_buffer_rows_max(q);
            let r = self.weight_buffer_rows;
            let groups = r / self.lines;
            if r % self.lines != 0 || !groups.is_power_of_two() || r > rows_max {
                let allowed = if rows_max == 0 {
                    "0 only: one group is above the limit".to_string()
                } else {
                    let p = self.lines;
                    let list: Vec<String> = [p, 2 * p, 4 * p].iter().filter(|&&v| v <= rows_max).map(u32::to_string).collect();
                    format!("`tile.lines` = {p} times a power of two: {}, … up to {rows_max}", list.join(", "))
                };
                return Err(format!(
                    "`tile.weight_buffer_rows` = {r} is out of range (allowed 0 = no buffer, or {allowed} rows of k_max = {} indices of {} bits, at most 2^24 bits)",
                    self.k_max, q.nw
                ));
            }
        }
        crate::tile_dq::validate(self, q)?;
        // The lines and Orizuru check the rest; their messages name this section's keys.
        self.pe_line().validate(q).map_err(|e| e.replace("`pe_line.", "`tile."))?;
        self.orizuru().validate(q).map_err(|e| e.replace("`orizuru.", "`tile."))
    }

    /// Most buffer rows: `lines` times the largest power of two whose rows of `k_max` indices of
    /// `nw` bits fit `WEIGHT_BUFFER_BITS_MAX` (0 when not even one group fits).
    pub fn weight_buffer_rows_max(&self, q: &QuantConfig) -> u32 {
        let group_bits = self.lines as u64 * self.k_max as u64 * q.nw as u64;
        let groups = WEIGHT_BUFFER_BITS_MAX / group_bits.max(1);
        if groups == 0 {
            0
        } else {
            self.lines * (1u32 << (63 - groups.leading_zeros()))
        }
    }

    /// The configuration of each PE line.
    pub fn pe_line(&self) -> PeLineConfig {
        PeLineConfig { lanes: self.lanes, reduce_width: self.reduce_width, k_max: self.k_max, baseline: false, ..PeLineConfig::default() }
    }

    /// The configuration of the tile's Orizuru.
    pub fn orizuru(&self) -> OrizuruConfig {
        OrizuruConfig { n: self.k_max, k: self.k, lanes: self.lanes, radix: self.radix, baseline: false }
    }
}

/// Largest weight-index buffer (bits): 16 Mbit, far above what a tile's SRAM budget allows,
/// low enough that simulation and synthesis of the generated memory stay possible.
pub const WEIGHT_BUFFER_BITS_MAX: u64 = 1 << 24;

/// `s_w_op` of a tile with a weight buffer: what a weight-stream beat is.
pub const OP_STREAM: u64 = 0;
pub const OP_LOAD: u64 = 1;
pub const OP_READ: u64 = 2;

/// cfg address regions (`cfg_addr = region << offset_bits | offset`).
pub const REGION_LUT: u64 = 0;
pub const REGION_MIDPOINT: u64 = 1;
pub const REGION_CA: u64 = 2;
pub const REGION_CW: u64 = 3;
pub const REGION_K: u64 = 4;

/// Every derived quantity of a tile; the manifest and `explain` print this.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TileDerived {
    pub lines: u32,
    pub lanes: u32,
    pub k_max: u32,
    pub k: u32,
    pub comp_macs: u32,
    pub reduce_width: u32,
    /// Beats of a k_max vector (Orizuru takes this many per vector; short vectors are padded).
    pub beats_max: u32,
    pub beat_bits: u32,
    pub lane_bits: u32,
    pub pos_bits: u32,
    /// Outlier slots (2k, padded to a multiple of comp_macs with empty slots).
    pub slots: u32,
    pub slots_padded: u32,
    /// Cycles a compensation unit needs per row: ceil(2k / comp_macs).
    pub comp_steps: u32,
    pub residual_bits: u32,
    pub comp_bits: u32,
    pub line_y_bits: u32,
    /// Signed width of one result: holds the largest |Y| for K <= k_max with 2k outliers.
    pub y_bits: u32,
    pub cfg_addr_bits: u32,
    pub cfg_data_bits: u32,
    pub cfg_offset_bits: u32,
    /// Result FIFO depth of the compensation path (rows handed over, result not yet out).
    pub comp_fifo_depth: u32,
    /// Cycles a line's weighing takes per row (1 with dequantize-multiply lines: they have no
    /// weighing phase, a row's products are summed as its beats stream).
    pub weigh_steps: u32,
    pub line_latency_extra: u32,
    /// The PE lines' kind; left out of the manifest for index lines.
    #[serde(rename = "line", skip_serializing_if = "LineKind::is_index")]
    pub line_kind: LineKind,
    pub encoder_latency: u32,
    pub orizuru_stages: u32,
    /// Weight-index buffer: rows (0: none), entries of one beat (`lines × lanes` indices), the
    /// entry address width and the bits it holds.
    pub weight_buffer_rows: u32,
    pub weight_buffer_entries: u32,
    pub weight_buffer_addr_bits: u32,
    pub weight_buffer_bits: u64,
    /// First x beat to the first weight beat of the vector's rows (constant: pads fill k_max).
    pub vector_phase_cycles: u64,
    /// Steady-state cycles per group of `lines` rows for K = k_max and for one-beat vectors:
    /// max(beats, weigh_steps, comp_steps).
    pub group_interval_kmax: u64,
    pub group_interval_one_beat: u64,
    /// Largest runtime-independent k whose compensation hides behind counting/weighing:
    /// ceil(2k / comp_macs) <= max(beats, weigh_steps), at K = k_max and at one beat.
    pub k_hidden_kmax: u64,
    pub k_hidden_one_beat: u64,
    /// The slowest branch of a GEMV of K = k_max with 64 rows and of one with K = lanes.
    pub bottleneck_kmax_rows64: String,
    pub bottleneck_one_beat_rows64: String,
    /// MACs per cycle of the K = k_max, 64-row GEMV (K · 64 / predicted cycles).
    pub macs_per_cycle_kmax_rows64: f64,
    pub predicted: TilePredicted,
    /// Float mode's widths (absent in integer mode; `src/tile_fp.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float: Option<crate::tile_fp::TileFloat>,
    /// The index PE line of this shape (also with dequantize-multiply lines: the golden file's
    /// timed lengths follow its weigh steps, so both tiles get the same stimulus).
    #[serde(skip)]
    pub line: PeLineDerived,
    /// The dequantize-multiply line, with `line = "dequant"`.
    #[serde(skip)]
    pub dq: Option<crate::pe_baseline::PeBaselineDerived>,
    #[serde(skip)]
    pub orz: OrizuruDerived,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TilePredicted {
    /// One GEMV, K = k_max, 64 rows (first input transfer to last output transfer, inclusive).
    pub gemv_kmax_rows64_cycles: u64,
    /// One GEMV, K = lanes (one beat), 64 rows.
    pub gemv_one_beat_rows64_cycles: u64,
    /// Two GEMVs back to back, K = k_max / 2, 2·lines + 1 rows each (a partial last group).
    pub two_gemvs_cycles: u64,
}

impl TileDerived {
    pub fn new(q: &QuantConfig, c: &TileConfig) -> Self {
        let line = PeLineDerived::new(q, &c.pe_line());
        let orz = OrizuruDerived::new(q, &c.orizuru());
        let beats_max = c.k_max / c.lanes;
        let slots = 2 * c.k;
        let comp_steps = slots.div_ceil(c.comp_macs);
        let residual_bits = q.x_bits + 1;
        let comp_bits = q.x_bits + q.wc_bits + ubits(slots as u64);
        // |Y| <= k_max · 2^(wc+ac-2) + 2k · 2^(x_bits) · 2^(wc-1).
        let bound: u128 = (c.k_max as u128) << (q.wc_bits + q.ac_bits - 2) | 0;
        let bound = bound + ((slots as u128) << (q.x_bits + q.wc_bits - 1));
        let y_bits = (128 - bound.leading_zeros()) + 1;
        // Float mode: residuals are F patterns, the compensation sum and the lines' sums are
        // exact fixed point, a result is a binary32 pattern, cfg carries F patterns.
        let float = q.float().map(|f| crate::tile_fp::TileFloat::new(f, q, c));
        let (residual_bits, comp_bits, y_bits, line_y_bits, cfg_data_bits) = match &float {
            None => (residual_bits, comp_bits, y_bits, line.y_bits, q.lut_bits()),
            Some(t) => (t.f_bits, t.comp_acc_bits, 32, t.line_acc_bits, t.f_bits),
        };
        let offset_bits = q.na + q.nw;
        let dq = (c.line == LineKind::Dequant).then(|| crate::pe_baseline::PeBaselineDerived::new(q, &c.pe_line()));
        let weigh_steps = if dq.is_some() { 1 } else { line.weigh_steps };
        let latency_extra = dq.as_ref().map_or(line.latency_extra, |b| b.latency_extra);
        let interval = |beats: u32| beats.max(weigh_steps).max(comp_steps) as u64;
        let hidden = |beats: u32| (c.comp_macs as u64 * beats.max(weigh_steps) as u64) / 2;
        let mut d = TileDerived {
            lines: c.lines,
            lanes: c.lanes,
            k_max: c.k_max,
            k: c.k,
            comp_macs: c.comp_macs,
            reduce_width: c.reduce_width,
            beats_max,
            beat_bits: clog2(beats_max as u64),
            lane_bits: clog2(c.lanes as u64),
            pos_bits: clog2(c.k_max as u64),
            slots,
            slots_padded: comp_steps * c.comp_macs,
            comp_steps,
            residual_bits,
            comp_bits,
            line_y_bits,
            y_bits,
            cfg_addr_bits: offset_bits + 3,
            cfg_data_bits,
            cfg_offset_bits: offset_bits,
            comp_fifo_depth: comp_fifo_depth(latency_extra, weigh_steps),
            weigh_steps,
            line_latency_extra: latency_extra,
            line_kind: c.line,
            encoder_latency: q.na + 1,
            orizuru_stages: orz.stages,
            weight_buffer_rows: c.weight_buffer_rows,
            weight_buffer_entries: c.weight_buffer_rows / c.lines * beats_max,
            weight_buffer_addr_bits: clog2((c.weight_buffer_rows / c.lines * beats_max) as u64),
            weight_buffer_bits: c.weight_buffer_rows as u64 * c.k_max as u64 * q.nw as u64,
            vector_phase_cycles: 0,
            group_interval_kmax: interval(beats_max),
            group_interval_one_beat: interval(1),
            k_hidden_kmax: hidden(beats_max),
            k_hidden_one_beat: hidden(1),
            bottleneck_kmax_rows64: String::new(),
            bottleneck_one_beat_rows64: String::new(),
            macs_per_cycle_kmax_rows64: 0.0,
            predicted: TilePredicted { gemv_kmax_rows64_cycles: 0, gemv_one_beat_rows64_cycles: 0, two_gemvs_cycles: 0 },
            float,
            line,
            dq,
            orz,
        };
        d.vector_phase_cycles = timing::vector_phase(&d);
        d.predicted = TilePredicted {
            gemv_kmax_rows64_cycles: timing::cycles(&d, &[(c.k_max, 64)]),
            gemv_one_beat_rows64_cycles: timing::cycles(&d, &[(c.lanes, 64)]),
            two_gemvs_cycles: timing::cycles(&d, &[(c.k_max / 2, 2 * c.lines + 1); 2]),
        };
        d.bottleneck_kmax_rows64 = timing::bottleneck(&d, c.k_max, 64);
        d.bottleneck_one_beat_rows64 = timing::bottleneck(&d, c.lanes, 64);
        let macs = c.k_max as f64 * 64.0 / d.predicted.gemv_kmax_rows64_cycles as f64;
        d.macs_per_cycle_kmax_rows64 = (macs * 100.0).round() / 100.0;
        d
    }
}

impl TileDerived {
    /// Pipeline registers inside a compensation step (0 in integer mode; float mode: one after
    /// each F multiplier, `tile_fp::COMP_PIPE_STAGES`): a row's compensation result is pushed
    /// this many cycles later than the cycle after its last step.
    pub fn comp_pipe(&self) -> u32 {
        self.float.as_ref().map_or(0, |f| f.comp_pipe_stages)
    }
}

/// Depth of the compensation result FIFO: enough rows in flight that, with a ready sink, a
/// handover never waits for a credit while the lines' results are still on their way
/// (`latency_extra` cycles behind the last beat, one group every >= weigh_steps cycles).
fn comp_fifo_depth(latency_extra: u32, weigh_steps: u32) -> u32 {
    (latency_extra / weigh_steps.max(1) + 3).next_power_of_two()
}

pub const TOP: &str = "kllm_tile";

/// The cycle model: the tile's control, one clock edge at a time, with the PE lines' counting
/// core stepped by its own model (`count_weigh::timing::Core`) and Orizuru's pops taken from
/// its model. Valid for streams without gaps and a sink that is always ready (timed segments).
pub mod timing {
    use super::TileDerived;
    use crate::tile_dq::LineModel as Core;

    /// Cycles from the first x transfer to the first weight transfer of that vector's rows:
    /// Orizuru's last pop of a k_max vector (x beats and pads back to back), then the outlier
    /// encoder's `na + 1` stages, the slot write, and one cycle to enter the row phase.
    pub fn vector_phase(d: &TileDerived) -> u64 {
        let (first, outs) = crate::orizuru::timing::orizuru_schedule(&d.orz, 1);
        let last = *outs.last().expect("orizuru pops k >= 1 values");
        assert!(outs.chunks(2).all(|p| p[0] == p[1]), "the two trees pop in lockstep");
        last - first + d.encoder_latency as u64 + 1
    }

    /// Edges of the first input transfer and of every output transfer for GEMVs `(K, rows)`
    /// streamed back to back.
    pub fn schedule(d: &TileDerived, gemvs: &[(u32, u32)]) -> (u64, Vec<u64>) {
        let steps: Vec<Step> = gemvs.iter().map(|&(k, rows)| Step { k, rows, buffered: false, loads: 0 }).collect();
        schedule_steps(d, &steps)
    }

    /// One GEMV of a timed workload: its shape, whether its groups are read tokens (rows from
    /// the weight buffer) or streamed beats, and the loads (s_w op 1) in front of its weight
    /// items on s_w.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct Step {
        pub k: u32,
        pub rows: u32,
        pub buffered: bool,
        pub loads: u32,
    }

    /// What s_w carries next: a run of `n` items of one kind.
    #[derive(Clone, Copy, PartialEq)]
    enum Item {
        Load,
        Token,
        LastToken,
        Beat,
    }

    /// `schedule` for GEMVs whose rows may come from the weight buffer, with loads between
    /// them: the RTL's reader (tokens once the vector's last x beat is in, one read issued per
    /// cycle into an output register, loads once every earlier read is issued, streamed beats
    /// once the reader is empty) stepped with the rest of the control.
    pub fn schedule_steps(d: &TileDerived, steps: &[Step]) -> (u64, Vec<u64>) {
        let v = vector_phase(d);
        let t = d.comp_steps;
        let mut core = Core::new(d);
        #[derive(PartialEq)]
        enum St {
            X,
            Vec(u64),
            Row,
        }
        let mut st = St::X;
        let (mut gi, mut group, mut beat) = (0usize, 0u32, 0u32);
        let (mut busy, mut step) = (false, 0u32);
        // done_q and the compensation pipeline behind it: bit i set = a row's last step was
        // i + 1 cycles ago; bit comp_pipe pushes its result into the FIFO.
        let pipe = d.comp_pipe();
        let mut done_line = 0u64;
        let (mut inflight, mut fifo) = (0u32, 0u32);
        // The weight stream, as runs of items.
        let mut sw: std::collections::VecDeque<(Item, u64)> = std::collections::VecDeque::new();
        for s in steps {
            let groups = s.rows.div_ceil(d.lines) as u64;
            let nb = s.k.div_ceil(d.lanes) as u64;
            sw.push_back((Item::Load, s.loads as u64));
            if s.buffered {
                sw.push_back((Item::Token, groups - 1));
                sw.push_back((Item::LastToken, 1));
            } else {
                sw.push_back((Item::Beat, groups * nb));
            }
        }
        sw.retain(|&(_, n)| n > 0);
        // The reader: reads left to issue, output register valid, last token taken.
        let (mut rd_left, mut rb_valid, mut got_last) = (0u64, false, false);
        let mut x_start = 0u64;
        let mut first = None;
        let mut outs = vec![];
        let total: u64 = steps.iter().map(|s| s.rows.div_ceil(d.lines) as u64).sum();
        // A generous bound: every group at its slowest interval plus the line's drain, every
        // vector phase and load, and slack; the model finishes far inside it.
        let per_group = (d.beats_max + d.weigh_steps + d.comp_steps) as u64;
        let loads: u64 = steps.iter().map(|s| s.loads as u64).sum();
        let limit = 10_000 + 4 * (total * per_group + loads + steps.len() as u64 * (v + 1_000));
        let mut edge = 0u64;
        while (outs.len() as u64) < total {
            assert!(edge < limit, "tile timing model did not finish");
            if st == St::X && gi < steps.len() && !busy {
                first.get_or_insert(edge);
                x_start = edge;
                st = St::Vec(edge + v);
            }
            if let St::Vec(start) = st {
                if edge >= start {
                    st = St::Row;
                }
            }
            let s = steps.get(gi).copied().unwrap_or(Step { k: d.lanes, rows: 1, buffered: false, loads: 0 });
            let nb = s.k.div_ceil(d.lanes);
            let groups = s.rows.div_ceil(d.lines);
            // The RTL's st_q is ST_X until the vector's last x beat is in.
            let rtl_st_x = st == St::X || edge < x_start + nb as u64;
            let head = sw.front().map(|&(i, _)| i);
            let last_beat = beat == nb - 1;
            let final_ = busy && step == t - 1;
            let gate = st == St::Row && (!last_beat || ((!busy || final_) && inflight < d.comp_fifo_depth));
            let rd_none = rd_left == 0;
            let rb_empty = rd_none && !rb_valid;
            let w_valid = rb_valid || (head == Some(Item::Beat) && rb_empty);
            let w_fire = w_valid && gate && core.s_ready();
            let rb_fire = rb_valid && w_fire;
            let rd_en = !rd_none && (!rb_valid || rb_fire);
            let rd_free = rd_none || (rd_left == 1 && rd_en);
            let tok_fire = matches!(head, Some(Item::Token | Item::LastToken)) && !rtl_st_x && !got_last && rd_free;
            let load_fire = head == Some(Item::Load) && rd_none;
            let beat_fire = w_fire && !rb_valid;
            let handoff = w_fire && last_beat;
            let pop = core.m_valid() && fifo > 0;
            // The edge.
            core.edge(w_fire, last_beat, pop);
            fifo = fifo + (done_line >> pipe & 1) as u32 - pop as u32;
            inflight = inflight + handoff as u32 - pop as u32;
            done_line = (done_line << 1 | final_ as u64) & ((1u64 << (pipe + 1)) - 1);
            step = if handoff { 0 } else if busy { step + 1 } else { step };
            busy = handoff || (busy && !final_);
            if tok_fire || load_fire || beat_fire {
                first.get_or_insert(edge);
                let f = sw.front_mut().unwrap();
                f.1 -= 1;
                if f.1 == 0 {
                    sw.pop_front();
                }
            }
            if tok_fire {
                rd_left = nb as u64;
            } else if rd_en {
                rd_left -= 1;
            }
            rb_valid = rd_en || (rb_valid && !rb_fire);
            if rtl_st_x {
                got_last = false;
            } else if tok_fire && head == Some(Item::LastToken) {
                got_last = true;
            }
            if w_fire {
                if last_beat {
                    beat = 0;
                    group += 1;
                    if group == groups {
                        group = 0;
                        gi += 1;
                        st = St::X;
                    }
                } else {
                    beat += 1;
                }
            }
            if pop {
                outs.push(edge);
            }
            edge += 1;
        }
        (first.unwrap_or(0), outs)
    }

    /// `cycles` of `schedule_steps`.
    pub fn cycles_steps(d: &TileDerived, steps: &[Step]) -> u64 {
        let (first, outs) = schedule_steps(d, steps);
        outs.last().map(|l| l - first + 1).unwrap_or(0)
    }

    /// First input transfer to last output transfer, inclusive.
    pub fn cycles(d: &TileDerived, gemvs: &[(u32, u32)]) -> u64 {
        let (first, outs) = schedule(d, gemvs);
        outs.last().map(|l| l - first + 1).unwrap_or(0)
    }

    /// Cycles of each further GEMV when `(k, rows)` GEMVs stream back to back: three minus two.
    pub fn back_to_back(d: &TileDerived, k: u32, rows: u32) -> u64 {
        cycles(d, &[(k, rows); 3]) - cycles(d, &[(k, rows); 2])
    }

    /// The branch that bounds one GEMV: the activation input (vector phase) or, per group of
    /// rows, counting (one weight beat per cycle: counting and weight streaming are the same
    /// branch here), weighing, or compensation.
    pub fn bottleneck(d: &TileDerived, k: u32, rows: u32) -> String {
        let nb = k.div_ceil(d.lanes) as u64;
        let groups = rows.div_ceil(d.lines) as u64;
        let mut per = vec![
            ("counting and weight streaming", nb),
            ("weighing", d.weigh_steps as u64),
            ("compensation", d.comp_steps as u64),
        ];
        if d.dq.is_some() {
            // Dequantize-multiply lines sum as the beats stream: no weighing branch.
            per.remove(1);
            per[0].0 = "dequantize-multiply and weight streaming";
        }
        let (name, c) = per.iter().max_by_key(|(_, c)| *c).unwrap();
        if d.vector_phase_cycles > groups * c {
            format!("activation input ({} cycles of vector phase > {groups} groups x {c})", d.vector_phase_cycles)
        } else {
            format!("{name} ({c} cycles per group of {} rows; vector phase {})", d.lines, d.vector_phase_cycles)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `explain --gemv K,ROWS[,OUTLIERS]`

/// Most rows `explain --gemv` models (the largest LLM projections have a few ten thousand).
pub const GEMV_ROWS_MAX: u32 = 65_536;

/// One GEMV's shape for `explain --gemv`: K, rows and (optionally) the outlier count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemvShape {
    pub k: u32,
    pub rows: u32,
    pub outliers: Option<u32>,
}

/// Parses `K,ROWS[,OUTLIERS]` against the tile's limits: one line naming the value and the
/// allowed range on error.
pub fn parse_gemv(text: &str, d: &TileDerived) -> Result<GemvShape, String> {
    let malformed = || {
        format!(
            "`--gemv` = '{text}' is not K,ROWS[,OUTLIERS]: two or three whole numbers separated by commas (e.g. {},64,{})",
            d.k_max,
            2 * d.k
        )
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(malformed());
    }
    let mut nums = vec![];
    for p in &parts {
        nums.push(p.parse::<u32>().map_err(|_| malformed())?);
    }
    let (k, rows) = (nums[0], nums[1]);
    if k < 1 || k > d.k_max {
        return Err(format!("`--gemv` K = {k} is out of range (allowed 1..={}, the tile's k_max)", d.k_max));
    }
    if rows < 1 || rows > GEMV_ROWS_MAX {
        return Err(format!("`--gemv` ROWS = {rows} is out of range (allowed 1..={GEMV_ROWS_MAX})"));
    }
    let outliers = nums.get(2).copied();
    if let Some(o) = outliers {
        let most = (2 * d.k).min(k);
        if o > most {
            return Err(format!(
                "`--gemv` OUTLIERS = {o} is out of range (allowed 0..={most}: at most 2k = {} positions for k = {} per side, and at most K = {k})",
                2 * d.k,
                d.k
            ));
        }
    }
    Ok(GemvShape { k, rows, outliers })
}

/// The cycle report of one GEMV: vector phase, row phase, single and back to back, the
/// bottleneck branch and for which k compensation hides behind counting. Every figure comes
/// from `timing` (the model the bench's timed segments check).
pub fn explain_gemv(name: &str, q: &QuantConfig, d: &TileDerived, g: GemvShape) -> String {
    let beats = g.k.div_ceil(d.lanes);
    let groups = g.rows.div_ceil(d.lines);
    let single = timing::cycles(d, &[(g.k, g.rows)]);
    let b2b = timing::back_to_back(d, g.k, g.rows);
    let interval = beats.max(d.weigh_steps).max(d.comp_steps);
    let macs = |c: u64| g.k as f64 * g.rows as f64 / c as f64;
    let peak = d.lines * d.lanes;
    let hidden = d.comp_macs * beats.max(d.weigh_steps) / 2;
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("  {k:<46} {v}\n"));
    line(
        "config",
        format!(
            "'{name}': {} lines x {} lanes, W{}A{}, k = {} per side, comp_macs = {}, k_max = {}",
            d.lines, d.lanes, q.nw, q.na, d.k, d.comp_macs, d.k_max
        ),
    );
    let outl = match g.outliers {
        Some(o) => format!(", {o} outlier positions"),
        None => String::new(),
    };
    line("GEMV", format!("K = {}, {} rows{outl}: {groups} group(s) of {} rows, {beats} beat(s) per row", g.k, g.rows, d.lines));
    line("vector phase (activation input)", format!("{} cycles (x, pads to k_max, Orizuru, residuals)", d.vector_phase_cycles));
    if d.dq.is_some() {
        line(
            "per group: dequantize-multiply / compensation",
            format!("{beats} / {} cycles -> one group every {interval} cycles back to back (dequantize-multiply lines)", d.comp_steps),
        );
    } else {
        line(
            "per group: counting / weighing / compensation",
            format!("{beats} / {} / {} cycles -> one group every {interval} cycles back to back", d.weigh_steps, d.comp_steps),
        );
    }
    line("row phase and drain", format!("{} cycles", single - d.vector_phase_cycles));
    line("single GEMV", format!("{single} cycles (first x transfer to last result)"));
    line("back to back", format!("{b2b} cycles per GEMV (each further GEMV of this shape)"));
    line(
        "MAC/cycle (single / back to back)",
        format!("{:.1} / {:.1} of {peak}", macs(single), macs(b2b)),
    );
    line("bottleneck", timing::bottleneck(d, g.k, g.rows));
    line(
        "compensation hides behind counting",
        format!(
            "for k <= {hidden} per side at this K (ceil(2k/{}) <= max({beats} beats, {} weigh steps)); this tile's k = {}: {}",
            d.comp_macs,
            d.weigh_steps,
            d.k,
            if d.k <= hidden { "hidden" } else { "compensation-bound" }
        ),
    );
    line(
        "  ... at K = k_max / one beat",
        format!("k <= {} / k <= {}", d.k_hidden_kmax, d.k_hidden_one_beat),
    );
    if d.comp_pipe() > 0 {
        line(
            "compensation pipeline (float mode)",
            format!(
                "{p} register stage{s} after the F multipliers: a row's compensation is final {p} cycle{s} later, same throughput \
                 (included above; it adds cycles only where compensation finishes after the PE lines' {}-cycle latency)",
                d.line_latency_extra,
                p = d.comp_pipe(),
                s = if d.comp_pipe() == 1 { "" } else { "s" }
            ),
        );
    }
    if d.weight_buffer_rows > 0 {
        let need = groups as u64 * beats as u64;
        line(
            "weight buffer",
            format!(
                "{} entries ({} rows of k_max); these rows take {need}: {} (buffered rows run at the cycles above)",
                d.weight_buffer_entries,
                d.weight_buffer_rows,
                if need <= d.weight_buffer_entries as u64 { "they fit" } else { "they do not fit: stream them, or split the rows" }
            ),
        );
    }
    if g.outliers.is_some() {
        line(
            "outliers",
            format!(
                "timing does not depend on them: every row takes ceil(2k/comp_macs) = {} compensation step(s) for k = {}",
                d.comp_steps, d.k
            ),
        );
    }
    s
}

// ---------------------------------------------------------------------------------------------
// RTL

fn gw(name: &str, width: u32, expr: impl Into<String>) -> Item {
    Item::Wire { name: name.into(), width, signed: false, depth: None, init: Some(expr.into()) }
}
fn gws(name: &str, width: u32, expr: impl Into<String>) -> Item {
    Item::Wire { name: name.into(), width, signed: true, depth: None, init: Some(expr.into()) }
}

/// `kllm_tile_comp_*`: one line's compensation unit. While a row's weight beats pass it captures
/// the weight index at every outlier slot's position; at the row's last beat the captured
/// indices move to the MAC operands (so the next row's capture overlaps), and `comp_macs`
/// multipliers sum `r · cw[iw]` over the slots, `comp_macs` slots per step.
fn comp_unit(d: &mut Design, q: &QuantConfig, g: &TileDerived) -> Handle {
    let (sp, pb, bb, lb, rw, cb, cm, nw, wc, l) =
        (g.slots_padded, g.pos_bits, g.beat_bits, g.lane_bits, g.residual_bits, g.comp_bits, g.comp_macs, q.nw, q.wc_bits, g.lanes);
    let t = g.comp_steps;
    let tb = clog2(t as u64);
    let name = format!("kllm_tile_comp_s{sp}_m{cm}_l{l}_p{pb}_w{nw}_c{wc}_r{rw}_a{cb}");
    if d.get(&name).is_none() {
        let tree = pe_line::add_tree_module(d, cm, cb);
        let mut m = Module::new(&name);
        m.doc(format!(
            "Outlier compensation of one PE line: {sp} slots (position, residual r = x - ca[ia(x)]), \
             {cm} multipliers, {t} step(s) per row."
        ));
        m.doc("sum over slots of r * cw[iw at the slot's position]; empty slots hold r = 0.");
        m.input("clk", 1, "clock");
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
            .input("i_slot_r", sp * rw, "slot s's residual at [s*R_W +: R_W], signed")
            .input("i_cw", (1 << nw) * wc, "weight centroid j at [j*WC_W +: WC_W], signed")
            .output_signed("o_acc", cb, "the row's compensation once its last step is done");
        // With one step per row (comp_macs = 2k) every multiplier has its own slot: no CM stride.
        for (p, v) in [("P_W", pb), ("R_W", rw), ("NW", nw), ("WC_W", wc), ("CM", cm), ("A_W", cb), ("LB", lb)] {
            if p != "CM" || t > 1 {
                m.localparam(p, 0, v as i64);
            }
        }
        m.comment("Per slot: capture register (filled as the row's beats pass) and MAC operand register.");
        m.wire("iw_bus", sp * nw);
        let slot_body = vec![
            gw("beat", bb, format!("i_slot_pos[s*P_W+LB +: {bb}]")),
            gw("lane", lb, "i_slot_pos[s*P_W +: LB]"),
            gw("hit", 1, "i_beat == beat"),
            gw("iw_new", nw, "i_widx[lane*NW +: NW]"),
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
        m.comment(format!("{cm} multipliers: slot step*CM+u's residual times cw of its captured index."));
        m.wire("terms", cm * cb);
        let sel = if t > 1 { "(i_step*CM + u)".to_string() } else { "u".to_string() };
        let mac_body = vec![
            gws("r", rw, format!("i_slot_r[{sel}*R_W +: R_W]")),
            gw("iw", nw, format!("iw_bus[{sel}*NW +: NW]")),
            gws("cw", wc, "i_cw[iw*WC_W +: WC_W]"),
            gws("prod", rw + wc, "r * cw"),
            Item::Assign { lhs: "terms[u*A_W +: A_W]".into(), rhs: sext("prod", rw + wc, cb) },
        ];
        m.push(Item::GenFor { label: "g_mac".into(), var: "u".into(), count: cm, body: mac_body });
        m.wire("step_sum", cb);
        m.instance(&tree, "u_sum", &[("i_terms", "terms".into()), ("o_sum", "step_sum".into())]);
        m.reg_signed("acc_q", cb);
        m.comment(format!(
            "|sum| <= 2k * 2^{} * 2^{} < 2^{}: the {cb}-bit accumulator cannot overflow.",
            q.x_bits,
            wc - 1,
            cb - 1
        ));
        m.clocked("accumulate", vec![if_("i_step_en", vec![nb("acc_q", format!("(i_first ? {cb}'sd0 : acc_q) + $signed(step_sum)"))])]);
        m.assign("o_acc", "acc_q");
        d.add(m);
    }
    Handle::of(d, &name, serde_json::Value::Null)
}

pub fn generate(d: &mut Design, q: &QuantConfig, c: &TileConfig, module: &str) -> Handle {
    let g = TileDerived::new(q, c);
    // Float mode (src/tile_fp.rs): raw values, centroids and thresholds are F patterns
    // (unsigned), the residuals are F patterns formed by kllm_fp_sub, the lines give exact sums.
    let fl = q.float().zip(g.float.clone());
    let float = fl.is_some();
    let (p, l, na, nw) = (c.lines, c.lanes, q.na, q.nw);
    let (xb, ab, wc) = match &fl {
        None => (q.x_bits, q.ac_bits, q.wc_bits),
        Some((_, t)) => (t.f_bits, t.f_bits, t.f_bits),
    };
    // Module names of the shared sub-blocks: the float ones carry the format.
    let ntag = fl.as_ref().map_or(String::new(), |(_, t)| format!("_e{}m{}", t.e, t.m));
    let rzero = if float { lit(g.residual_bits, 0) } else { format!("{}'sd0", g.residual_bits) };
    let (b, bb, pb, k, sp, rw, cb, yb, lyb) =
        (g.beats_max, g.beat_bits, g.pos_bits, c.k, g.slots_padded, g.residual_bits, g.comp_bits, g.y_bits, g.line_y_bits);
    let (aw, dw, ob) = (g.cfg_addr_bits, g.cfg_data_bits, g.cfg_offset_bits);
    let t = g.comp_steps;
    let tb = clog2(t as u64);
    let kb = ubits(k as u64);
    let ib = ubits(g.comp_fifo_depth as u64);
    let cnt_b = ubits(k as u64 - 1);

    // Sub-blocks, from their generators.
    let enc_x = encoder::generate(d, q, &EncoderConfig { lanes: l }, &format!("kllm_act_encoder_l{l}_a{na}_x{xb}_c{ab}{ntag}"));
    let enc_o = encoder::generate(d, q, &EncoderConfig { lanes: 2 }, &format!("kllm_act_encoder_l2_a{na}_x{xb}_c{ab}{ntag}"));
    let oc = c.orizuru();
    let orz = orizuru::generate_with_keep(
        d,
        q,
        &oc,
        &format!("kllm_orizuru_keep_n{}_k{}_l{}_r{}_x{xb}{ntag}", oc.n, oc.k, oc.lanes, oc.radix),
        true,
    );
    let pc = c.pe_line();
    let line = match c.line {
        // Dequantize-multiply lines are integer-mode only (`tile_dq::validate`).
        LineKind::Dequant => crate::tile_dq::line_module(d, q, &pc),
        LineKind::Index if float => {
            pe_line::generate_float_exact(d, q, &pc, &format!("{}_exact", pe_line::module_name(q, &pc)))
        }
        LineKind::Index => pe_line::generate(d, q, &pc, &pe_line::module_name(q, &pc)),
    };
    let comp = match &fl {
        None => comp_unit(d, q, &g),
        Some((f, t)) => crate::tile_fp::comp_unit(d, q, &g, t, *f),
    };
    let fifo = crate::common::fifo_module(d, p * cb + p, g.comp_fifo_depth);

    let mut m = Module::new(module);
    m.doc(format!(
        "KLLM tile: y[n] = Y(x, W[n]) for every row n, {p} PE lines of {l} index pairs per cycle, \
         K <= {}, look-ahead outlier compensation of the {k} largest and {k} smallest values.",
        c.k_max
    ));
    m.doc("Vector phase: x (lanes values per beat) -> activation encoder -> index buffer, and -> Orizuru");
    m.doc("(padded to k_max) -> outlier slots (position, r = x - ca[ia(x)]). Row phase: groups of lines");
    m.doc("rows in lockstep, one weight beat per cycle; each line's compensation unit adds");
    m.doc("sum r * cw[iw] over the slots to its PE line's result. Tables through cfg_* while idle:");
    if let Some((_, t)) = &fl {
        m.doc(format!(
            "cfg_addr = region << {ob} | offset; region 0 LUT (every line), 1 encoder thresholds, 2 ca, 3 cw, 4 runtime k."
        ));
        m.doc(format!(
            "Float mode ({}): x, ca, cw, thresholds and LUT entries are F patterns; r = RNE_F(x - ca[ia(x)]);",
            t.numerics
        ));
        m.doc("y = RNE_32(line's exact sum + exact sum of RNE_F(r * cw[iw])), one rounding per row (binary32 pattern).");
    } else {
        m.doc(format!(
            "cfg_addr = region << {ob} | offset; region 0 LUT (every line), 1 midpoints, 2 ca, 3 cw, 4 runtime k."
        ));
    }
    crate::tile_dq::doc(&mut m, c);
    m.clock_reset();
    m.input("cfg_we", 1, "table write enable (only while idle)");
    if float {
        m.input("cfg_addr", aw, "region << OFF_W | offset: 0 LUT, 1 threshold, 2 ca, 3 cw, 4 runtime k")
            .input("cfg_wdata", dw, "an F pattern (the runtime k: its low bits)");
    } else {
        m.input("cfg_addr", aw, "region << OFF_W | offset: 0 LUT, 1 midpoint, 2 ca, 3 cw, 4 runtime k")
            .input_signed("cfg_wdata", dw, "value, signed; narrower tables take the low bits");
    }
    m.input("s_x_valid", 1, "activation beat valid")
        .output("s_x_ready", 1, "activation beat accepted when valid && ready")
        .input("s_x_data", l * xb, if float { "raw activation of lane i at [i*X_W +: X_W], an F pattern" } else { "raw activation of lane i at [i*X_W +: X_W], signed" })
        .input("s_x_keep", l, "last beat: lane i holds an element (a prefix); ignored on other beats")
        .input("s_x_last", 1, "last beat of the vector (K = beats*lanes - dropped lanes)")
        .input("s_w_valid", 1, "weight beat valid")
        .output("s_w_ready", 1, "weight beat accepted when valid && ready")
        .input("s_w_idx", p * l * nw, "line j's weight index of lane i at [(j*LANES+i)*NW +: NW]")
        .input("s_w_rows", p, "line j carries a row in this group (a prefix; constant over the group)")
        .input("s_w_last", 1, "last beat of the last group: the GEMV's rows are done");
    let buf = c.weight_buffer_rows > 0;
    let (wab, went) = (g.weight_buffer_addr_bits, g.weight_buffer_entries);
    if buf {
        m.input("s_w_op", 2, "0 row beat (stream), 1 load idx into buffer entry addr, 2 (or 3) read a group's beats from entry addr on")
            .input("s_w_addr", wab, "op 1: the entry written; op 2: the group's first entry (beat b at addr + b)");
    }
    m
        .output("m_valid", 1, "a group's results valid")
        .input("m_ready", 1, "results taken when valid && ready")
        .output(
            "m_y",
            p * yb,
            if float {
                "line j's result at [j*Y_W +: Y_W], a binary32 pattern; 0 where m_rows[j] is 0"
            } else {
                "line j's result at [j*Y_W +: Y_W], signed; 0 where m_rows[j] is 0"
            },
        )
        .output("m_rows", p, "line j's result is a row of the GEMV")
        .output("idle", 1, "nothing in flight: cfg writes are safe");
    for (name, v) in [
        ("LANES", l), ("NW", nw), ("WC_W", wc), ("P_W", pb), ("R_W", rw), ("A_W", cb), ("Y_W", yb),
    ] {
        m.localparam(&name, 0, v as i64);
    }
    m.localparam("ST_X", 2, 0).localparam("ST_PAD", 2, 1).localparam("ST_COLLECT", 2, 2).localparam("ST_ROW", 2, 3);

    // ------------------------------------------------------------------ cfg
    m.comment("cfg decode: the region picks the table; LUT writes go to every line.");
    m.wire_eq("cfg_region", 3, format!("cfg_addr[{}:{ob}]", aw - 1));
    m.wire_eq("cfg_off", ob, format!("cfg_addr[{}:0]", ob - 1));
    if c.line == LineKind::Index {
        m.wire_eq("cfg_lut_we", 1, format!("cfg_we & (cfg_region == {})", lit(3, REGION_LUT)));
    } else {
        crate::tile_dq::cfg_wires(&mut m, q, &pc, ob);
    }
    m.wire_eq("cfg_mid_we", 1, format!("cfg_we & (cfg_region == {})", lit(3, REGION_MIDPOINT)));
    if float {
        m.wire_eq("cfg_ac", ab, format!("cfg_wdata[{}:0]", ab - 1));
    } else {
        m.wire_signed_eq("cfg_ac", ab, format!("cfg_wdata[{}:0]", ab - 1));
    }
    m.push(Item::Reg { name: "ca_q".into(), width: ab, signed: !float, depth: Some(1 << na) });
    m.reg("cw_q", (1 << nw) * wc);
    m.reg("krt_q", kb);
    m.clocked(
        "tables",
        vec![
            if_(
                format!("cfg_we & (cfg_region == {})", lit(3, REGION_CA)),
                vec![nb(format!("ca_q[cfg_off[{}:0]]", na - 1), "cfg_ac")],
            ),
            if_(
                format!("cfg_we & (cfg_region == {})", lit(3, REGION_CW)),
                vec![nb(format!("cw_q[cfg_off[{}:0]*WC_W +: WC_W]", nw - 1), format!("cfg_wdata[{}:0]", wc - 1))],
            ),
            if_else(
                "rst",
                vec![nb("krt_q", lit(kb, k as u64))],
                vec![if_(
                    format!("cfg_we & (cfg_region == {})", lit(3, REGION_K)),
                    vec![nb("krt_q", format!("cfg_wdata[{}:0]", kb - 1))],
                )],
            ),
        ],
    );

    // ------------------------------------------------------------------ vector phase
    m.comment(format!(
        "Vector phase. x beats go to the encoder and to Orizuru together; after the last one the tile\n\
         sends pad beats (keep 0: masked in both trees) until Orizuru has its {b} beats. A new vector\n\
         waits until the compensation units are done with the previous one's slots."
    ));
    m.reg("st_q", 2).reg("xbeat_q", bb).reg("nbm1_q", bb).reg("last_keep_q", l);
    m.reg("busy_q", 1);
    m.wire_eq("x_phase", 1, "(st_q == ST_X) & ~busy_q");
    m.wire_eq("pad_phase", 1, "st_q == ST_PAD");
    m.wire_eq("x_beat_last", 1, format!("s_x_last | (xbeat_q == {})", lit(bb, b as u64 - 1)));
    m.wire("enc_s_ready", 1).wire("orz_s_ready", 1);
    m.assign("s_x_ready", "x_phase & enc_s_ready & orz_s_ready");
    m.wire_eq("x_fire", 1, "s_x_valid & s_x_ready");
    m.wire_eq("orz_s_valid", 1, "(x_phase & s_x_valid & enc_s_ready) | pad_phase");
    m.wire_eq("orz_fire", 1, "orz_s_valid & orz_s_ready");
    m.wire_eq("orz_x", l * xb, format!("pad_phase ? {} : s_x_data", lit(l * xb, 0)));
    m.wire_eq(
        "orz_keep",
        l,
        format!("pad_phase ? {} : (x_beat_last ? s_x_keep : {{{l}{{1'b1}}}})", lit(l, 0)),
    );
    m.wire("enc_m_valid", 1).wire("enc_m_idx", l * na).wire("enc_m_last", 1).wire("enc_idle", 1);
    m.instantiate(
        &enc_x,
        "u_encoder",
        &[
            ("clk", "clk".into()),
            ("rst", "rst".into()),
            ("cfg_we", "cfg_mid_we".into()),
            ("cfg_addr", format!("cfg_off[{}:0]", na - 1)),
            ("cfg_wdata", "cfg_ac".into()),
            ("s_valid", "x_phase & s_x_valid & orz_s_ready".into()),
            ("s_ready", "enc_s_ready".into()),
            ("s_x", "s_x_data".into()),
            ("s_last", "x_beat_last".into()),
            ("m_valid", "enc_m_valid".into()),
            ("m_ready", "1'b1".into()),
            ("m_idx", "enc_m_idx".into()),
            ("m_last", "enc_m_last".into()),
            ("idle", "enc_idle".into()),
        ],
    );
    m.comment("Activation-index buffer: one beat-wide entry per beat, read by every line in the row phase.");
    m.push(Item::Reg { name: "ibuf_q".into(), width: l * na, signed: false, depth: Some(b) });
    m.reg("ibuf_wr_q", bb);
    m.clocked("index_buffer", vec![if_("enc_m_valid", vec![nb("ibuf_q[ibuf_wr_q]", "enc_m_idx")])]);

    // Orizuru.
    m.wire("orz_max_valid", 1).wire("orz_max_value", xb).wire("orz_max_pos", pb).wire("orz_max_last", 1).wire("orz_max_real", 1);
    m.wire("orz_min_valid", 1).wire("orz_min_value", xb).wire("orz_min_pos", pb).wire("orz_min_last", 1).wire("orz_min_real", 1);
    m.comment("Outlier pops: both trees pop in lockstep; a pair is taken when both are there.");
    m.wire("enc2_s_ready", 1);
    m.wire_eq("take", 1, "(st_q == ST_COLLECT) & orz_max_valid & orz_min_valid & enc2_s_ready");
    m.instantiate(
        &orz,
        "u_orizuru",
        &[
            ("clk", "clk".into()),
            ("rst", "rst".into()),
            ("s_valid", "orz_s_valid".into()),
            ("s_ready", "orz_s_ready".into()),
            ("s_x", "orz_x".into()),
            ("m_max_valid", "orz_max_valid".into()),
            ("m_max_ready", "take".into()),
            ("m_max_value", "orz_max_value".into()),
            ("m_max_pos", "orz_max_pos".into()),
            ("m_max_last", "orz_max_last".into()),
            ("m_min_valid", "orz_min_valid".into()),
            ("m_min_ready", "take".into()),
            ("m_min_value", "orz_min_value".into()),
            ("m_min_pos", "orz_min_pos".into()),
            ("m_min_last", "orz_min_last".into()),
            ("s_keep", "orz_keep".into()),
            ("m_max_real", "orz_max_real".into()),
            ("m_min_real", "orz_min_real".into()),
        ],
    );

    // Residuals: a 2-lane encoder finds ia of both popped values; a delay line of the same depth
    // carries their positions, values and the pop's rank.
    let depth = g.encoder_latency;
    m.comment(format!(
        "Residuals r = x - ca[ia(x)] of each popped pair: a two-lane encoder ({depth} stages) and a delay\n\
         line of the same depth for rank, positions, values and the real flags."
    ));
    m.reg("rank_q", cnt_b);
    let dl_w = cnt_b + 2 * pb + 2 * xb + 2;
    for s in 0..depth {
        m.reg(&format!("dl{s}_q"), dl_w);
    }
    let mut shift = vec![nb("dl0_q", "{rank_q, orz_max_real, orz_min_real, orz_max_pos, orz_min_pos, orz_max_value, orz_min_value}")];
    for s in 1..depth {
        shift.push(nb(format!("dl{s}_q"), format!("dl{}_q", s - 1)));
    }
    m.clocked("delay_line", shift);
    m.wire("enc2_m_valid", 1).wire("enc2_m_idx", 2 * na).wire("enc2_m_last", 1).wire("enc2_idle", 1);
    m.instantiate(
        &enc_o,
        "u_outlier_encoder",
        &[
            ("clk", "clk".into()),
            ("rst", "rst".into()),
            ("cfg_we", "cfg_mid_we".into()),
            ("cfg_addr", format!("cfg_off[{}:0]", na - 1)),
            ("cfg_wdata", "cfg_ac".into()),
            ("s_valid", "take".into()),
            ("s_ready", "enc2_s_ready".into()),
            ("s_x", "{orz_min_value, orz_max_value}".into()),
            ("s_last", "orz_max_last & orz_min_last".into()),
            ("m_valid", "enc2_m_valid".into()),
            ("m_ready", "1'b1".into()),
            ("m_idx", "enc2_m_idx".into()),
            ("m_last", "enc2_m_last".into()),
            ("idle", "enc2_idle".into()),
        ],
    );
    let tail = format!("dl{}_q", depth - 1);
    let mut off = 0;
    let mut field = |m: &mut Module, name: &str, w: u32, signed: bool| {
        let e = format!("{tail}[{}:{off}]", off + w - 1);
        if signed { m.wire_signed_eq(name, w, e) } else { m.wire_eq(name, w, e) };
        off += w;
    };
    field(&mut m, "new_min_val", xb, !float);
    field(&mut m, "new_max_val", xb, !float);
    field(&mut m, "new_min_pos", pb, false);
    field(&mut m, "new_max_pos", pb, false);
    field(&mut m, "new_min_real", 1, false);
    field(&mut m, "new_max_real", 1, false);
    field(&mut m, "new_rank", cnt_b, false);
    let wk = kb.max(cnt_b);
    m.wire_eq("in_k", 1, format!("{} < {}", zext("new_rank", cnt_b, wk), zext("krt_q", kb, wk)));
    m.wire_eq("new_max_v", 1, "enc2_m_valid & in_k & new_max_real");
    m.wire_eq("new_min_v0", 1, "enc2_m_valid & in_k & new_min_real");
    let fp_sub = fl.as_ref().map(|(f, _)| {
        let m = crate::fp_rtl::fp_sub(*f);
        let name = m.name.clone();
        if d.get(&name).is_none() {
            d.add(m);
        }
        name
    });
    if float {
        m.comment("Float mode: r = RNE_F(x - ca[ia(x)]), an F pattern, from an exact difference rounded once.");
    }
    for (t, lo) in [("max", 0), ("min", na)] {
        m.wire_eq(&format!("ia_{t}"), na, format!("enc2_m_idx[{}:{lo}]", lo + na - 1));
        match &fp_sub {
            None => {
                m.wire_signed_eq(&format!("ca_{t}"), ab, format!("ca_q[ia_{t}]"));
                m.wire_signed_eq(
                    &format!("r_{t}"),
                    rw,
                    format!("{} - {}", sext(&format!("new_{t}_val"), xb, rw), sext(&format!("ca_{t}"), ab, rw)),
                );
            }
            Some(sub) => {
                m.wire_eq(&format!("ca_{t}"), ab, format!("ca_q[ia_{t}]"));
                m.wire(&format!("r_{t}"), rw);
                m.instance(
                    sub,
                    &format!("u_residual_{t}"),
                    &[("a", format!("new_{t}_val")), ("b", format!("ca_{t}")), ("d", format!("r_{t}"))],
                );
            }
        }
    }
    m.comment(format!(
        "Outlier slots: max rank i in slot i, min rank i in slot {k}+i. A position in both lists is kept\n\
         once (in the max slot): a new min is dropped if a kept max has its position, and a kept min is\n\
         dropped when a new max has its position. Ranks >= the runtime k and pops past the vector's\n\
         real values are empty slots (r = 0)."
    ));
    m.push(Item::Reg { name: "max_pos_q".into(), width: pb, signed: false, depth: Some(k) });
    m.push(Item::Reg { name: "min_pos_q".into(), width: pb, signed: false, depth: Some(k) });
    m.push(Item::Reg { name: "max_r_q".into(), width: rw, signed: !float, depth: Some(k) });
    m.push(Item::Reg { name: "min_r_q".into(), width: rw, signed: !float, depth: Some(k) });
    m.reg("max_v_q", k).reg("min_v_q", k);
    m.push(Item::Integer("j".into()));
    m.wire("max_hits", k);
    m.push(Item::GenFor {
        label: "g_dedup".into(),
        var: "s".into(),
        count: k,
        body: vec![Item::Assign { lhs: "max_hits[s]".into(), rhs: "max_v_q[s] & (max_pos_q[s] == new_min_pos)".into() }],
    });
    m.wire_eq("min_dup", 1, "(new_max_v & (new_max_pos == new_min_pos)) | (|max_hits)");
    m.wire_eq("new_min_v", 1, "new_min_v0 & ~min_dup");
    m.clocked(
        "slots",
        vec![
            if_else(
                "st_q == ST_X",
                vec![nb("max_v_q", lit(k, 0)), nb("min_v_q", lit(k, 0))],
                vec![Stmt::For {
                    var: "j".into(),
                    count: k,
                    body: vec![
                        if_(
                            "new_max_v & min_v_q[j] & (min_pos_q[j] == new_max_pos)",
                            vec![nb("min_v_q[j]", "1'b0"), nb("min_r_q[j]", rzero.clone())],
                        ),
                        if_(
                            format!("enc2_m_valid & ({} == j)", zext("new_rank", cnt_b, 32)),
                            vec![
                                nb("max_pos_q[j]", "new_max_pos"),
                                nb("min_pos_q[j]", "new_min_pos"),
                                nb("max_v_q[j]", "new_max_v"),
                                nb("min_v_q[j]", "new_min_v"),
                                nb("max_r_q[j]", format!("new_max_v ? r_max : {rzero}")),
                                nb("min_r_q[j]", format!("new_min_v ? r_min : {rzero}")),
                            ],
                        ),
                    ],
                }],
            ),
        ],
    );
    m.comment("Slot buses for the compensation units (max slots, then min slots, then empty ones).");
    m.wire("slot_pos_max", k * pb).wire("slot_pos_min", k * pb).wire("slot_r_max", k * rw).wire("slot_r_min", k * rw);
    m.push(Item::GenFor {
        label: "g_slot_bus".into(),
        var: "s".into(),
        count: k,
        body: vec![
            Item::Assign { lhs: "slot_pos_max[s*P_W +: P_W]".into(), rhs: "max_pos_q[s]".into() },
            Item::Assign { lhs: "slot_pos_min[s*P_W +: P_W]".into(), rhs: "min_pos_q[s]".into() },
            Item::Assign { lhs: "slot_r_max[s*R_W +: R_W]".into(), rhs: "max_r_q[s]".into() },
            Item::Assign { lhs: "slot_r_min[s*R_W +: R_W]".into(), rhs: "min_r_q[s]".into() },
        ],
    });
    let pad = sp - 2 * k;
    let (pos_bus, r_bus) = if pad > 0 {
        (
            format!("{{{}, slot_pos_min, slot_pos_max}}", lit(pad * pb, 0)),
            format!("{{{}, slot_r_min, slot_r_max}}", lit(pad * rw, 0)),
        )
    } else {
        ("{slot_pos_min, slot_pos_max}".to_string(), "{slot_r_min, slot_r_max}".to_string())
    };
    m.wire_eq("slot_pos", sp * pb, pos_bus);
    m.wire_eq("slot_r", sp * rw, r_bus);

    // ------------------------------------------------------------------ row phase
    m.comment(format!(
        "Row phase: one weight beat per cycle for all {p} lines; the row's last beat hands the captured\n\
         indices to the compensation units, which needs them free ({t} step(s) per row) and a result slot."
    ));
    m.reg("rbeat_q", bb).reg("inflight_q", ib).reg("done_q", 1).reg("mac_rows_q", p).reg("done_rows_q", p);
    if t > 1 {
        m.reg("step_q", tb);
        m.wire_eq("mac_final", 1, format!("busy_q & (step_q == {})", lit(tb, t as u64 - 1)));
    } else {
        m.wire_eq("mac_final", 1, "busy_q");
    }
    m.wire_eq("last_beat", 1, "rbeat_q == nbm1_q");
    m.wire_eq(
        "gate",
        1,
        format!(
            "(st_q == ST_ROW) & (~last_beat | ((~busy_q | mac_final) & (inflight_q != {})))",
            lit(ib, g.comp_fifo_depth as u64)
        ),
    );
    m.wire("line_s_ready", p).wire("line_m_valid", p).wire("line_idle", p);
    // The row beats' source: s_w itself, or (with a weight buffer) also the buffer's reader.
    let (wv, wi, wr, wl) = if buf { ("w_valid", "w_idx", "w_rows", "w_last") } else { ("s_w_valid", "s_w_idx", "s_w_rows", "s_w_last") };
    if buf {
        let rb = ubits(b as u64);
        let bw = p * l * nw;
        m.comment(format!(
            "Weight-index buffer: {went} entries of one beat ({p} lines x {l} indices), a plain memory with one\n\
             write port (s_w op 1, a load) and one registered read port (the reader). A read token (op 2) asks\n\
             for one group: the vector's beats from entry s_w_addr on, with the token's rows and last. The reader\n\
             takes a token once the vector's length is known (after its last x beat) and keeps one beat ready\n\
             in its output register, so buffered rows run at one beat per cycle like streamed ones. A load waits\n\
             until every read of the tokens before it was issued (loads and tokens keep s_w's order); a streamed\n\
             row beat (op 0) waits until the reader is empty."
        ));
        m.localparam("OP_STREAM", 2, OP_STREAM as i64).localparam("OP_LOAD", 2, OP_LOAD as i64);
        m.push(Item::Reg { name: "wbuf_q".into(), width: bw, signed: false, depth: Some(went) });
        m.reg("rd_addr_q", wab).reg("rd_left_q", rb).reg("rd_rows_q", p).reg("rd_last_q", 1).reg("got_last_q", 1);
        m.reg("rb_valid_q", 1).reg("rb_idx_q", bw).reg("rb_rows_q", p).reg("rb_last_q", 1).reg("load_q", 1);
        m.wire_eq("op_load", 1, "s_w_op == OP_LOAD");
        m.wire_eq("op_read", 1, "s_w_op[1]");
        m.wire_eq("op_stream", 1, "s_w_op == OP_STREAM");
        m.wire_eq("rd_none", 1, format!("rd_left_q == {}", lit(rb, 0)));
        m.wire_eq("rb_empty", 1, "rd_none & ~rb_valid_q");
        m.wire_eq("w_valid", 1, "rb_valid_q | (s_w_valid & op_stream & rb_empty)");
        m.wire_eq("w_idx", bw, "rb_valid_q ? rb_idx_q : s_w_idx");
        m.wire_eq("w_rows", p, "rb_valid_q ? rb_rows_q : s_w_rows");
        m.wire_eq("w_last", 1, "rb_valid_q ? rb_last_q : s_w_last");
        m.wire_eq("w_fire", 1, "w_valid & gate & (&line_s_ready)");
        m.wire_eq("rb_fire", 1, "rb_valid_q & gate & (&line_s_ready)");
        m.wire_eq("rd_en", 1, "~rd_none & (~rb_valid_q | rb_fire)");
        m.wire_eq("rd_free", 1, format!("rd_none | ((rd_left_q == {}) & rd_en)", lit(rb, 1)));
        m.wire_eq("tok_ok", 1, "(st_q != ST_X) & ~got_last_q & rd_free");
        m.assign(
            "s_w_ready",
            "op_stream ? (gate & (&line_s_ready) & rb_empty) : (op_load ? rd_none : tok_ok)",
        );
        m.wire_eq("load_fire", 1, "s_w_valid & s_w_ready & op_load");
        m.wire_eq("tok_fire", 1, "s_w_valid & s_w_ready & op_read");
        m.clocked(
            "weight_buffer",
            vec![
                if_("load_fire", vec![nb("wbuf_q[s_w_addr]", "s_w_idx")]),
                if_("rd_en", vec![nb("rb_idx_q", "wbuf_q[rd_addr_q]")]),
            ],
        );
        m.clocked(
            "reader",
            vec![if_else(
                "rst",
                vec![
                    nb("rd_left_q", lit(rb, 0)),
                    nb("rb_valid_q", "1'b0"),
                    nb("got_last_q", "1'b0"),
                    nb("load_q", "1'b0"),
                ],
                vec![
                    if_else(
                        "tok_fire",
                        vec![
                            nb("rd_addr_q", "s_w_addr"),
                            nb("rd_left_q", format!("{} + {}", zext("nbm1_q", bb, rb), lit(rb, 1))),
                            nb("rd_rows_q", "s_w_rows"),
                            nb("rd_last_q", "s_w_last"),
                        ],
                        vec![if_(
                            "rd_en",
                            vec![
                                nb("rd_addr_q", format!("rd_addr_q + {}", lit(wab, 1))),
                                nb("rd_left_q", format!("rd_left_q - {}", lit(rb, 1))),
                            ],
                        )],
                    ),
                    if_(
                        "rd_en",
                        vec![
                            nb("rb_rows_q", "rd_rows_q"),
                            nb("rb_last_q", format!("rd_last_q & (rd_left_q == {})", lit(rb, 1))),
                        ],
                    ),
                    nb("rb_valid_q", "rd_en | (rb_valid_q & ~rb_fire)"),
                    if_else(
                        "st_q == ST_X",
                        vec![nb("got_last_q", "1'b0")],
                        vec![if_("tok_fire & s_w_last", vec![nb("got_last_q", "1'b1")])],
                    ),
                    nb("load_q", "load_fire"),
                ],
            )],
        );
    } else {
        m.assign("s_w_ready", "gate & (&line_s_ready)");
        m.wire_eq("w_fire", 1, "s_w_valid & s_w_ready");
    }
    m.wire_eq("handoff", 1, "w_fire & last_beat");
    m.wire_eq("row_idx_a", l * na, "ibuf_q[rbeat_q]");
    m.wire_eq("row_keep", l, format!("last_beat ? last_keep_q : {{{l}{{1'b1}}}}"));
    m.wire("cf_valid", 1).wire("cf_data", p * cb + p);
    m.wire_eq("out_valid", 1, "(&line_m_valid) & cf_valid");
    m.wire_eq("out_fire", 1, "out_valid & m_ready");
    m.wire_eq("cf_rows", p, format!("cf_data[{}:{}]", p * cb + p - 1, p * cb));
    m.wire("acc_bus", p * cb);
    let mut comp_conns = vec![("clk", "clk".to_string())];
    if float {
        comp_conns.push(("rst", "rst".into()));
    }
    comp_conns.extend([
        ("i_fire", "w_fire".into()),
        ("i_beat", "rbeat_q".into()),
        ("i_widx", format!("{wi}[line*LANES*NW +: LANES*NW]")),
        ("i_handoff", "handoff".into()),
        ("i_step_en", "busy_q".into()),
    ]);
    if t > 1 {
        comp_conns.push(("i_step", "step_q".into()));
        comp_conns.push(("i_first", format!("step_q == {}", lit(tb, 0))));
    } else {
        comp_conns.push(("i_first", "1'b1".into()));
    }
    comp_conns.extend([
        ("i_slot_pos", "slot_pos".to_string()),
        ("i_slot_r", "slot_r".into()),
        ("i_cw", "cw_q".into()),
        ("o_acc", "acc".into()),
    ]);
    let (lwe, laddr, ldata) = match c.line {
        LineKind::Index => ("cfg_lut_we", "cfg_off", "cfg_wdata"),
        LineKind::Dequant => crate::tile_dq::CFG_WIRES,
    };
    // The index line carries its signed table value and result as plain bit patterns (its
    // ports are unsigned so that it can be a Verilator hierarchical block, `pe_line::generate`):
    // both cross on unsigned wires, `cfg_wdata_bits` and `y_line_bits`, which `y_line` re-reads
    // as signed. Plain wires, not `$unsigned(..)` in the connection: Yosys 0.23 fails an assertion
    // on a cast in the port connection of a black-box submodule (per-module synthesis).
    // Other lines have signed ports and connect directly.
    let y_port = if float { "m_s" } else { "m_y" };
    let y_plain = line.port(y_port).is_some_and(|p| !p.signed);
    let data_plain = match line.port("cfg_wdata") {
        Some(p) if !p.signed && !float => Some(p.width),
        _ => None,
    };
    let ldata_src = ldata.to_string();
    let ldata = if data_plain.is_some() { "cfg_wdata_bits".to_string() } else { ldata_src.clone() };
    let line_conns: Vec<(String, String)> = [
        ("clk", "clk".to_string()),
        ("rst", "rst".into()),
        ("cfg_we", lwe.into()),
        ("cfg_addr", laddr.into()),
        ("cfg_wdata", ldata),
        ("s_valid", format!("{wv} & gate")),
        ("s_ready", "ready".into()),
        ("s_idx_a", "row_idx_a".into()),
        ("s_idx_w", format!("{wi}[line*LANES*NW +: LANES*NW]")),
        ("s_keep", "row_keep".into()),
        ("s_last", "last_beat".into()),
        ("m_valid", "valid".into()),
        ("m_ready", "m_ready & cf_valid".into()),
        (y_port, if y_plain { "y_line_bits" } else { "y_line" }.into()),
        ("idle", "line_idle_1".into()),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .collect();
    let mut line_body = vec![
        Item::Wire { name: "ready".into(), width: 1, signed: false, depth: None, init: None },
        Item::Wire { name: "valid".into(), width: 1, signed: false, depth: None, init: None },
        Item::Wire { name: "line_idle_1".into(), width: 1, signed: false, depth: None, init: None },
        Item::Wire { name: "y_line".into(), width: lyb, signed: true, depth: None, init: None },
    ];
    if let Some(w) = data_plain {
        line_body.push(Item::Wire { name: "cfg_wdata_bits".into(), width: w, signed: false, depth: None, init: Some(ldata_src) });
    }
    if y_plain {
        line_body.push(Item::Wire { name: "y_line_bits".into(), width: lyb, signed: false, depth: None, init: None });
        line_body.push(Item::Assign { lhs: "y_line".into(), rhs: "y_line_bits".into() });
    }
    // Line `line`'s bit of a one-bit-per-line bus; with one line the bus is a plain wire,
    // which Verilog does not let us index.
    let bit = |bus: &str| if p == 1 { bus.to_string() } else { format!("{bus}[line]") };
    line_body.extend([
        Item::Wire { name: "acc".into(), width: cb, signed: true, depth: None, init: None },
        Item::Instance { module: line.module.clone(), name: "u_line".into(), conns: line_conns },
        Item::Instance {
            module: comp.module.clone(),
            name: "u_comp".into(),
            conns: comp_conns.iter().map(|(a, b)| (a.to_string(), b.clone())).collect(),
        },
        Item::Assign { lhs: bit("line_s_ready"), rhs: "ready".into() },
        Item::Assign { lhs: bit("line_m_valid"), rhs: "valid".into() },
        Item::Assign { lhs: bit("line_idle"), rhs: "line_idle_1".into() },
        Item::Assign { lhs: "acc_bus[line*A_W +: A_W]".into(), rhs: "acc".into() },
        gws("comp", cb, "cf_data[line*A_W +: A_W]"),
    ]);
    match &fl {
        None => line_body.extend([
            gws("y_sum", yb, format!("{} + {}", sext("y_line", lyb, yb), sext("comp", cb, yb))),
            Item::Assign { lhs: "m_y[line*Y_W +: Y_W]".into(), rhs: format!("{} ? y_sum : {}", bit("cf_rows"), lit(yb, 0)) },
        ]),
        Some((_, t)) => {
            // The one rounding of the row: the line's exact sum plus the exact compensation sum.
            let sb = t.sum_bits;
            let round = crate::fp_rtl::fixed_to_f32(sb, t.fixed_frac).expect("validated float widths fit the rounder");
            let round_name = round.name.clone();
            if d.get(&round_name).is_none() {
                d.add(round);
            }
            line_body.extend([
                gws("s_exact", sb, format!("{} + {}", sext("y_line", lyb, sb), sext("comp", cb, sb))),
                Item::Wire { name: "y_f32".into(), width: 32, signed: false, depth: None, init: None },
                Item::Instance { module: round_name, name: "u_round_f32".into(), conns: vec![("s".into(), "s_exact".into()), ("y".into(), "y_f32".into())] },
                Item::Assign { lhs: "m_y[line*Y_W +: Y_W]".into(), rhs: format!("{} ? y_f32 : {}", bit("cf_rows"), lit(yb, 0)) },
            ]);
        }
    }
    match &fl {
        None => m.comment(format!(
            "The lines and their compensation units. The lines see the same control, so they stay in\n\
             lockstep; a line's result plus its compensation is its row's y (|y| < 2^{}).",
            yb - 1
        )),
        Some((_, t)) => m.comment(format!(
            "The lines and their compensation units. The lines see the same control, so they stay in\n\
             lockstep; a line's exact sum plus its exact compensation ({} bits: no overflow for K <= {} and\n\
             2k = {} terms) is rounded once to binary32: its row's y.",
            t.sum_bits, c.k_max, 2 * k
        )),
    };
    m.push(Item::GenFor { label: "g_line".into(), var: "line".into(), count: p, body: line_body });
    // With a pipelined compensation step (float mode) the result is final `comp_pipe` cycles
    // after done_q: done and the rows follow it through as many registers.
    let cpipe = g.comp_pipe();
    assert!(cpipe <= 1, "the tile's control delays done by at most one compensation stage");
    let (push, push_rows) = if cpipe == 1 { ("comp_done_q", "comp_rows_q") } else { ("done_q", "done_rows_q") };
    if cpipe == 1 {
        m.comment("Compensation stage 2: a row's sum is final one cycle after done_q (register after the F multipliers).");
        m.reg("comp_done_q", 1).reg("comp_rows_q", p);
        m.clocked(
            "comp_stage",
            vec![if_else("rst", vec![nb("comp_done_q", "1'b0")], vec![nb("comp_done_q", "done_q")]), nb("comp_rows_q", "done_rows_q")],
        );
    }
    m.instance(
        &fifo,
        "u_comp_fifo",
        &[
            ("clk", "clk".into()),
            ("rst", "rst".into()),
            ("push", push.into()),
            ("push_data", format!("{{{push_rows}, acc_bus}}")),
            ("pop", "out_fire".into()),
            ("m_valid", "cf_valid".into()),
            ("m_data", "cf_data".into()),
        ],
    );
    m.assign("m_valid", "out_valid");
    m.assign("m_rows", "cf_rows");

    // ------------------------------------------------------------------ control
    let mut ctrl = vec![
        if_("x_fire & x_beat_last", vec![nb("nbm1_q", "xbeat_q"), nb("last_keep_q", "s_x_keep")]),
        if_(
            "orz_fire",
            vec![nb(
                "xbeat_q",
                format!("(xbeat_q == {}) ? {} : xbeat_q + {}", lit(bb, b as u64 - 1), lit(bb, 0), lit(bb, 1)),
            )],
        ),
        if_(
            "enc_m_valid",
            vec![nb("ibuf_wr_q", format!("enc_m_last ? {} : ibuf_wr_q + {}", lit(bb, 0), lit(bb, 1)))],
        ),
        if_("take", vec![nb("rank_q", format!("orz_max_last ? {} : rank_q + {}", lit(cnt_b, 0), lit(cnt_b, 1)))]),
        Stmt::Case {
            sel: "st_q".into(),
            arms: vec![
                (
                    "ST_X".into(),
                    vec![if_(
                        "x_fire & x_beat_last",
                        vec![nb("st_q", format!("(xbeat_q == {}) ? ST_COLLECT : ST_PAD", lit(bb, b as u64 - 1)))],
                    )],
                ),
                (
                    "ST_PAD".into(),
                    vec![if_(format!("orz_fire & (xbeat_q == {})", lit(bb, b as u64 - 1)), vec![nb("st_q", "ST_COLLECT")])],
                ),
                ("ST_COLLECT".into(), vec![if_("enc2_m_valid & enc2_m_last", vec![nb("st_q", "ST_ROW")])]),
            ],
            default: vec![if_(format!("handoff & {wl}"), vec![nb("st_q", "ST_X")])],
        },
        if_("w_fire", vec![nb("rbeat_q", format!("last_beat ? {} : rbeat_q + {}", lit(bb, 0), lit(bb, 1)))]),
        nb("busy_q", "handoff | (busy_q & ~mac_final)"),
        nb("done_q", "mac_final"),
        nb(
            "inflight_q",
            format!("inflight_q + {} - {}", zext("handoff", 1, ib), zext("out_fire", 1, ib)),
        ),
    ];
    if t > 1 {
        ctrl.push(if_else(
            "handoff",
            vec![nb("step_q", lit(tb, 0))],
            vec![if_("busy_q", vec![nb("step_q", format!("step_q + {}", lit(tb, 1)))])],
        ));
    }
    let mut reset = vec![
        nb("st_q", "ST_X"),
        nb("xbeat_q", lit(bb, 0)),
        nb("ibuf_wr_q", lit(bb, 0)),
        nb("rank_q", lit(cnt_b, 0)),
        nb("rbeat_q", lit(bb, 0)),
        nb("busy_q", "1'b0"),
        nb("done_q", "1'b0"),
        nb("inflight_q", lit(ib, 0)),
    ];
    if t > 1 {
        reset.push(nb("step_q", lit(tb, 0)));
    }
    m.clocked("control", vec![if_else("rst", reset, ctrl)]);
    m.clocked(
        "rows_in_flight",
        vec![if_("handoff", vec![nb("mac_rows_q", wr)]), if_("mac_final", vec![nb("done_rows_q", "mac_rows_q")])],
    );
    m.assign(
        "idle",
        format!(
            "(st_q == ST_X) & (xbeat_q == {}) & ~busy_q & ~done_q{} & (inflight_q == {}) & enc_idle & enc2_idle & (&line_idle){}",
            lit(bb, 0),
            if cpipe == 1 { " & ~comp_done_q" } else { "" },
            lit(ib, 0),
            if buf { " & rb_empty & ~load_q" } else { "" }
        ),
    );
    d.add(m);
    Handle::of(d, module, serde_json::to_value(&g).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Golden vectors

/// Fields of the golden file, in port order.
const X_FIELDS: &[&str] = &["data", "keep", "last"];
const W_FIELDS: &[&str] = &["idx", "rows", "last"];
/// With a weight buffer, s_w also carries the op and the entry address.
const W_FIELDS_BUF: &[&str] = &["idx", "rows", "last", "op", "addr"];
const OUT_FIELDS: &[&str] = &["y", "rows"];

pub(crate) fn header(block: &str, d: &TileDerived, w: &mut GoldenWriter) {
    let wf = if d.weight_buffer_rows > 0 { W_FIELDS_BUF } else { W_FIELDS };
    w.header_streams(block, &[("x", X_FIELDS), ("w", wf)], &[("", OUT_FIELDS)]);
}

/// One s_w beat: `op`/`addr` only exist with a weight buffer (a streamed beat's addr is junk).
#[allow(clippy::too_many_arguments)]
pub(crate) fn w_beat(d: &TileDerived, w: &mut GoldenWriter, rng: &mut Rng, idx: String, rows: String, last: bool, op: u64, addr: Option<u64>) {
    let f = w_fields(d, rng, idx, rows, last, op, addr);
    w.input_on("w", &f);
}

/// The fields of one s_w beat (see `w_beat`).
fn w_fields(d: &TileDerived, rng: &mut Rng, idx: String, rows: String, last: bool, op: u64, addr: Option<u64>) -> Vec<String> {
    let mut f = vec![idx, rows, (last as u8).to_string()];
    if d.weight_buffer_rows > 0 {
        let ab = d.weight_buffer_addr_bits;
        let addr = addr.unwrap_or_else(|| rng.below(1 << ab));
        f.push(op.to_string());
        f.push(hex_lanes(&[addr], ab));
    } else {
        assert!(op == OP_STREAM && addr.is_none(), "a tile without a weight buffer only streams rows");
    }
    f
}

/// The buffer entry of one beat: line j's lane i holds row `gi·lines + j`'s index at position
/// `beat·lanes + i`; lanes past K and lines without a row hold junk.
pub(crate) fn entry_indices(q: &QuantConfig, c: &TileConfig, rows: &[Vec<u32>], gi: usize, beat: usize, rng: &mut Rng) -> Vec<u64> {
    let (l, p) = (c.lanes as usize, c.lines as usize);
    let kk = rows[0].len();
    let mut idx = vec![0u64; p * l];
    for j in 0..p {
        for lane in 0..l {
            let pos = beat * l + lane;
            idx[j * l + lane] = match rows.get(gi * p + j) {
                Some(r) if pos < kk => r[pos] as u64,
                _ => rng.below(1 << q.nw),
            };
        }
    }
    idx
}

/// Load beats (op 1) putting `rows` (all of length K) into the buffer densely from entry
/// `base`: group gi's beat b at `base + gi·beats + b`. The first beat written is group 0's beat
/// 0, the others in a random order (the entry address is what counts). Returns each group's
/// first entry (what a read token names).
pub(crate) fn write_loads(q: &QuantConfig, c: &TileConfig, d: &TileDerived, rows: &[Vec<u32>], base: u32, rng: &mut Rng, w: &mut GoldenWriter) -> Vec<u32> {
    let (beats, firsts) = plan_loads(q, c, d, rows, base, rng);
    for f in &beats {
        w.input_on("w", f);
    }
    firsts
}

/// The load beats of `write_loads` (their fields) and each group's first entry.
pub(crate) fn plan_loads(q: &QuantConfig, c: &TileConfig, d: &TileDerived, rows: &[Vec<u32>], base: u32, rng: &mut Rng) -> (Vec<Vec<String>>, Vec<u32>) {
    let nb = rows[0].len().div_ceil(c.lanes as usize);
    let groups = rows.len().div_ceil(c.lines as usize);
    assert!(
        base as usize + groups * nb <= d.weight_buffer_entries as usize,
        "{} rows of K = {} from entry {base} do not fit the buffer's {} entries",
        rows.len(),
        rows[0].len(),
        d.weight_buffer_entries
    );
    let mut order: Vec<(usize, usize)> = (0..groups).flat_map(|gi| (0..nb).map(move |b| (gi, b))).collect();
    let rest = &mut order[1..];
    for i in (1..rest.len()).rev() {
        rest.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut beats = vec![];
    for (gi, b) in order {
        let idx = entry_indices(q, c, rows, gi, b, rng);
        let junk_rows: Vec<u64> = (0..c.lines).map(|_| rng.below(2)).collect();
        let entry = base as u64 + (gi * nb + b) as u64;
        let last = rng.chance(1, 2);
        beats.push(w_fields(d, rng, hex_lanes(&idx, q.nw), hex_lanes(&junk_rows, 1), last, OP_LOAD, Some(entry)));
    }
    (beats, (0..groups).map(|gi| base + (gi * nb) as u32).collect())
}

/// What the tile's tables hold, so a GEMV with the same codebooks and k loads nothing.
#[derive(Default)]
struct Loaded {
    tables: Option<(Vec<i64>, Vec<i64>)>,
    k: Option<usize>,
    /// Inputs were written since the last `sync` (a cfg write must start a segment).
    pending: bool,
}

pub(crate) fn cfg_addr(d: &TileDerived, region: u64, off: u64) -> u64 {
    region << d.cfg_offset_bits | off
}

/// Checks one GEMV against the tile's limits (a caller's bug otherwise: panics naming it).
fn check_gemv(q: &QuantConfig, c: &TileConfig, g: &Gemv) {
    let kk = g.k_len();
    assert!(kk >= 1 && kk <= c.k_max as usize, "GEMV with K = {kk}: the tile takes 1..={}", c.k_max);
    assert!(!g.rows.is_empty(), "GEMV with no rows");
    assert!(g.k <= c.k as usize, "GEMV with k = {}: the tile is built for k <= {}", g.k, c.k);
    assert_eq!(g.ca.len(), 1 << q.na, "ca must have 2^na entries");
    assert_eq!(g.cw.len(), 1 << q.nw, "cw must have 2^nw entries");
    assert!(g.ca.windows(2).all(|p| p[0] < p[1]), "ca must be strictly ascending");
    for r in &g.rows {
        assert_eq!(r.len(), kk, "every row must have K = {kk} indices");
    }
}

/// Writes one GEMV (tables first when they differ from what is loaded) with every row streamed.
fn write_gemv(q: &QuantConfig, c: &TileConfig, d: &TileDerived, g: &Gemv, rng: &mut Rng, w: &mut GoldenWriter, loaded: &mut Loaded) {
    write_gemv_from(q, c, d, g, &[], rng, w, loaded)
}

/// Writes one GEMV; `from[gi]` = Some(entry): group gi's rows are read from the weight buffer
/// (one read token naming the group's first entry; the rows must be there), None (or `from`
/// empty): streamed.
#[allow(clippy::too_many_arguments)]
fn write_gemv_from(
    q: &QuantConfig,
    c: &TileConfig,
    d: &TileDerived,
    g: &Gemv,
    from: &[Option<u32>],
    rng: &mut Rng,
    w: &mut GoldenWriter,
    loaded: &mut Loaded,
) {
    check_gemv(q, c, g);
    let tables = (g.ca.clone(), g.cw.clone());
    if loaded.tables.as_ref() != Some(&tables) || loaded.k != Some(g.k) {
        if loaded.pending {
            w.sync();
            loaded.pending = false;
        }
        write_tables_only(q, c, d, g, w, loaded);
    }
    loaded.pending = true;
    let (l, p) = (c.lanes as usize, c.lines as usize);
    let kk = g.k_len();
    let nb = kk.div_ceil(l);
    let xmin = -(1i64 << (q.x_bits - 1));
    let xmax = (1i64 << (q.x_bits - 1)) - 1;
    // x beats; lanes past K carry junk (extreme values too) that must not be chosen or counted.
    for bi in 0..nb {
        let mut vals = vec![0u64; l];
        let mut keep = vec![0u64; l];
        for (lane, v) in vals.iter_mut().enumerate() {
            let pos = bi * l + lane;
            if pos < kk {
                *v = g.x[pos] as u64;
                keep[lane] = 1;
            } else {
                *v = match rng.below(4) {
                    0 => xmin,
                    1 => xmax,
                    _ => rng.range(xmin, xmax),
                } as u64;
            }
        }
        let last = bi == nb - 1;
        // Keep is read on the last beat only; on the others it is random.
        let keep = if last { keep } else { (0..l).map(|_| rng.below(2)).collect() };
        w.input_on("x", &[hex_lanes(&vals, q.x_bits), hex_lanes(&keep, 1), (last as u8).to_string()]);
    }
    // Weight beats, group by group; lines without a row and lanes past K carry junk. A group
    // read from the buffer is one token (its idx is junk).
    let groups = g.rows.len().div_ceil(p);
    for gi in 0..groups {
        let rows: Vec<u64> = (0..p).map(|j| (gi * p + j < g.rows.len()) as u64).collect();
        if let Some(Some(entry)) = from.get(gi) {
            let junk: Vec<u64> = (0..p * l).map(|_| rng.below(1 << q.nw)).collect();
            let last = gi == groups - 1;
            w_beat(d, w, rng, hex_lanes(&junk, q.nw), hex_lanes(&rows, 1), last, OP_READ, Some(*entry as u64));
            continue;
        }
        for bi in 0..nb {
            let idx = entry_indices(q, c, &g.rows, gi, bi, rng);
            let last = gi == groups - 1 && bi == nb - 1;
            w_beat(d, w, rng, hex_lanes(&idx, q.nw), hex_lanes(&rows, 1), last, OP_STREAM, None);
        }
    }
    let y = g.expected();
    for gi in 0..groups {
        let vals: Vec<u64> = (0..p).map(|j| *y.get(gi * p + j).unwrap_or(&0) as u64).collect();
        let rows: Vec<u64> = (0..p).map(|j| (gi * p + j < g.rows.len()) as u64).collect();
        for &v in &y[gi * p..(gi * p + p).min(y.len())] {
            assert!(
                v >= -(1i64 << (d.y_bits - 1)) && v < (1i64 << (d.y_bits - 1)),
                "result {v} does not fit the tile's {} bits",
                d.y_bits
            );
        }
        w.out(&[hex_lanes(&vals, d.y_bits), hex_lanes(&rows, 1)]);
    }
}

/// The golden file of a list of GEMVs (the layer's MatMuls, or any other): tables and the
/// runtime k are loaded whenever they change, then each GEMV's x beats, weight beats and
/// expected results (from `Gemv::expected`). `seed` draws the junk in lanes and lines that
/// carry no element. Panics if a GEMV does not fit the tile (K, k, codebook sizes).
pub fn golden_gemvs(cfg: &Config, gemvs: &[Gemv], seed: u64, w: &mut GoldenWriter) {
    let c = section(cfg);
    let d = TileDerived::new(&cfg.quant, c);
    let mut rng = Rng::new(seed);
    header("tile", &d, w);
    let mut loaded = Loaded::default();
    for g in gemvs {
        write_gemv(&cfg.quant, c, &d, g, &mut rng, w, &mut loaded);
    }
    w.sync();
}

/// A random GEMV: K anywhere in 1..=k_max (edges and short vectors often), rows with partial
/// groups, runtime k from 0 to the maximum, and vectors with ties, repeats and extreme values.
pub fn random_gemv(rng: &mut Rng, q: &QuantConfig, c: &TileConfig, ca: &[i64], cw: &[i64]) -> Gemv {
    let k_max = c.k_max as i64;
    let kk = match rng.below(16) {
        0 => 1,
        1 => k_max,
        2 => c.lanes as i64,
        3..=5 => rng.range(1, k_max),
        _ => ((rng.unit() * (k_max as f64).ln()).exp() as i64).clamp(1, k_max),
    } as usize;
    let p = c.lines as i64;
    let rows = match rng.below(6) {
        0 => 1,
        1 => p,
        _ => rng.range(1, 3 * p + 1),
    } as usize;
    let k = match rng.below(6) {
        0 => 0,
        1 | 2 => c.k as usize,
        _ => rng.range(1, c.k as i64) as usize,
    };
    let x = random_x(rng, q, ca, kk);
    let same = rng.chance(1, 10);
    let rows: Vec<Vec<u32>> = (0..rows)
        .map(|_| {
            if same {
                vec![rng.below(1 << q.nw) as u32; kk]
            } else {
                (0..kk).map(|_| rng.below(1 << q.nw) as u32).collect()
            }
        })
        .collect();
    let _ = cw;
    Gemv { ca: ca.to_vec(), cw: cw.to_vec(), x, rows, k }
}

/// A random activation vector of length `kk`: all equal, three values full of ties, extremes,
/// centroid-scale values with rare spikes, or uniform.
fn random_x(rng: &mut Rng, q: &QuantConfig, ca: &[i64], kk: usize) -> Vec<i64> {
    let xmin = -(1i64 << (q.x_bits - 1));
    let xmax = (1i64 << (q.x_bits - 1)) - 1;
    match rng.below(8) {
        // All equal: both lists take the lowest positions (overlaps).
        0 => vec![rng.range(xmin, xmax); kk],
        // A few distinct values: ties everywhere.
        1 => {
            let vals: Vec<i64> = (0..3).map(|_| rng.range(xmin, xmax)).collect();
            (0..kk).map(|_| vals[rng.below(3) as usize]).collect()
        }
        // Extremes.
        2 => (0..kk).map(|_| if rng.chance(1, 2) { xmin } else { xmax }).collect(),
        // Centroid-scale values with rare large spikes (a realistic activation).
        3 | 4 => {
            let span = ca[ca.len() - 1] - ca[0];
            (0..kk)
                .map(|_| {
                    if rng.chance(1, 50) {
                        rng.range(xmin, xmax)
                    } else {
                        (ca[0] + rng.range(-span / 4, span + span / 4)).clamp(xmin, xmax)
                    }
                })
                .collect()
        }
        _ => (0..kk).map(|_| rng.range(xmin, xmax)).collect(),
    }
}

/// A GEMV of the given shape with uniform random data and the config's k.
fn shaped_gemv(rng: &mut Rng, q: &QuantConfig, c: &TileConfig, ca: &[i64], cw: &[i64], kk: u32, rows: u32) -> Gemv {
    let xmin = -(1i64 << (q.x_bits - 1));
    let xmax = (1i64 << (q.x_bits - 1)) - 1;
    Gemv {
        ca: ca.to_vec(),
        cw: cw.to_vec(),
        x: (0..kk).map(|_| rng.range(xmin, xmax)).collect(),
        rows: (0..rows).map(|_| (0..kk).map(|_| rng.below(1 << q.nw) as u32).collect()).collect(),
        k: c.k as usize,
    }
}

/// Random GEMVs in segments of fresh codebooks, then the timed segments: the manifest's
/// workloads and every vector length of 1 ..= 3·weigh_steps beats (6 groups each).
pub fn golden(cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    golden_block("tile", cfg, vectors, seed, w)
}

/// `golden` for the block called `block` (`dq_tile` writes the same stimulus under its name).
pub fn golden_block(block: &str, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
    let q = &cfg.quant;
    let c = section(cfg);
    let d = TileDerived::new(q, c);
    if q.float().is_some() {
        return crate::tile_fp::golden(q, c, &d, vectors, seed, w);
    }
    let mut rng = Rng::new(seed);
    header(block, &d, w);
    let mut loaded = Loaded::default();
    let codebooks = |rng: &mut Rng| {
        (reference::random_codebook(rng, 1 << q.na, q.ac_bits), reference::random_codebook(rng, 1 << q.nw, q.wc_bits))
    };
    let mut done = 0;
    if d.weight_buffer_rows > 0 {
        done = vectors;
        random_buffered(q, c, &d, vectors, &mut rng, w, &mut loaded);
    }
    while done < vectors {
        let (ca, cw) = codebooks(&mut rng);
        let n = 25.min(vectors - done);
        for _ in 0..n {
            let g = random_gemv(&mut rng, q, c, &ca, &cw);
            write_gemv(q, c, &d, &g, &mut rng, w, &mut loaded);
        }
        done += n;
    }
    // Timed segments: each starts with a cfg write, so the bench waits for idle first.
    let (ca, cw) = codebooks(&mut rng);
    for t in timed_workloads(c, &d) {
        let gemvs: Vec<Gemv> = t.gemvs.iter().map(|&(kk, r)| shaped_gemv(&mut rng, q, c, &ca, &cw, kk, r)).collect();
        // Buffered: the rows are loaded in an untimed segment of their own first (no x beats,
        // so no mid-segment reset), each GEMV's at its own place.
        let (mut from, mut reloads) = (vec![], vec![]);
        if t.buffered {
            if loaded.pending {
                w.sync();
            }
            let rows: Vec<(&[Vec<u32>], usize)> = gemvs.iter().map(|g| (g.rows.as_slice(), g.k_len())).collect();
            (from, reloads) = timed_loads(q, c, &d, &rows, t.reload, &mut rng, w);
            loaded.pending = true;
        }
        if loaded.pending {
            w.sync();
        }
        loaded.pending = false;
        loaded.k = None; // force the k write: a segment that starts with cfg waits for idle
        // The tables (if they changed) and k come first, then the timing line.
        let first = &gemvs[0];
        write_tables_only(q, c, &d, first, w, &mut loaded);
        w.timing(t.cycles);
        for (i, g) in gemvs.iter().enumerate() {
            for f in reloads.get(i).map(Vec::as_slice).unwrap_or(&[]) {
                w.input_on("w", f);
            }
            write_gemv_from(q, c, &d, g, from.get(i).map(Vec::as_slice).unwrap_or(&[]), &mut rng, w, &mut loaded);
        }
        w.sync();
        loaded.pending = false;
    }
}

/// A layer for the weight buffer: codebooks, K, rows and its runtime k.
/// The weight-buffer loads of a buffered timed segment (integer and float tiles alike): each
/// GEMV's rows (with its K) are loaded one after the other in an untimed segment written now, or, for a
/// reload segment's later GEMVs, planned over the first's, to be sent inside the timed segment
/// right before that GEMV's tokens. Returns per GEMV the buffer entry of each group's first row
/// (for `write_gemv_from`) and the load beats to send before it (empty when already loaded).
pub(crate) fn timed_loads(
    q: &QuantConfig,
    c: &TileConfig,
    d: &TileDerived,
    rows: &[(&[Vec<u32>], usize)],
    reload: bool,
    rng: &mut Rng,
    w: &mut GoldenWriter,
) -> (Vec<Vec<Option<u32>>>, Vec<Vec<Vec<String>>>) {
    let (mut from, mut reloads) = (vec![], vec![]);
    let mut base = 0;
    for (i, &(r, k_len)) in rows.iter().enumerate() {
        if reload && i > 0 {
            let (beats, firsts) = plan_loads(q, c, d, r, 0, rng);
            reloads.push(beats);
            from.push(firsts.into_iter().map(Some).collect());
            continue;
        }
        reloads.push(vec![]);
        let firsts = write_loads(q, c, d, r, base, rng, w);
        base = firsts.last().unwrap() + k_len.div_ceil(c.lanes as usize) as u32;
        from.push(firsts.into_iter().map(Some).collect());
    }
    (from, reloads)
}

/// A random layer's rows shaped to fit half of the weight buffer (integer and float tiles
/// alike): K cut to what half holds, then as many rows as fit (at most 8 groups' worth), the
/// GEMV's own rows first, padded with random ones one layer in four so that the half fills.
pub(crate) fn buffer_layer_rows(q: &QuantConfig, c: &TileConfig, d: &TileDerived, rows: &[Vec<u32>], k_len: usize, rng: &mut Rng) -> Vec<Vec<u32>> {
    let half = d.weight_buffer_entries / 2;
    let l = c.lanes as usize;
    let kk = k_len.min(half as usize * l);
    let nb = kk.div_ceil(l);
    let cap = (half as usize / nb).min(8) * c.lines as usize;
    let n = if rng.chance(1, 4) { cap } else { rows.len().min(cap) };
    rows[..rows.len().min(n)]
        .iter()
        .map(|r| r[..kk].to_vec())
        .chain((rows.len()..n).map(|_| (0..kk).map(|_| rng.below(1 << q.nw) as u32).collect()))
        .collect()
}

struct BufLayer {
    ca: Vec<i64>,
    cw: Vec<i64>,
    rows: Vec<Vec<u32>>,
    k: usize,
}

/// Random GEMVs of a tile with a weight buffer, the way a layer uses it: the buffer is two
/// halves; a layer's rows are loaded into one half while the GEMVs of the previous layer (one
/// to four tokens, fresh x each, the same rows) read the other half, their load beats in chunks
/// between those GEMVs' weight beats (s_w keeps them in order). About one group in eight is
/// streamed instead of read. Each segment only reads one half and loads the other, so a
/// mid-segment reset and re-run reads the same rows again.
fn random_buffered(q: &QuantConfig, c: &TileConfig, d: &TileDerived, vectors: u32, rng: &mut Rng, w: &mut GoldenWriter, loaded: &mut Loaded) {
    let half = d.weight_buffer_entries / 2;
    let new_layer = |rng: &mut Rng| {
        let ca = reference::random_codebook(rng, 1 << q.na, q.ac_bits);
        let cw = reference::random_codebook(rng, 1 << q.nw, q.wc_bits);
        let t = random_gemv(rng, q, c, &ca, &cw);
        BufLayer { rows: buffer_layer_rows(q, c, d, &t.rows, t.k_len(), rng), ca, cw, k: t.k }
    };
    let mut cur = new_layer(rng);
    let mut h = 0u32;
    if loaded.pending {
        w.sync();
    }
    let mut firsts = write_loads(q, c, d, &cur.rows, 0, rng, w);
    loaded.pending = true;
    let mut done = 0;
    while done < vectors {
        let next = new_layer(rng);
        // The next layer's load beats, written in chunks after each GEMV's weight beats.
        let (loads, next_firsts) = plan_loads(q, c, d, &next.rows, (1 - h) * half, rng);
        let tokens = (1 + rng.below(4) as u32).min(vectors - done);
        let chunk = loads.len().div_ceil(tokens as usize);
        for t in 0..tokens as usize {
            let kk = cur.rows[0].len();
            let k = if rng.chance(1, 4) { rng.range(0, c.k as i64) as usize } else { cur.k };
            let g = Gemv { ca: cur.ca.clone(), cw: cur.cw.clone(), x: random_x(rng, q, &cur.ca, kk), rows: cur.rows.clone(), k };
            let from: Vec<Option<u32>> = firsts.iter().map(|&f| if rng.chance(1, 8) { None } else { Some(f) }).collect();
            write_gemv_from(q, c, d, &g, &from, rng, w, loaded);
            for f in loads.iter().skip(t * chunk).take(chunk) {
                w.input_on("w", f);
            }
        }
        done += tokens;
        cur = next;
        firsts = next_firsts;
        h = 1 - h;
    }
}

/// The golden file's timed segments, in order: (predicted cycles, GEMVs `(K, rows)` back to
/// back). The manifest's three workloads, then every vector length of 1 ..= 3·max(weigh_steps,
/// comp_steps) beats (6 groups each). A bench log's `timing:` lines follow this order. The
/// lengths follow the index line's weigh steps whatever the tile's lines are, so a tile with
/// dequantize-multiply lines gets the same GEMVs (only the predicted cycles differ).
pub fn timed_workloads(c: &TileConfig, d: &TileDerived) -> Vec<Timed> {
    let ws = d.line.weigh_steps;
    let t = |cycles, gemvs, buffered| Timed { cycles, gemvs, buffered, reload: false };
    let mut timed = vec![
        t(d.predicted.gemv_kmax_rows64_cycles, vec![(c.k_max, 64)], false),
        t(d.predicted.gemv_one_beat_rows64_cycles, vec![(c.lanes, 64)], false),
        t(d.predicted.two_gemvs_cycles, vec![(c.k_max / 2, 2 * c.lines + 1); 2], false),
    ];
    let sweep = |buffered: bool, timed: &mut Vec<Timed>| {
        for n in 1..=3 * ws.max(d.comp_steps) {
            if n * c.lanes > c.k_max || (buffered && 6 * n > d.weight_buffer_entries) {
                break;
            }
            let shape = vec![(n * c.lanes, 6 * c.lines)];
            timed.push(t(timing::cycles(d, &shape), shape, buffered));
        }
    };
    sweep(false, &mut timed);
    if d.weight_buffer_rows > 0 {
        // The same lengths with the rows read from the buffer: the same cycles.
        sweep(true, &mut timed);
        // Reloads: GEMV A reads its rows, loads put B's rows over A's (they must wait for A's
        // reads), GEMV B reads them; the loads overlap B's vector phase or, when longer,
        // delay its first token.
        for n in [1, ws, 2 * ws, 3 * ws.max(d.comp_steps)] {
            if n * c.lanes > c.k_max || 6 * n > d.weight_buffer_entries {
                continue;
            }
            let (k, rows) = (n * c.lanes, 6 * c.lines);
            let steps = [
                timing::Step { k, rows, buffered: true, loads: 0 },
                timing::Step { k, rows, buffered: true, loads: 6 * n },
            ];
            timed.push(Timed { cycles: timing::cycles_steps(d, &steps), gemvs: vec![(k, rows); 2], buffered: true, reload: true });
        }
    }
    timed
}

/// One timed segment: the predicted cycles of GEMVs `(K, rows)` back to back, rows streamed
/// or read from the weight buffer (loaded before the segment).
#[derive(Clone, Debug, PartialEq)]
pub struct Timed {
    pub cycles: u64,
    pub gemvs: Vec<(u32, u32)>,
    pub buffered: bool,
    /// Buffered, and every GEMV after the first is preceded (on s_w) by the loads of its rows
    /// into the entries the previous one read.
    pub reload: bool,
}

/// Loads `g`'s tables and k (as `write_gemv` would) without writing the GEMV.
fn write_tables_only(q: &QuantConfig, c: &TileConfig, d: &TileDerived, g: &Gemv, w: &mut GoldenWriter, loaded: &mut Loaded) {
    let _ = c;
    let dw = d.cfg_data_bits;
    let tables = (g.ca.clone(), g.cw.clone());
    if loaded.tables.as_ref() != Some(&tables) {
        for (j, v) in reference::lut(&g.ca, &g.cw, q.nw).iter().enumerate() {
            w.cfg(cfg_addr(d, REGION_LUT, j as u64), &hex_signed(*v, dw));
        }
        for (j, v) in reference::midpoints(&g.ca).iter().enumerate() {
            w.cfg(cfg_addr(d, REGION_MIDPOINT, j as u64), &hex_signed(*v, dw));
        }
        for (j, v) in g.ca.iter().enumerate() {
            w.cfg(cfg_addr(d, REGION_CA, j as u64), &hex_signed(*v, dw));
        }
        for (j, v) in g.cw.iter().enumerate() {
            w.cfg(cfg_addr(d, REGION_CW, j as u64), &hex_signed(*v, dw));
        }
        loaded.tables = Some(tables);
    }
    w.cfg(cfg_addr(d, REGION_K, 0), &hex_signed(g.k as i64, dw));
    loaded.k = Some(g.k);
}

// ---------------------------------------------------------------------------------------------
// Registry

pub fn section(cfg: &Config) -> &TileConfig {
    cfg.tile.as_ref().expect("block selected only when [tile] is present")
}

pub struct TileBlock;

impl BlockKind for TileBlock {
    fn name(&self) -> &'static str {
        "tile"
    }
    fn top(&self) -> &'static str {
        TOP
    }
    fn section(&self) -> &'static str {
        "tile"
    }
    fn selected(&self, cfg: &Config) -> bool {
        cfg.tile.is_some()
    }
    fn validate(&self, cfg: &Config) -> Result<(), String> {
        section(cfg).validate(&cfg.quant)
    }
    fn derived(&self, cfg: &Config) -> serde_json::Value {
        serde_json::to_value(TileDerived::new(&cfg.quant, section(cfg))).unwrap()
    }
    fn generate(&self, d: &mut Design, cfg: &Config, module: &str) -> Handle {
        generate(d, &cfg.quant, section(cfg), module)
    }
    fn golden(&self, cfg: &Config, vectors: u32, seed: u64, w: &mut GoldenWriter) {
        golden(cfg, vectors, seed, w)
    }
    fn float_mode(&self) -> bool {
        true
    }
    fn workload(&self) -> Option<Workload> {
        Some(Workload {
            segment: 0,
            predicted: "/predicted/gemv_kmax_rows64_cycles",
            items: 64,
            per_item: |c| Some(c.tile.as_ref()?.k_max as u64),
            unit: "MAC/cycle",
            kind: "one GEMV of 64 rows, K = k_max, with outlier compensation",
            size: "GEMV 64 x K=",
        })
    }
    fn bottleneck(&self, derived: &serde_json::Value) -> Option<String> {
        Some(derived.get("bottleneck_kmax_rows64")?.as_str()?.to_string())
    }
    fn multipliers(&self, derived: &serde_json::Value) -> Option<u64> {
        let g = |k: &str| derived.get(k).and_then(serde_json::Value::as_u64);
        // Dequantize-multiply lines have one multiplier per lane instead of the weighing's.
        let per_line = if derived.get("line").and_then(serde_json::Value::as_str) == Some("dequant") { "lanes" } else { "reduce_width" };
        Some(g("lines")? * (g(per_line)? + g("comp_macs")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::Design;

    fn derived(q: &QuantConfig, c: &TileConfig) -> TileDerived {
        c.validate(q).unwrap();
        TileDerived::new(q, c)
    }

    /// Back to back, groups of rows leave one every max(beats, weigh_steps, comp_steps) cycles,
    /// for every vector length from 1 to 3 weigh steps, in tiles of several shapes.
    #[test]
    fn group_interval_is_max_of_beats_weighing_and_compensation() {
        let shapes = [
            (QuantConfig::default(), TileConfig::default()),
            (QuantConfig { na: 2, nw: 2, ..QuantConfig::default() }, TileConfig { lines: 2, lanes: 4, reduce_width: 4, comp_macs: 2, k_max: 256, k: 8, radix: 4, weight_buffer_rows: 0, ..TileConfig::default() }),
            (QuantConfig { na: 3, nw: 4, ..QuantConfig::default() }, TileConfig { lines: 4, lanes: 64, reduce_width: 16, comp_macs: 8, k_max: 4096, k: 20, radix: 16, weight_buffer_rows: 0, ..TileConfig::default() }),
            (QuantConfig::default(), TileConfig { lines: 3, lanes: 8, reduce_width: 256, comp_macs: 1, k_max: 64, k: 3, radix: 0, weight_buffer_rows: 0, ..TileConfig::default() }),
        ];
        for (q, c) in shapes {
            let d = derived(&q, &c);
            for n in 1..=3 * d.weigh_steps.max(d.comp_steps) {
                if n * c.lanes > c.k_max {
                    break;
                }
                let (_, outs) = timing::schedule(&d, &[(n * c.lanes, 40 * c.lines)]);
                let want = n.max(d.weigh_steps).max(d.comp_steps) as u64;
                for i in 20..40 {
                    assert_eq!(outs[i] - outs[i - 1], want, "{c:?} n={n}");
                }
            }
        }
    }

    /// Two edges of the config space the sweep tile_axes reached first, integer and float tiles:
    /// comp_macs = 2k (one compensation step per row, every multiplier its own slot: no slot
    /// stride, so no CM localparam, which the design check refused as unused) and lines = 1
    /// (the one-bit-per-line buses are plain wires: Verilator refused `line_s_ready[line]`).
    #[test]
    fn one_line_and_one_step_compensation_render() {
        for numerics in ["", "numerics = \"fp16\"\n"] {
            let text = format!("[quant]\nnw = 2\nna = 2\n{numerics}[tile]\nlines = 1\nlanes = 8\nreduce_width = 4\ncomp_macs = 8\nk_max = 64\nk = 4\nradix = 4\n");
            let cfg = crate::config::Config::parse(&text).unwrap();
            assert_eq!(TileDerived::new(&cfg.quant, cfg.tile.as_ref().unwrap()).comp_steps, 1);
            let r = crate::design::render(&cfg, "edges").unwrap_or_else(|e| panic!("{numerics}: {e}"));
            let file = |prefix: &str| r.files.iter().find(|(f, _)| f.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}"));
            let (name, comp) = file("kllm_tile_comp_");
            assert!(name.contains("_s8_m8_"), "{numerics}: 8 slots on 8 multipliers: {name}");
            let flat_comp = comp.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(!flat_comp.contains(" i_step,") && !flat_comp.contains("localparam CM "), "{numerics}: one step needs no step input, no stride");
            let (_, tile) = file("kllm_tile.v");
            let flat = tile.split_whitespace().collect::<Vec<_>>().join(" ");
            for bus in ["line_s_ready", "line_m_valid", "line_idle", "cf_rows"] {
                assert!(!flat.contains(&format!("{bus}[line]")), "{numerics}: {bus} is one bit with one line");
            }
            assert!(flat.contains("assign line_s_ready = ready;"), "{numerics}");
        }
    }

    /// The port tables of docs/tile.md and README.md are the generated module's port list, in
    /// order: name, direction and the width in the default tile (and, in docs/tile.md, the
    /// signedness and tile_buf's widths); a port marked "—" does not exist in that tile. A port
    /// added, removed or resized without the tables fails here.
    #[test]
    fn docs_port_table_matches_the_generated_tiles() {
        use crate::verilog::Dir;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let ports = |name: &str| -> Vec<(String, String, bool, String)> {
            let cfg = Config::load(&root.join(format!("generators/{name}.toml"))).unwrap();
            let mut d = Design::default();
            let h = generate(&mut d, &cfg.quant, section(&cfg), TOP);
            h.ports
                .iter()
                .map(|p| {
                    let dir = if p.dir == Dir::Input { "in" } else { "out" };
                    (p.name.clone(), dir.to_string(), p.signed, p.width.to_string())
                })
                .collect()
        };
        // (file, width columns: (column, config), whether the width column says ", signed")
        let tables: [(&str, &[(usize, &str)], bool); 2] =
            [("docs/tile.md", &[(3, "default"), (4, "tile_buf")], true), ("README.md", &[(2, "default")], false)];
        for (file, cols, signed) in tables {
            let doc = std::fs::read_to_string(root.join(file)).unwrap();
            let start = doc.find("<!-- port table").unwrap_or_else(|| panic!("{file} has no port table marker"));
            let rows: Vec<Vec<String>> = doc[start..]
                .lines()
                .skip(3)
                .take_while(|l| l.starts_with('|'))
                .map(|l| l.replace("\\|", "¦").split('|').map(|c| c.trim().to_string()).collect::<Vec<_>>())
                .collect();
            assert!(rows.len() >= 20, "only {} rows in {file}'s port table", rows.len());
            for &(col, name) in cols {
                let mut want = ports(name);
                if !signed {
                    want.iter_mut().for_each(|p| p.2 = false);
                }
                let table: Vec<(String, String, bool, String)> = rows
                    .iter()
                    .filter(|r| r[col + 1] != "—")
                    .map(|r| (r[1].trim_matches('`').to_string(), r[2].clone(), signed && r[3].ends_with(", signed"), r[col + 1].clone()))
                    .collect();
                assert_eq!(table, want, "{file}'s port table (width column of {name}) differs from the generated kllm_tile");
            }
        }
    }

    #[test]
    fn bad_configs_name_the_key_and_range() {
        let q = QuantConfig::default();
        let cases: Vec<(TileConfig, &str)> = vec![
            (TileConfig { lines: 0, ..TileConfig::default() }, "`tile.lines` = 0 is out of range (allowed 1..=64)"),
            (TileConfig { comp_macs: 0, ..TileConfig::default() }, "`tile.comp_macs` = 0 is out of range (allowed 1..=10)"),
            (TileConfig { k: 513, ..TileConfig::default() }, "`tile.k` = 513 is out of range (allowed 1..=512)"),
            (TileConfig { lanes: 12, ..TileConfig::default() }, "`tile.lanes` = 12 must be a power of two"),
            (TileConfig { k_max: 1000, ..TileConfig::default() }, "`tile.k_max` = 1000 must be a power of two"),
            (TileConfig { k_max: 16, ..TileConfig::default() }, "`tile.k_max` = 16 is out of range (allowed 32..=4096)"),
            (TileConfig { reduce_width: 3, ..TileConfig::default() }, "`tile.reduce_width` = 3 must be a power of two"),
            (TileConfig { radix: 8, ..TileConfig::default() }, "`tile.radix` = 8 does not divide the tree"),
        ];
        for (c, want) in cases {
            let e = c.validate(&q).unwrap_err();
            assert!(e.starts_with(want), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}
