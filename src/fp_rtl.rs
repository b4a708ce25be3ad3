//! Float-mode RTL building blocks (SPEC.md, "Float mode"), combinational, for the float-mode
//! blocks to instantiate:
//! - `kllm_fp_to_fixed_e{E}m{M}`: an F pattern to its exact value as a two's-complement integer
//!   in units of F's smallest subnormal ([`FloatFormat::to_fixed`]), the form every exact sum
//!   and every midpoint compare works in.
//! - `kllm_fixed_to_f32_w{W}_f{F}`: a W-bit exact sum with F fraction bits to binary32 with
//!   round-to-nearest-even (`RNE_32`, [`FloatFormat::rne32`]), the one rounding of a dot product.
//! - `kllm_fp_mul_e{E}m{M}`: `RNE_F(a · b)` ([`FloatFormat::mul_rne`]), the F multiplier of the
//!   dequantize-multiply baseline and of the compensation path.
//! - `kllm_fp_lt_w{W}` / `kllm_fp_cmp_w{W}`: `a < b` (and `a == b`) of two F patterns as real
//!   values, the comparator of the float encoder and of Orizuru's trees.
//!
//! All three are checked bit for bit against the Rust reference by the Verilator benches in
//! testbenches/fp/ (`make sim-fp`).

use crate::design::VERSION;
use crate::fp::FloatFormat;
use crate::verilog::{Item, Module, bl, if_, lit, ubits, zext};
use anyhow::{Result, bail};

/// Fraction bits of the fixed-point rounder: at most 149, so the fixed point's unit is never
/// finer than binary32's smallest subnormal (2^−149) and every bit of the input has a place.
pub const F32_FRAC_MAX: u32 = 149;
/// Input widths of the fixed-point rounder (bf16's exact sums need ~270 bits).
pub const F32_WIDTH_RANGE: std::ops::RangeInclusive<u32> = 2..=1024;

/// `kllm_fp_to_fixed_e{E}m{M}`: `q = f`'s value in units of `2^unit_exp`, 2^E + M − 1 bits.
pub fn fp_to_fixed(fmt: FloatFormat) -> Module {
    let (e, m) = (fmt.e(), fmt.m());
    let w = fmt.width();
    let qw = fmt.fixed_width();
    let mw = qw - 1; // magnitude bits
    let mut md = Module::new(format!("kllm_fp_to_fixed_e{e}m{m}"));
    md.doc(format!(
        "An E{e}M{m} value (bias {}) as an exact two's-complement integer in units of the",
        fmt.bias()
    ))
    .doc(format!(
        "format's smallest subnormal, 2^{}. Combinational: the significand shifted left by its",
        fmt.unit_exp()
    ))
    .doc("exponent. Infinity and NaN never arrive (SPEC.md, float mode); −0 and +0 both give 0.");
    md.input("f", w, &format!("E{e}M{m} bit pattern, finite")).output_signed(
        "q",
        qw,
        &format!("value · 2^{}, two's complement", -fmt.unit_exp()),
    );
    md.wire_eq("expf", e, format!("f[{}:{m}]", w - 2)).wire_eq("normal", 1, "|expf").wire_eq(
        "sig",
        m + 1,
        format!("{{normal, f[{}:0]}}", m - 1),
    );
    md.comment(
        "A normal number with biased exponent e is (2^M + frac) · 2^(e − 1) units; a subnormal\n\
         is frac units, the same as e = 1 without the hidden bit.",
    );
    md.wire_eq("shift", e, format!("normal ? expf - {} : {}", lit(e, 1), lit(e, 0)))
        .wire_eq("mag", mw, format!("{} << shift", zext("sig", m + 1, mw)))
        .wire_eq("pos", qw, "{1'b0, mag}")
        .assign("q", format!("f[{}] ? -pos : pos", w - 1));
    md
}

