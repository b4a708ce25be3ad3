//! Several blocks in one top: `kllm-gen compose`.
//!
//! Each part is one registry block built from its own config under a module name that carries
//! the part's prefix, so two PE lines of different parameters coexist in one design (their
//! sub-modules are named by every parameter that changes their body, so equal ones are shared
//! and different ones are not). The top `kllm_<name>` exposes every part's ports under the part's
//! prefix (`a_s_valid`, `a_m_y`, ...) and shares `clk` and `rst`. The generated `kllm_bench.h`
//! binds each part by its prefix and `kllm_run_part` runs the shared bench against one part's
//! golden file (the other parts sit idle), which is how `make sim-compose` simulates it.

use anyhow::{anyhow, bail, Result};
use serde_json::json;

use crate::config::Config;
use crate::design::{self, Rendered, VERSION};
use crate::registry;
use crate::verilog::{Design, Dir, Handle, Module};

/// One part of a composed design.
pub struct Part {
    /// Port prefix and instance name: a lower-case identifier (`a`, `pe_wide`).
    pub prefix: String,
    /// Registry block name (`pe_line`, `orizuru`, ...).
    pub block: String,
    pub cfg: Config,
    /// Where the config came from, for messages and the file header.
    pub source: String,
}

fn is_prefix(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_lowercase()) && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
}

/// Parses `PREFIX=CONFIG[:BLOCK]` (the block may be left out when the config selects one).
pub fn parse_part(spec: &str) -> Result<Part> {
    let (prefix, rest) = spec.split_once('=').ok_or_else(|| anyhow!("`--part` = {spec:?} must be PREFIX=CONFIG[:BLOCK]"))?;
    if !is_prefix(prefix) {
        bail!("`--part` prefix {prefix:?} must be a lower-case identifier (a-z, then a-z, 0-9 or _)");
    }
    let (path, block) = match rest.rsplit_once(':') {
        Some((p, b)) => (p, Some(b)),
        None => (rest, None),
    };
    let cfg = Config::load(std::path::Path::new(path))?;
    let selected: Vec<&str> = registry::BLOCKS.iter().filter(|b| b.selected(&cfg)).map(|b| b.name()).collect();
    let block = match block {
        Some(b) if selected.contains(&b) => b.to_string(),
        Some(b) => bail!("`--part` {prefix}: block {b:?} is not selected by {path} (it selects {})", selected.join(", ")),
        None if selected.len() == 1 => selected[0].to_string(),
        None => bail!("`--part` {prefix}: {path} selects {}; name one as {prefix}={path}:BLOCK", selected.join(", ")),
    };
    Ok(Part { prefix: prefix.into(), block, cfg, source: path.into() })
}

