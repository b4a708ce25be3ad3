//! Snapshots of the tiny config's Verilog: a review sees every change to generated RTL.
//! Only `tiny` is snapshotted, to keep the snapshots small enough to read.

use kllm_gen::config::Config;
use kllm_gen::design::render;

#[test]
fn tiny_verilog() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/generators/tiny.toml")).unwrap();
    let cfg = Config::parse(&text).unwrap();
    let r = render(&cfg, "tiny").unwrap();
    for (name, body) in &r.files {
        if name.ends_with(".v") || name == "files.f" {
            insta::assert_snapshot!(format!("tiny__{name}"), body);
        }
    }
}