/// `kllm_fixed_to_f32_w{W}_f{F}`: the binary32 nearest (ties to even) to `s · 2^−F`, where `s`
/// is a W-bit two's-complement integer. 0 gives +0; a value beyond binary32's range (only
/// possible when W − 1 − F ≥ 128) gives ±infinity, IEEE's rounding of it (the reference refuses
/// such sums instead, so a float-mode block never produces one).
pub fn fixed_to_f32(w: u32, frac: u32) -> Result<Module> {
    if !F32_WIDTH_RANGE.contains(&w) {
        bail!(
            "fixed-to-binary32 rounder: width W = {w} is outside the supported range {}..={}",
            F32_WIDTH_RANGE.start(),
            F32_WIDTH_RANGE.end()
        );
    }
    if frac > F32_FRAC_MAX {
        bail!(
            "fixed-to-binary32 rounder: fraction bits F = {frac} is outside the supported range \
             0..={F32_FRAC_MAX}"
        );
    }
    // Bit p126 of the input weighs 2^−126, the smallest normal binary32 exponent. Below it the
    // result is subnormal: the normalising shift stops where that bit reaches the top.
    let clamp = frac >= 126;
    let p126 = frac.saturating_sub(126);
    let wx = w.max(p126 + 1); // the magnitude, widened so bit p126 exists
    // Guard zeros below the magnitude so the 24 significand bits, the round bit and at least
    // one sticky bit exist after the shift however narrow the input is.
    let g = 26u32.saturating_sub(wx);
    let t = wx + g;
    let lzw = ubits(wx as u64);
    // Biased exponent of a result whose leading one ends at the top: (wx − 1 − lz) − F + 127.
    let c = wx as u64 + 126 - frac as u64;
    let overflow_possible = c >= 255;
    let bw = ubits(c).max(8);

    let mut md = Module::new(format!("kllm_fixed_to_f32_w{w}_f{frac}"));
    md.doc(format!(
        "RNE_32: the binary32 nearest to s · 2^-{frac} (ties to even), s a {w}-bit two's-complement"
    ))
    .doc("exact sum. Combinational: magnitude, leading-zero count, normalising shift, round.")
    .doc("0 gives +0; a subnormal result is rounded at 2^-149 like any IEEE conversion.");
    if overflow_possible {
        md.doc("A value beyond binary32's largest finite number gives ±infinity.");
    }
    md.input_signed("s", w, &format!("exact value · 2^{frac}, two's complement")).output(
        "y",
        32,
        "binary32 bit pattern",
    );
    md.wire_eq("neg", 1, format!("s[{}]", w - 1)).wire_eq("mag", w, "neg ? -s : s");
    let mag_x = if wx > w { zext("mag", w, wx) } else { "mag".into() };
    md.wire_eq("mag_x", wx, mag_x);
    if clamp {
        md.comment(format!(
            "A one forced at bit {p126} (2^-126) caps the shift: smaller values stay subnormal."
        ));
        md.wire_eq("lz_in", wx, format!("mag_x | {}", one_hot(wx, p126)));
    } else {
        md.wire_eq("lz_in", wx, "mag_x");
    }
    leading_zeros(&mut md, "lz_in", wx, "lz");
    let base = if g > 0 { format!("{{mag_x, {g}'d0}}") } else { "mag_x".into() };
    md.wire_eq("norm", t, format!("{base} << lz"));
    md.comment(
        "norm's top bit is the hidden bit (0 for a subnormal or zero), then 23 fraction bits, the\n\
         round bit and the sticky bits.",
    );
    md.wire_eq("top", 1, format!("norm[{}]", t - 1))
        .wire_eq("frac", 23, format!("norm[{}:{}]", t - 2, t - 24))
        .wire_eq("rnd", 1, format!("norm[{}]", t - 25))
        .wire_eq("sticky", 1, format!("|norm[{}:0]", t - 26))
        .wire_eq(
            "bexp",
            bw,
            format!("top ? {} - {} : {}", lit(bw, c), zext("lz", lzw, bw), lit(bw, 0)),
        )
        .wire_eq("inc", 1, "rnd & (sticky | frac[0])");
    md.comment(
        "Adding the increment to {exponent, fraction} carries a full fraction into the exponent:\n\
         subnormal to normal, one binade up, or the largest finite number to infinity.",
    );
    md.wire_eq("exp_frac", 31, "{bexp[7:0], frac} + {30'd0, inc}");
    if overflow_possible {
        md.wire_eq("huge", 1, format!("bexp > {}", lit(bw, 254)))
            .assign("y", "huge ? {neg, 8'hff, 23'd0} : {neg, exp_frac}");
    } else {
        md.assign("y", "{neg, exp_frac}");
    }
    Ok(md)
}