/// Builds the composed design: every part, then the top that wires them to prefixed ports.
pub fn build(name: &str, parts: &[Part]) -> Result<(Design, Vec<(String, Handle, String)>, String)> {
    if parts.is_empty() {
        bail!("`--part` is required at least once");
    }
    for (i, p) in parts.iter().enumerate() {
        if parts[..i].iter().any(|q| q.prefix == p.prefix) {
            bail!("`--part` prefix {:?} is used twice", p.prefix);
        }
    }
    let top = format!("kllm_{name}");
    let mut d = Design::default();
    let mut m = Module::new(&top);
    m.doc(format!("{} blocks in one top, each port under its part's prefix; clk and rst are shared.", parts.len()));
    m.clock_reset();
    let mut handles = vec![];
    for p in parts {
        let kind = registry::find(&p.block).expect("parse_part checked the block");
        let module = format!("{}_{}", kind.top(), p.prefix);
        if d.get(&module).is_some() {
            bail!("`--part` {}: module {module} exists already", p.prefix);
        }
        let h = kind.generate(&mut d, &p.cfg, &module);
        m.doc(format!("{}_*: {} ({}) from {}, config hash {}", p.prefix, p.block, module, p.source, p.cfg.hash()));
        let mut conns = vec![];
        for port in h.ports.iter().filter(|q| q.name != "clk" && q.name != "rst") {
            let outer = format!("{}_{}", p.prefix, port.name);
            let comment = if port.comment.is_empty() { format!("part {}", p.prefix) } else { format!("{}: {}", p.prefix, port.comment) };
            match (port.dir, port.signed) {
                (Dir::Input, false) => m.input(&outer, port.width, &comment),
                (Dir::Input, true) => m.input_signed(&outer, port.width, &comment),
                (Dir::Output, false) => m.output(&outer, port.width, &comment),
                (Dir::Output, true) => m.output_signed(&outer, port.width, &comment),
            };
            conns.push((port.name.clone(), outer));
        }
        let conns: Vec<(&str, String)> = std::iter::once(("clk", "clk".to_string()))
            .chain(std::iter::once(("rst", "rst".to_string())))
            .chain(conns.iter().map(|(a, b)| (a.as_str(), b.clone())))
            .collect();
        m.instantiate(&h, &format!("u_{}", p.prefix), &conns);
        handles.push((p.prefix.clone(), Handle { module: top.clone(), ports: vec![], derived: h.derived.clone() }, format!("{}_", p.prefix)));
    }
    d.add(m);
    // The bench binds each part on the top's ports, found under the part's prefix.
    let top_ports = d.get(&top).expect("just added").ports.clone();
    for h in &mut handles {
        h.1.ports = top_ports.clone();
    }
    d.check().map_err(|e| anyhow!("generator produced an invalid design: {e}"))?;
    Ok((d, handles, top))
}

