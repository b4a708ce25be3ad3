//! Bench bindings generated from a block's ports: `kllm_bench.h` in every design folder.
//!
//! A bench (`testbenches/tb_<block>.cpp`) no longer binds ports by hand. The streams, their
//! fields and the cfg/idle ports are read off the module's ports by the SPEC naming rules:
//! - input stream `""` is `s_valid`/`s_ready` with every other `s_*` input as a field, in port
//!   order (`s_idx_a` is field `idx_a`); output stream `""` is `m_valid`/`m_ready` with every
//!   other `m_*` output; a named output stream `max` is `m_max_valid`/`m_max_ready` with its
//!   `m_max_*` outputs (field `value` for `m_max_value`);
//! - `cfg_we`/`cfg_addr`/`cfg_wdata` write tables, `idle` says a table write is safe; between
//!   writes the bench drives random values of the ports' widths on `cfg_addr`/`cfg_wdata`.
//!
//! The bench checks the golden file's `fields in:`/`fields out:` lines against these names, so a
//! golden writer and a module whose field orders disagree fail instead of driving the wrong
//! port. The header also lists the cycle counts the manifest predicts, which the golden file's
//! timed segments must contain.

use std::fmt::Write as _;

use serde_json::Value;

use crate::verilog::{Dir, Handle, Port};

/// One stream of a block, as the bench sees it.
#[derive(Debug, PartialEq)]
pub struct Stream {
    /// `""` or the stream's name (`max`).
    pub name: String,
    pub valid: String,
    pub ready: String,
    /// (field name, port name) in port order.
    pub fields: Vec<(String, String)>,
}

/// The streams of one direction: `s` (inputs) or `m` (outputs), ports with `prefix`.
pub fn streams(ports: &[Port], prefix: &str, side: char) -> Vec<Stream> {
    let data_dir = if side == 's' { Dir::Input } else { Dir::Output };
    let head = format!("{prefix}{side}_");
    let mut out: Vec<Stream> = vec![];
    // Streams are named by their valid ports.
    for p in ports.iter().filter(|p| p.dir == data_dir) {
        let Some(rest) = p.name.strip_prefix(&head) else { continue };
        let name = if rest == "valid" {
            String::new()
        } else if let Some(n) = rest.strip_suffix("_valid") {
            n.to_string()
        } else {
            continue;
        };
        let stem = if name.is_empty() { head.clone() } else { format!("{head}{name}_") };
        out.push(Stream { valid: p.name.clone(), ready: format!("{stem}ready"), name, fields: vec![] });
    }
    let named: Vec<String> = out.iter().filter(|s| !s.name.is_empty()).map(|s| format!("{head}{}_", s.name)).collect();
    for s in &mut out {
        let stem = if s.name.is_empty() { head.clone() } else { format!("{head}{}_", s.name) };
        for p in ports.iter().filter(|p| p.dir == data_dir && p.name != s.valid) {
            let Some(field) = p.name.strip_prefix(&stem) else { continue };
            // Ports of a named stream are not fields of the unnamed one.
            if s.name.is_empty() && named.iter().any(|n| p.name.starts_with(n.as_str())) {
                continue;
            }
            s.fields.push((field.to_string(), p.name.clone()));
        }
    }
    out
}

/// Every number under `derived.predicted`: the timed workloads the golden file must contain.
pub fn predicted(derived: &Value) -> Vec<u64> {
    let mut out = vec![];
    if let Some(Value::Object(m)) = derived.get("predicted") {
        out.extend(m.values().filter_map(Value::as_u64));
    }
    out
}