/// `kllm_fp_mul_e{E}m{M}`: `p = RNE_F(a · b)`, the dequantize-multiply baseline's F multiplier
/// ([`FloatFormat::mul_rne`]). A product beyond the largest finite value gives ±infinity (IEEE);
/// the reference refuses such tables, so a float-mode block never sees one.
pub fn fp_mul(fmt: FloatFormat) -> Module {
    let (e, m, w) = (fmt.e(), fmt.m(), fmt.width());
    let bias = fmt.bias() as u64;
    let pw = 2 * m + 2; // significand product
    let lzw = ubits(pw as u64);
    // The biased result exponent BE = ua + ub + 1 − lz − bias (see below) can be negative;
    // it is carried with the offset K, so bexp_k = BE + K is never below 3.
    let k = pw as u64 + bias;
    let bexp_max = 2 * ((1u64 << e) - 2) + 1 + k;
    let bw = ubits(bexp_max);
    let dmax = pw + 1; // a right shift this far leaves only sticky bits
    let dw = ubits(dmax as u64);
    let xw = 2 * pw + 1;
    let mut md = Module::new(format!("kllm_fp_mul_e{e}m{m}"));
    md.doc(format!("RNE_F(a · b) for E{e}M{m} (bias {bias}): the exact significand product,"))
        .doc("normalised (or denormalised below the normal range), rounded once to nearest even.")
        .doc(
            "Combinational. Inputs are finite (SPEC.md); zero signs follow IEEE (sign of a XOR b).",
        )
        .doc("A product beyond the largest finite value gives ±infinity.");
    md.input("a", w, &format!("E{e}M{m} bit pattern, finite"))
        .input("b", w, &format!("E{e}M{m} bit pattern, finite"))
        .output("p", w, "RNE_F(a · b)");
    for x in ["a", "b"] {
        md.wire_eq(&format!("ef_{x}"), e, format!("{x}[{}:{m}]", w - 2))
            .wire_eq(&format!("nrm_{x}"), 1, format!("|ef_{x}"))
            .wire_eq(&format!("sig_{x}"), m + 1, format!("{{nrm_{x}, {x}[{}:0]}}", m - 1));
        md.comment(format!(
            "u_{x}: the exponent field, 1 for a subnormal ({x} = sig_{x} · 2^(u_{x} − bias − M))."
        ));
        md.wire_eq(&format!("u_{x}"), e, format!("nrm_{x} ? ef_{x} : {}", lit(e, 1)));
    }
    md.wire_eq("neg", 1, format!("a[{}] ^ b[{}]", w - 1, w - 1)).wire_eq(
        "prod",
        pw,
        format!("{} * {}", zext("sig_a", m + 1, pw), zext("sig_b", m + 1, pw)),
    );
    leading_zeros(&mut md, "prod", pw, "lz");
    md.comment(format!(
        "prod << lz has its leading one at bit 2M + 1, weighing 2^(u_a + u_b + 1 − lz − 2·bias),\n\
             so this normal form's biased exponent is BE = u_a + u_b + 1 − lz − bias, carried as\n\
             bexp_k = BE + {k} to stay positive. Below the normal range (BE ≤ 0) the significand\n\
             moves right by 1 − BE to the subnormal position."
    ));
    let ext = |x: &str, from: u32| zext(x, from, bw);
    md.wire_eq(
        "bexp_k",
        bw,
        format!(
            "{} + {} + {} - {}",
            ext("u_a", e),
            ext("u_b", e),
            lit(bw, 1 + k - bias),
            ext("lz", lzw)
        ),
    )
    .wire_eq("zero", 1, "~|prod")
    .wire_eq("normal", 1, format!("~zero & (bexp_k > {})", lit(bw, k)))
    .wire_eq("drop", bw, format!("{} - bexp_k", lit(bw, k + 1)))
    .wire_eq(
        "shr",
        dw,
        format!(
            "normal ? {} : (drop > {} ? {} : drop[{}:0])",
            lit(dw, 0),
            lit(bw, dmax as u64),
            lit(dw, dmax as u64),
            dw - 1
        ),
    )
    .wire_eq("lifted", pw, "prod << lz")
    .wire_eq("placed", xw, format!("{{lifted, {}'d0}} >> shr", pw + 1));
    md.comment(
        "placed's top M + 1 bits are the significand (its hidden bit is 1 exactly when the result\n\
         is normal), then the round bit and the sticky bits; placed is wide enough that nothing\n\
         is shifted out.",
    );
    md.wire_eq("hidden", 1, format!("placed[{}]", xw - 1))
        .wire_eq("frac", m, format!("placed[{}:{}]", xw - 2, xw - 1 - m))
        .wire_eq("rnd", 1, format!("placed[{}]", xw - 2 - m))
        .wire_eq("sticky", 1, format!("|placed[{}:0]", xw - 3 - m))
        .wire_eq("inc", 1, format!("rnd & (sticky | {})", if m == 1 { "frac" } else { "frac[0]" }))
        .wire_eq("bexp", bw, format!("hidden ? bexp_k - {} : {}", lit(bw, k), lit(bw, 0)))
        .wire_eq("huge", 1, format!("bexp > {}", lit(bw, (1u64 << e) - 2)));
    md.comment(
        "Adding the increment to {exponent, fraction} carries a full fraction into the exponent:\n\
         subnormal to normal, one binade up, or the largest finite value to infinity.",
    );
    md.wire_eq(
        "exp_frac",
        e + m,
        format!("{{bexp[{}:0], frac}} + {}", e - 1, zext("inc", 1, e + m)),
    )
    .assign("p", format!("huge ? {{neg, {e}'h{:x}, {m}'d0}} : {{neg, exp_frac}}", (1u64 << e) - 1));
    md
}