/// The files of a composed design: Verilog, `files.f`, `manifest.json`, `kllm_bench.h` with a
/// `kllm_run_part` dispatcher, and `kllm_top.h` naming the Verilated top for the bench.
pub fn render(name: &str, parts: &[Part]) -> Result<Rendered> {
    let (d, handles, top) = build(name, parts)?;
    let mut header = format!("// Generated by kllm-gen {VERSION} by `kllm-gen compose` as '{name}'. Do not edit.\n");
    for p in parts {
        header.push_str(&format!("//   part {}: {} from {} (hash {})\n", p.prefix, p.block, p.source, p.cfg.hash()));
    }
    let mut files = design::verilog_files(&d, &header);
    let list: Vec<String> = files.iter().map(|(f, _)| f.clone()).collect();
    files.push(("files.f".into(), list.iter().map(|f| format!("{f}\n")).collect()));
    let manifest = json!({
        "generator": "kllm-gen",
        "version": VERSION,
        "config_name": name,
        "top": top,
        "parts": parts.iter().zip(&handles).map(|(p, h)| json!({
            "prefix": p.prefix, "block": p.block, "config": p.source, "config_hash": p.cfg.hash(), "derived": h.1.derived,
        })).collect::<Vec<_>>(),
        "files": list,
    });
    files.push(("manifest.json".into(), serde_json::to_string_pretty(&manifest)? + "\n"));
    let bound: Vec<(&str, Handle, String)> = handles.iter().map(|(n, h, pre)| (n.as_str(), h.clone(), pre.clone())).collect();
    let mut bench = crate::benchgen::header(name, "compose", &bound).map_err(|e| anyhow!("generator produced a part the bench cannot bind: {e}"))?;
    bench.push_str("\n// Runs the bench on one part (its golden file names the block); the other parts sit idle.\n");
    bench.push_str("template <class Top>\nint kllm_run_part(int argc, char** argv, const std::string& part) {\n");
    for p in parts {
        bench.push_str(&format!(
            "    if (part == \"{0}\") {{ Bench<Top> b(argc, argv, \"{1}\"); kllm_bind_{0}(b); return b.run(); }}\n",
            p.prefix, p.block
        ));
    }
    let names: Vec<&str> = parts.iter().map(|p| p.prefix.as_str()).collect();
    bench.push_str(&format!(
        "    fprintf(stderr, \"FAIL: unknown part '%s' (parts: {})\\n\", part.c_str());\n    return 1;\n}}\n",
        names.join(", ")
    ));
    files.push(("kllm_bench.h".into(), bench));
    files.push(("kllm_top.h".into(), format!("// Generated by kllm-gen: the Verilated top of '{name}'.\n#pragma once\n#include \"V{top}.h\"\nusing KllmTop = V{top};\n")));
    Ok(Rendered { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(prefix: &str, spec: &str) -> Part {
        parse_part(&format!("{prefix}={spec}")).unwrap()
    }

    #[test]
    fn two_pe_lines_and_an_orizuru_share_one_top() {
        let parts = [
            part("a", "generators/tiny.toml:pe_line"),
            part("b", "generators/wide.toml:pe_line"),
            part("o", "generators/orizuru_n16_k2.toml:orizuru"),
        ];
        let (d, handles, top) = build("t", &parts).unwrap();
        assert_eq!(top, "kllm_t");
        let m = d.get("kllm_t").unwrap();
        // Every part port is on the top under its prefix, with its width and signedness.
        for (p, h) in parts.iter().zip(&handles) {
            let kind = registry::find(&p.block).unwrap();
            let own = d.get(&format!("{}_{}", kind.top(), p.prefix)).unwrap();
            for port in own.ports.iter().filter(|q| q.name != "clk" && q.name != "rst") {
                let outer = m.port_named(&format!("{}_{}", p.prefix, port.name)).unwrap();
                assert_eq!((outer.dir, outer.width, outer.signed), (port.dir, port.width, port.signed), "{}", port.name);
            }
            assert_eq!(h.2, format!("{}_", p.prefix));
        }
        // The two lines have different cores; the narrow line's 4-input popcount is one module.
        let names: Vec<&str> = d.modules().map(|m| m.name.as_str()).collect();
        let cores: Vec<&&str> = names.iter().filter(|n| n.starts_with("kllm_count_weigh_")).collect();
        assert_eq!(cores.len(), 2, "{names:?}");
        assert_eq!(names.iter().filter(|n| **n == "kllm_popcount_w4").count(), 1);
        // Flip-flops of the composed top are the parts' own, counted from the built modules.
        let parts_ff: u64 = parts.iter().map(|p| d.flop_bits(&format!("{}_{}", registry::find(&p.block).unwrap().top(), p.prefix))).sum();
        assert_eq!(d.flop_bits("kllm_t"), parts_ff);
        // The bench header binds each part by prefix and dispatches on it.
        let r = render("t", &parts).unwrap();
        let bench = &r.files.iter().find(|(f, _)| f == "kllm_bench.h").unwrap().1;
        for p in ["a", "b", "o"] {
            assert!(bench.contains(&format!("void kllm_bind_{p}(Bench<Top>& b)")), "{p}");
            assert!(bench.contains(&format!("if (part == \"{p}\")")), "{p}");
        }
        assert!(bench.contains("put(t->b_s_idx_w, f.at(1));"));
        assert!(bench.contains("b.add_out(\"max\", &t->o_m_max_valid, &t->o_m_max_ready, {\"value\", \"pos\", \"last\"}"));
    }

    #[test]
    fn bad_parts_are_one_line_each() {
        let e = |s: &str| parse_part(s).err().map(|e| format!("{e:#}")).unwrap();
        assert_eq!(e("a"), "`--part` = \"a\" must be PREFIX=CONFIG[:BLOCK]");
        assert!(e("A=generators/tiny.toml").starts_with("`--part` prefix \"A\" must be a lower-case identifier"));
        assert_eq!(
            e("o=generators/orizuru_n16_k2.toml"),
            "`--part` o: generators/orizuru_n16_k2.toml selects orizuru, topk_sorter; name one as o=generators/orizuru_n16_k2.toml:BLOCK"
        );
        assert!(e("a=generators/tiny.toml:orizuru").starts_with("`--part` a: block \"orizuru\" is not selected by generators/tiny.toml"));
        assert!(e("a=nope.toml").contains("nope.toml"));
        let twice = [part("a", "generators/tiny.toml:pe_line"), part("a", "generators/wide.toml:pe_line")];
        assert_eq!(format!("{:#}", build("t", &twice).err().unwrap()), "`--part` prefix \"a\" is used twice");
    }
}
