//! The golden-vector file every Verilator bench reads.
//!
//! Plain text, one command per line, so a failing vector can be found with grep:
//! ```text
//! # kllm-gen golden v1 block=pe_line config=default seed=1
//! fields in: idx_a idx_w keep last        (input-beat fields, in port order)
//! fields out: y                           (expected-output fields)
//! cfg <addr-hex> <data-hex>               (a cfg_* write; only between segments)
//! in <hex> <hex> ...                      (one input beat)
//! out <hex> ...                           (one expected output beat, in order)
//! out.<stream> <hex> ...                  (for blocks with several output streams)
//! timing <cycles>                         (the next segment runs without gaps or back-pressure
//!                                          and must take exactly this many cycles)
//! sync                                    (end of segment: drain every output)
//! end <vectors>
//! ```
//! Every value is the port's bit pattern in hex (two's complement for signed fields), with
//! lane 0 in the least significant bits, exactly as it appears on the bus.

use std::fmt::Write as _;

pub struct GoldenWriter {
    text: String,
    config: String,
    seed: u64,
    outputs: u64,
}

impl GoldenWriter {
    pub fn new(config: &str, seed: u64) -> Self {
        GoldenWriter { text: String::new(), config: config.into(), seed, outputs: 0 }
    }

    pub fn header(&mut self, block: &str, ins: &[&str], outs: &[&str]) {
        let _ = writeln!(
            self.text,
            "# kllm-gen golden v1 block={block} config={} seed={}",
            self.config, self.seed
        );
        let _ = writeln!(self.text, "fields in: {}", ins.join(" "));
        let _ = writeln!(self.text, "fields out: {}", outs.join(" "));
    }

    /// The header of a block with named streams: one `fields in.<stream>:` / `fields out.<stream>:`
    /// line per stream (`""` is the unnamed stream).
    pub fn header_streams(&mut self, block: &str, ins: &[(&str, &[&str])], outs: &[(&str, &[&str])]) {
        let _ = writeln!(
            self.text,
            "# kllm-gen golden v1 block={block} config={} seed={}",
            self.config, self.seed
        );
        for (side, list) in [("in", ins), ("out", outs)] {
            for (name, fields) in list {
                let dot = if name.is_empty() { String::new() } else { format!(".{name}") };
                let _ = writeln!(self.text, "fields {side}{dot}: {}", fields.join(" "));
            }
        }
    }

    /// One input beat on a named input stream (`in.x ...`).
    pub fn input_on(&mut self, stream: &str, fields: &[String]) {
        self.text.push_str("in.");
        self.text.push_str(stream);
        for f in fields {
            self.text.push(' ');
            self.text.push_str(f);
        }
        self.text.push('\n');
    }

    pub fn cfg(&mut self, addr: u64, data: &str) {
        let _ = writeln!(self.text, "cfg {addr:x} {data}");
    }

    pub fn input(&mut self, fields: &[String]) {
        self.text.push_str("in");
        for f in fields {
            self.text.push(' ');
            self.text.push_str(f);
        }
        self.text.push('\n');
    }

    pub fn out(&mut self, fields: &[String]) {
        self.out_on("", fields);
    }

    /// An expected beat on a named output stream (`out.max ...`).
    pub fn out_on(&mut self, stream: &str, fields: &[String]) {
        self.outputs += 1;
        self.text.push_str("out");
        if !stream.is_empty() {
            self.text.push('.');
            self.text.push_str(stream);
        }
        for f in fields {
            self.text.push(' ');
            self.text.push_str(f);
        }
        self.text.push('\n');
    }

    pub fn timing(&mut self, cycles: u64) {
        let _ = writeln!(self.text, "timing {cycles}");
    }

    pub fn sync(&mut self) {
        self.text.push_str("sync\n");
    }

    pub fn finish(mut self) -> String {
        let _ = writeln!(self.text, "end {}", self.outputs);
        self.text
    }
}

/// Packs `values` (each `width` bits, lane 0 lowest) into one hex bus value.
pub fn hex_lanes(values: &[u64], width: u32) -> String {
    let total = values.len() as u32 * width;
    let mut words = vec![0u64; total.div_ceil(64).max(1) as usize];
    let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
    for (i, &v) in values.iter().enumerate() {
        let v = v & mask;
        let bit = i as u32 * width;
        let (w, o) = ((bit / 64) as usize, bit % 64);
        words[w] |= v << o;
        if o + width > 64 {
            words[w + 1] |= v >> (64 - o);
        }
    }
    let digits = total.div_ceil(4).max(1) as usize;
    let mut s = String::new();
    for w in words.iter().rev() {
        let _ = write!(s, "{w:016x}");
    }
    s[s.len() - digits..].to_string()
}

/// A signed value as its `width`-bit two's-complement pattern in hex.
pub fn hex_signed(v: i64, width: u32) -> String {
    assert!(
        width >= 64 || (v >= -(1i64 << (width - 1)) && v < (1i64 << (width - 1))),
        "{v} does not fit in {width} signed bits"
    );
    hex_lanes(&[v as u64], width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_pack_lsb_first() {
        assert_eq!(hex_lanes(&[1, 2, 3], 4), "321");
        assert_eq!(hex_lanes(&[1, 1], 1), "3");
        assert_eq!(hex_lanes(&[0xff, 0x1], 5), "03f"); // masks to 5 bits: 11111 | 00001<<5
    }

    #[test]
    fn wide_buses_cross_words() {
        let v = vec![0xabcu64; 20]; // 240 bits
        let h = hex_lanes(&v, 12);
        assert_eq!(h.len(), 60);
        assert!(h.chars().all(|c| "abc".contains(c)));
    }

    #[test]
    fn signed_is_twos_complement() {
        assert_eq!(hex_signed(-1, 5), "1f");
        assert_eq!(hex_signed(-16384, 16), "c000");
    }
}