/// `kllm_fp_sub_e{E}m{M}`: `d = RNE_F(a − b)` ([`FloatFormat::sub_rne`]), the subtractor of the
/// compensation path's residual `x − ca[ia]`. Written the plain way, like the reference: both
/// operands to their exact fixed-point values (units of F's smallest subnormal), one exact
/// two's-complement difference, then one rounding to F of that fixed-point value (the
/// rounder of [`fixed_to_f32`] with F's significand and exponent range). A difference below the
/// normal range is a multiple of the smallest subnormal, so it is exact. Zero signs as IEEE: an
/// exact zero is +0 except (−0) − (+0) = −0. A difference beyond the largest finite value gives
/// ±infinity (IEEE); the reference refuses it, so a float-mode block never sees one.
pub fn fp_sub(fmt: FloatFormat) -> Module {
    let (e, m, w) = (fmt.e(), fmt.m(), fmt.width());
    let qw = fmt.fixed_width(); // signed width of one operand's exact value
    let dw = qw + 1; // signed width of the exact difference
    let mw = dw; // the magnitude |a − b| (< 2^qw; kept dw wide so every bit of the difference is used)
    // Guard zeros so the hidden bit, M fraction bits, the round bit and a sticky bit exist.
    let g = (m + 3).saturating_sub(mw);
    let t = mw + g;
    let lzw = ubits(mw as u64);
    // Biased exponent of a normal result whose leading one is bit L of the magnitude:
    // L + unit_exp = L + emin − M, so BE = L − M + 1 = (mw − 1 − lz) − M + 1 = mw − M − lz.
    let c = (mw - m) as u64;
    let bw = ubits(c).max(e);
    let mut md = Module::new(format!("kllm_fp_sub_e{e}m{m}"));
    md.doc(format!("RNE_F(a - b) for E{e}M{m} (bias {}): the exact difference of the two values in", fmt.bias()))
        .doc(format!("units of 2^{} ({dw}-bit two's complement), rounded once to nearest even.", fmt.unit_exp()))
        .doc("Combinational. Inputs are finite (SPEC.md); an exact zero is +0, except (-0) - (+0) = -0.")
        .doc("A difference beyond the largest finite value gives +-infinity.");
    md.input("a", w, &format!("E{e}M{m} bit pattern, finite"))
        .input("b", w, &format!("E{e}M{m} bit pattern, finite"))
        .output("d", w, "RNE_F(a - b)");
    md.comment(
        "Each operand's exact value: a normal number with biased exponent u is (2^M + frac) · 2^(u − 1)\n\
         units, a subnormal frac units (u = 1 without the hidden bit).",
    );
    for x in ["a", "b"] {
        md.wire_eq(&format!("ef_{x}"), e, format!("{x}[{}:{m}]", w - 2))
            .wire_eq(&format!("nrm_{x}"), 1, format!("|ef_{x}"))
            .wire_eq(&format!("sig_{x}"), m + 1, format!("{{nrm_{x}, {x}[{}:0]}}", m - 1))
            .wire_eq(&format!("sh_{x}"), e, format!("nrm_{x} ? ef_{x} - {} : {}", lit(e, 1), lit(e, 0)))
            .wire_eq(&format!("mag_{x}"), dw, format!("{} << sh_{x}", zext(&format!("sig_{x}"), m + 1, dw)))
            .wire_eq(&format!("q_{x}"), dw, format!("{x}[{}] ? -mag_{x} : mag_{x}", w - 1));
    }
    md.comment("The exact difference (|a - b| <= 2 · largest finite < 2^(dw-1): no overflow) and its magnitude.");
    md.wire_eq("diff", dw, "q_a - q_b")
        .wire_eq("neg", 1, format!("diff[{}]", dw - 1))
        .wire_eq("mag", mw, "neg ? -diff : diff");
    md.comment(format!(
        "A one forced at bit {m} (2^emin) caps the normalising shift: a smaller magnitude stays\n\
         subnormal, where it is exact (a multiple of the smallest subnormal)."
    ));
    md.wire_eq("lz_in", mw, format!("mag | {}", one_hot(mw, m)));
    leading_zeros(&mut md, "lz_in", mw, "lz");
    let base = if g > 0 { format!("{{mag, {g}'d0}}") } else { "mag".into() };
    md.wire_eq("norm", t, format!("{base} << lz"));
    md.comment(
        "norm's top bit is the hidden bit (0 for a subnormal or zero), then M fraction bits, the\n\
         round bit and the sticky bits.",
    );
    md.wire_eq("hidden", 1, format!("norm[{}]", t - 1))
        .wire_eq("frac", m, format!("norm[{}:{}]", t - 2, t - 1 - m))
        .wire_eq("rnd", 1, format!("norm[{}]", t - 2 - m));
    md.wire_eq("sticky", 1, format!("|norm[{}:0]", t - 3 - m))
        .wire_eq("inc", 1, format!("rnd & (sticky | {})", if m == 1 { "frac" } else { "frac[0]" }))
        .wire_eq(
            "bexp",
            bw,
            format!("hidden ? {} - {} : {}", lit(bw, c), zext("lz", lzw, bw), lit(bw, 0)),
        )
        .wire_eq("huge", 1, format!("bexp > {}", lit(bw, (1u64 << e) - 2)));
    md.comment(
        "Adding the increment to {exponent, fraction} carries a full fraction into the exponent:\n\
         subnormal to normal, one binade up, or the largest finite value to infinity.",
    );
    md.wire_eq("exp_frac", e + m, format!("{{bexp[{}:0], frac}} + {}", e - 1, zext("inc", 1, e + m)));
    md.comment("An exact zero is +0, except (-0) - (+0) = -0 (IEEE, round to nearest).");
    md.wire_eq("zero", 1, "~|diff")
        .wire_eq("sign", 1, format!("zero ? (a[{}] & ~b[{}]) : neg", w - 1, w - 1))
        .assign("d", format!("huge ? {{sign, {e}'h{:x}, {m}'d0}} : {{sign, exp_frac}}", (1u64 << e) - 1));
    md
}