/// The C++ binding function `kllm_bind_<block>` for a block whose ports carry `prefix`.
pub fn binding(block: &str, h: &Handle, prefix: &str) -> Result<String, String> {
    let port = |n: &str| h.port(&format!("{prefix}{n}"));
    let mut s = String::new();
    let _ = writeln!(s, "// {block}: module {}{}.", h.module, if prefix.is_empty() { String::new() } else { format!(", ports {prefix}*") });
    let _ = writeln!(s, "template <class Top>\nvoid kllm_bind_{block}(Bench<Top>& b) {{");
    let _ = writeln!(s, "    Top* t = b.top.get();");
    match (port("cfg_we"), port("cfg_addr"), port("cfg_wdata")) {
        (Some(we), Some(addr), Some(data)) => {
            let _ = writeln!(
                s,
                "    b.cfg_write = [t](uint64_t addr, const Bits& data) {{\n        t->{} = 1;\n        put(t->{}, Bits::from_u64(addr));\n        put(t->{}, data);\n    }};",
                we.name, addr.name, data.name
            );
            let _ = writeln!(s, "    b.cfg_idle = [t]() {{ t->{} = 0; }};", we.name);
            // Between writes the bench drives junk of the ports' widths on the address and data:
            // only cfg_we may write a table.
            let _ = writeln!(
                s,
                "    b.cfg_junk = [t](std::mt19937_64& r) {{\n        put(t->{}, Bits::random(r, {}));\n        put(t->{}, Bits::random(r, {}));\n    }};",
                addr.name, addr.width, data.name, data.width
            );
        }
        (None, None, None) => {}
        _ => return Err(format!("{}: cfg_we, cfg_addr and cfg_wdata come together", h.module)),
    }
    if let Some(idle) = port("idle") {
        let _ = writeln!(s, "    b.idle = [t]() {{ return t->{} != 0; }};", idle.name);
    } else if port("cfg_we").is_some() {
        return Err(format!("{}: a block with cfg_* needs an idle port to say when a write is safe", h.module));
    }
    for (side, add) in [('s', "add_in"), ('m', "add_out")] {
        let list = streams(&h.ports, prefix, side);
        for st in &list {
            if port(st.ready.strip_prefix(prefix).unwrap_or(&st.ready)).is_none() {
                return Err(format!("{}: stream {} has no {}", h.module, st.valid, st.ready));
            }
            let names: Vec<String> = st.fields.iter().map(|(f, _)| format!("\"{f}\"")).collect();
            let _ = write!(
                s,
                "    b.{add}(\"{}\", &t->{}, &t->{}, {{{}}}, ",
                st.name,
                st.valid,
                st.ready,
                names.join(", ")
            );
            if side == 's' {
                let _ = writeln!(s, "[t](const Fields& f) {{");
                for (i, (_, p)) in st.fields.iter().enumerate() {
                    let _ = writeln!(s, "        put(t->{p}, f.at({i}));");
                }
                let _ = writeln!(s, "    }});");
            } else {
                let gets: Vec<String> = st.fields.iter().map(|(_, p)| format!("get(t->{p})")).collect();
                let _ = writeln!(s, "[t]() {{ return Fields{{{}}}; }});", gets.join(", "));
            }
        }
        if list.is_empty() {
            return Err(format!("{}: no {} stream ({prefix}{side}_valid)", h.module, if side == 's' { "input" } else { "output" }));
        }
    }
    let pred: Vec<String> = predicted(&h.derived).iter().map(|v| format!("{v}ULL")).collect();
    let _ = writeln!(s, "    b.predicted = {{{}}};", pred.join(", "));
    s.push_str("}\n");
    Ok(s)
}

/// `kllm_bench.h` of a design: one binding per (block, handle, port prefix).
pub fn header(name: &str, hash: &str, blocks: &[(&str, Handle, String)]) -> Result<String, String> {
    let mut s = format!(
        "// Generated by kllm-gen {} from config '{name}' (hash {hash}). Do not edit.\n\
         // Bench port bindings, read off each block's ports (src/benchgen.rs); the bench checks the\n\
         // golden file's `fields` lines against the field names below.\n\
         #pragma once\n#include \"kllm_tb.h\"\n",
        crate::design::VERSION
    );
    for (block, h, prefix) in blocks {
        s.push('\n');
        s.push_str(&binding(block, h, prefix)?);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::{Design, Module};

    fn handle(m: Module) -> Handle {
        let mut d = Design::default();
        let name = m.name.clone();
        d.add(m);
        Handle::of(&d, &name, serde_json::json!({"predicted": {"a_cycles": 12, "b_cycles": 40}}))
    }

    #[test]
    fn streams_and_fields_come_from_the_ports() {
        let mut m = Module::new("kllm_x");
        m.input("s_valid", 1, "").output("s_ready", 1, "").input("s_a", 4, "").input("s_last", 1, "");
        m.output("m_max_valid", 1, "").input("m_max_ready", 1, "").output("m_max_value", 8, "");
        m.output("m_min_valid", 1, "").input("m_min_ready", 1, "").output("m_min_value", 8, "");
        let h = handle(m);
        let ins = streams(&h.ports, "", 's');
        assert_eq!(ins.len(), 1);
        assert_eq!(ins[0].fields, vec![("a".to_string(), "s_a".to_string()), ("last".into(), "s_last".into())]);
        let outs = streams(&h.ports, "", 'm');
        assert_eq!(outs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["max", "min"]);
        assert_eq!(outs[1].fields, vec![("value".to_string(), "m_min_value".to_string())]);
        let text = binding("x", &h, "").unwrap();
        assert!(text.contains("b.add_out(\"min\", &t->m_min_valid, &t->m_min_ready, {\"value\"}"), "{text}");
        assert!(text.contains("b.predicted = {12ULL, 40ULL};"), "{text}");
    }

    #[test]
    fn cfg_junk_has_the_ports_widths() {
        let mut m = Module::new("kllm_z");
        m.input("cfg_we", 1, "").input("cfg_addr", 5, "").input("cfg_wdata", 20, "").output("idle", 1, "");
        m.input("s_valid", 1, "").output("s_ready", 1, "").input("s_a", 4, "");
        m.output("m_valid", 1, "").input("m_ready", 1, "").output("m_y", 8, "");
        let text = binding("z", &handle(m), "").unwrap();
        assert!(text.contains("put(t->cfg_addr, Bits::random(r, 5));\n        put(t->cfg_wdata, Bits::random(r, 20));"), "{text}");
    }

    #[test]
    fn a_table_without_idle_is_refused() {
        let mut m = Module::new("kllm_y");
        m.input("cfg_we", 1, "").input("cfg_addr", 2, "").input("cfg_wdata", 8, "");
        m.input("s_valid", 1, "").output("s_ready", 1, "").input("s_a", 4, "");
        m.output("m_valid", 1, "").input("m_ready", 1, "").output("m_y", 8, "");
        let e = binding("y", &handle(m), "").unwrap_err();
        assert!(e.contains("needs an idle port"), "{e}");
    }
}