/// `kllm_fp_lt_w{W}` (`eq = false`) or `kllm_fp_cmp_w{W}` (`eq = true`): `lt = a < b` and, for
/// the second, `eq = a == b`, where `a` and `b` are W-bit sign-magnitude float patterns compared
/// as **real values** ([`FloatFormat::order_key`]): −0 equals +0, and below that the magnitude
/// field (exponent and fraction, sign bit cleared) is ordered like the magnitude. One magnitude
/// comparator (`<`) and one equality per unit, no negation; the same for every format of width W.
/// Infinity and NaN never arrive (SPEC.md); their patterns would order above every finite value
/// of their sign (NaN above infinity), which nothing relies on.
pub fn fp_compare(w: u32, eq: bool) -> Module {
    let mut md = Module::new(format!("kllm_fp_{}_w{w}", if eq { "cmp" } else { "lt" }));
    md.doc(format!(
        "{} of two {w}-bit float patterns as real values: -0 equals +0; the magnitude field",
        if eq { "a < b and a == b" } else { "a < b" }
    ))
    .doc("(sign cleared) orders like the magnitude. Combinational; inputs are finite (SPEC.md).");
    md.input("a", w, "float bit pattern, finite")
        .input("b", w, "float bit pattern, finite")
        .output("lt", 1, "a < b as real values");
    if eq {
        md.output("eq", 1, "a == b as real values (-0 == +0)");
    }
    let (s, top) = (w - 1, w - 2);
    md.wire_eq("mag_a", w - 1, format!("a[{top}:0]"))
        .wire_eq("mag_b", w - 1, format!("b[{top}:0]"))
        .wire_eq("mag_lt", 1, "mag_a < mag_b")
        .wire_eq("mag_eq", 1, "mag_a == mag_b")
        .wire_eq("zeros", 1, "~|mag_a & ~|mag_b");
    md.comment(
        "Both zeros: equal whatever their signs. Otherwise a negative a is below a non-negative b;\n\
         of two non-negatives the smaller magnitude is smaller, of two negatives the larger.",
    );
    md.assign(
        "lt",
        format!("~zeros & (a[{s}] ? (~b[{s}] | (~mag_lt & ~mag_eq)) : (~b[{s}] & mag_lt))"),
    );
    if eq {
        md.assign("eq", format!("zeros | (mag_eq & (a[{s}] == b[{s}]))"));
    }
    md
}

/// Declares `reg [ubits(width)-1:0] out` = the leading zeros of the `width`-bit `input` (`width`
/// for 0), as a priority loop: the lowest set bit found last wins. Needs an integer `i`.
fn leading_zeros(md: &mut Module, input: &str, width: u32, out: &str) {
    let w = ubits(width as u64);
    md.comment(format!(
        "Leading zeros of {input} (all {width} for 0): the lowest set bit found last wins."
    ));
    md.reg(out, w).push(Item::Integer("i".into()));
    let at = bl(out, format!("{} - i[{}:0]", lit(w, width as u64 - 1), w - 1));
    md.comb(
        "lzc",
        vec![
            bl(out, lit(w, width as u64)),
            crate::verilog::Stmt::For {
                var: "i".into(),
                count: width,
                body: vec![if_(format!("{input}[i]"), vec![at])],
            },
        ],
    );
}

/// A `width`-bit constant with only bit `pos` set, written as Verilog.
fn one_hot(width: u32, pos: u32) -> String {
    let above = width - pos - 1;
    let mut parts = vec![];
    if above > 0 {
        parts.push(format!("{above}'d0"));
    }
    parts.push("1'b1".into());
    if pos > 0 {
        parts.push(format!("{pos}'d0"));
    }
    format!("{{{}}}", parts.join(", "))
}

/// The text of one module's file: header (generator version, parameters), `default_nettype`.
pub fn render(m: &Module, params: &str) -> String {
    format!(
        "// Generated by kllm-gen {VERSION}: {} ({params}). Do not edit: regenerate with\n\
         // `make sim-fp`.\n\n`default_nettype none\n\n{}\n`default_nettype wire\n",
        m.name,
        crate::verilog::emit_module(m)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::Design;

    #[test]
    fn one_hot_constants() {
        assert_eq!(one_hot(8, 0), "{7'd0, 1'b1}");
        assert_eq!(one_hot(8, 7), "{1'b1, 7'd0}");
        assert_eq!(one_hot(9, 3), "{5'd0, 1'b1, 3'd0}");
    }

    #[test]
    fn rounder_parameters_outside_the_range_get_one_line() {
        for (w, f, want) in [
            (1, 24, "width W = 1 is outside the supported range 2..=1024"),
            (1025, 24, "width W = 1025 is outside the supported range 2..=1024"),
            (54, 150, "fraction bits F = 150 is outside the supported range 0..=149"),
        ] {
            let err = fixed_to_f32(w, f).unwrap_err().to_string();
            assert!(err.contains(want) && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn units_pass_the_ir_checks_and_are_named_after_every_parameter() {
        let mut d = Design::default();
        let mut names = vec![];
        for f in [FloatFormat::FP16, FloatFormat::BF16, FloatFormat::new(2, 1).unwrap()] {
            names.push(d.add(fp_to_fixed(f)));
            names.push(d.add(fp_mul(f)));
        }
        for (w, fr) in [(54, 24), (54, 25), (2, 0), (269, 133)] {
            names.push(d.add(fixed_to_f32(w, fr).unwrap()));
        }
        d.check().unwrap();
        let want = [
            "kllm_fp_to_fixed_e5m10",
            "kllm_fp_mul_e5m10",
            "kllm_fp_to_fixed_e8m7",
            "kllm_fp_mul_e8m7",
            "kllm_fp_to_fixed_e2m1",
            "kllm_fp_mul_e2m1",
            "kllm_fixed_to_f32_w54_f24",
            "kllm_fixed_to_f32_w54_f25",
            "kllm_fixed_to_f32_w2_f0",
            "kllm_fixed_to_f32_w269_f133",
        ];
        assert_eq!(names, want);
    }
}
