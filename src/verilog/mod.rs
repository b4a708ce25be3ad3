//! A small typed Verilog IR and its emitter.
//!
//! Declarations, ports, instances and statements are typed so that the emitter can check what
//! Verilog tools would only catch later (an instance that leaves a port open, a name declared
//! twice, a continuous assign to a `reg`). Expressions stay plain Verilog text: the generators
//! write them the way a person would, and `verilator --lint-only -Wall` checks their widths.
//!
//! Widths and sizes are ordinary run-time numbers, so everything can come from a TOML file.
//! A [`Design`] keeps one module per distinct name; generators name sub-modules after their
//! parameters (`kllm_popcount_w16`), so equal parameter sets share one module.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

mod check;

/// Number of bits needed to hold values `0..n` (at least 1).
pub fn clog2(n: u64) -> u32 {
    if n <= 1 { 0 } else { 64 - (n - 1).leading_zeros() }
}

/// Bits of an unsigned value that must hold `0..=max` (at least 1).
pub fn ubits(max: u64) -> u32 {
    (64 - max.leading_zeros()).max(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Input,
    Output,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub dir: Dir,
    pub name: String,
    pub width: u32,
    pub signed: bool,
    /// `output reg` rather than `output wire`.
    pub is_reg: bool,
    pub comment: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Comment(String),
    Blank,
    Localparam { name: String, width: u32, value: i64 },
    /// A sized localparam from a constant expression (a genvar, usually): `localparam [w-1:0] N = e;`.
    GenParam { name: String, width: u32, expr: String },
    Wire { name: String, width: u32, signed: bool, depth: Option<u32>, init: Option<String> },
    Reg { name: String, width: u32, signed: bool, depth: Option<u32> },
    Integer(String),
    Assign { lhs: String, rhs: String },
    /// `always @(posedge clk)`; label is the block name.
    Clocked { label: String, body: Vec<Stmt> },
    /// `always @*`.
    Comb { label: String, body: Vec<Stmt> },
    Instance { module: String, name: String, conns: Vec<(String, String)> },
    /// `for (var = 0; var < count; ...) begin : label` inside `generate`.
    GenFor { label: String, var: String, count: u32, body: Vec<Item> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    Comment(String),
    /// Non-blocking `lhs <= rhs;` (clocked blocks).
    Nb(String, String),
    /// Blocking `lhs = rhs;` (combinational blocks).
    Bl(String, String),
    If { cond: String, then: Vec<Stmt>, els: Vec<Stmt> },
    For { var: String, count: u32, body: Vec<Stmt> },
    Case { sel: String, arms: Vec<(String, Vec<Stmt>)>, default: Vec<Stmt> },
}

pub fn nb(l: impl Into<String>, r: impl Into<String>) -> Stmt {
    Stmt::Nb(l.into(), r.into())
}
pub fn bl(l: impl Into<String>, r: impl Into<String>) -> Stmt {
    Stmt::Bl(l.into(), r.into())
}
pub fn if_(cond: impl Into<String>, then: Vec<Stmt>) -> Stmt {
    Stmt::If { cond: cond.into(), then, els: vec![] }
}
pub fn if_else(cond: impl Into<String>, then: Vec<Stmt>, els: Vec<Stmt>) -> Stmt {
    Stmt::If { cond: cond.into(), then, els }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    /// Why this module exists and what it computes; emitted under the file header.
    pub doc: Vec<String>,
    pub ports: Vec<Port>,
    pub items: Vec<Item>,
}

impl Module {
    pub fn new(name: impl Into<String>) -> Self {
        Module { name: name.into(), doc: vec![], ports: vec![], items: vec![] }
    }
    pub fn doc(&mut self, line: impl Into<String>) -> &mut Self {
        self.doc.push(line.into());
        self
    }
    fn port(&mut self, dir: Dir, name: &str, width: u32, signed: bool, is_reg: bool, c: &str) {
        self.ports.push(Port {
            dir,
            name: name.into(),
            width,
            signed,
            is_reg,
            comment: c.into(),
        });
    }
    pub fn input(&mut self, name: &str, width: u32, comment: &str) -> &mut Self {
        self.port(Dir::Input, name, width, false, false, comment);
        self
    }
    pub fn input_signed(&mut self, name: &str, width: u32, comment: &str) -> &mut Self {
        self.port(Dir::Input, name, width, true, false, comment);
        self
    }
    pub fn output(&mut self, name: &str, width: u32, comment: &str) -> &mut Self {
        self.port(Dir::Output, name, width, false, false, comment);
        self
    }
    pub fn output_signed(&mut self, name: &str, width: u32, comment: &str) -> &mut Self {
        self.port(Dir::Output, name, width, true, false, comment);
        self
    }
    pub fn output_reg(&mut self, name: &str, width: u32, comment: &str) -> &mut Self {
        self.port(Dir::Output, name, width, false, true, comment);
        self
    }
    /// The clock and synchronous active-high reset every sequential block has.
    pub fn clock_reset(&mut self) -> &mut Self {
        self.input("clk", 1, "clock, all state changes on its rising edge");
        self.input("rst", 1, "synchronous reset, active high")
    }
    pub fn push(&mut self, item: Item) -> &mut Self {
        self.items.push(item);
        self
    }
    pub fn comment(&mut self, text: impl Into<String>) -> &mut Self {
        self.items.push(Item::Blank);
        self.items.push(Item::Comment(text.into()));
        self
    }
    pub fn localparam(&mut self, name: &str, width: u32, value: i64) -> &mut Self {
        self.push(Item::Localparam { name: name.into(), width, value })
    }
    pub fn wire(&mut self, name: &str, width: u32) -> &mut Self {
        self.push(Item::Wire { name: name.into(), width, signed: false, depth: None, init: None })
    }
    pub fn wire_signed(&mut self, name: &str, width: u32) -> &mut Self {
        self.push(Item::Wire { name: name.into(), width, signed: true, depth: None, init: None })
    }
    /// A wire declared with its driver: `wire [w-1:0] name = expr;`.
    pub fn wire_eq(&mut self, name: &str, width: u32, expr: impl Into<String>) -> &mut Self {
        let init = Some(expr.into());
        self.push(Item::Wire { name: name.into(), width, signed: false, depth: None, init })
    }
    pub fn wire_signed_eq(&mut self, name: &str, width: u32, expr: impl Into<String>) -> &mut Self {
        let init = Some(expr.into());
        self.push(Item::Wire { name: name.into(), width, signed: true, depth: None, init })
    }
    pub fn reg(&mut self, name: &str, width: u32) -> &mut Self {
        self.push(Item::Reg { name: name.into(), width, signed: false, depth: None })
    }
    pub fn reg_signed(&mut self, name: &str, width: u32) -> &mut Self {
        self.push(Item::Reg { name: name.into(), width, signed: true, depth: None })
    }
    pub fn reg_array(&mut self, name: &str, width: u32, depth: u32) -> &mut Self {
        self.push(Item::Reg { name: name.into(), width, signed: false, depth: Some(depth) })
    }
    pub fn reg_array_signed(&mut self, name: &str, width: u32, depth: u32) -> &mut Self {
        self.push(Item::Reg { name: name.into(), width, signed: true, depth: Some(depth) })
    }
    pub fn assign(&mut self, lhs: impl Into<String>, rhs: impl Into<String>) -> &mut Self {
        self.push(Item::Assign { lhs: lhs.into(), rhs: rhs.into() })
    }
    pub fn clocked(&mut self, label: &str, body: Vec<Stmt>) -> &mut Self {
        self.push(Item::Clocked { label: label.into(), body })
    }
    pub fn comb(&mut self, label: &str, body: Vec<Stmt>) -> &mut Self {
        self.push(Item::Comb { label: label.into(), body })
    }
    pub fn instance(&mut self, module: &str, name: &str, conns: &[(&str, String)]) -> &mut Self {
        let conns = conns.iter().map(|(p, e)| (p.to_string(), e.clone())).collect();
        self.push(Item::Instance { module: module.into(), name: name.into(), conns })
    }
    pub fn port_named(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
    /// The handle of a port, or of a wire or reg declared at module level: its name, width and
    /// signedness, to build expressions from.
    pub fn sig(&self, name: &str) -> Option<Sig> {
        if let Some(p) = self.port_named(name) {
            return Some(Sig { name: p.name.clone(), width: p.width, signed: p.signed });
        }
        self.items.iter().find_map(|it| match it {
            Item::Wire { name: n, width, signed, depth: None, .. } | Item::Reg { name: n, width, signed, depth: None }
                if n == name =>
            {
                Some(Sig { name: n.clone(), width: *width, signed: *signed })
            }
            _ => None,
        })
    }
    /// Declares a wire and returns its handle.
    pub fn new_wire(&mut self, name: &str, width: u32, signed: bool) -> Sig {
        self.push(Item::Wire { name: name.into(), width, signed, depth: None, init: None });
        Sig { name: name.into(), width, signed }
    }
    /// Declares a reg and returns its handle.
    pub fn new_reg(&mut self, name: &str, width: u32, signed: bool) -> Sig {
        self.push(Item::Reg { name: name.into(), width, signed, depth: None });
        Sig { name: name.into(), width, signed }
    }
    /// An instance of the module a generator returned `h` for. Every port must be connected;
    /// widths and signedness are checked against `h`'s ports when the design is built.
    pub fn instantiate(&mut self, h: &Handle, name: &str, conns: &[(&str, String)]) -> &mut Self {
        self.instance(&h.module, name, conns)
    }
}

/// A declared signal as a generator holds it: name, width and signedness. Expressions built
/// from it are Verilog text; the design check sizes them and rejects a mismatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sig {
    pub name: String,
    pub width: u32,
    pub signed: bool,
}

impl Sig {
    /// `name[hi:lo]`.
    pub fn bits(&self, hi: u32, lo: u32) -> String {
        format!("{}[{hi}:{lo}]", self.name)
    }
    /// `name[i]`.
    pub fn bit(&self, i: u32) -> String {
        format!("{}[{i}]", self.name)
    }
    /// `name[base +: w]`, an indexed part select (`base` may be a genvar expression).
    pub fn part(&self, base: impl std::fmt::Display, w: u32) -> String {
        format!("{}[{base} +: {w}]", self.name)
    }
}

impl std::fmt::Display for Sig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// What a generator returns: the module it built under the name it was given, that module's
/// ports (direction, width, signedness) and the generator's derived numbers, so that another
/// generator can instantiate it with checked connections ([`Module::instantiate`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Handle {
    pub module: String,
    pub ports: Vec<Port>,
    pub derived: serde_json::Value,
}

impl Handle {
    /// The handle of module `module`, which must already be in `d`.
    pub fn of(d: &Design, module: &str, derived: serde_json::Value) -> Handle {
        let m = d.get(module).unwrap_or_else(|| panic!("generator bug: no module {module} to hand out"));
        Handle { module: module.into(), ports: m.ports.clone(), derived }
    }

    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
}

/// A set of modules with one or more tops; one module per distinct name.
#[derive(Default, Debug)]
pub struct Design {
    modules: BTreeMap<String, Module>,
}

impl Design {
    /// Adds a module. Adding an identical module again is a no-op (that is how instances with the
    /// same parameters share one module); a different module under a taken name is a generator bug.
    pub fn add(&mut self, m: Module) -> String {
        let name = m.name.clone();
        if let Some(old) = self.modules.get(&name) {
            assert!(
                *old == m,
                "generator bug: two different modules were both named {name}; \
                 a module name must encode every parameter that changes its body"
            );
        } else {
            self.modules.insert(name.clone(), m);
        }
        name
    }

    pub fn get(&self, name: &str) -> Option<&Module> {
        self.modules.get(name)
    }

    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules.values()
    }

    /// Modules in dependency order (every module after the modules it instantiates), the order a
    /// file list needs. Ties are broken by name so the order is deterministic.
    pub fn dependency_order(&self) -> Vec<&Module> {
        let mut done = BTreeSet::new();
        let mut out = vec![];
        for name in self.modules.keys() {
            self.visit(name, &mut done, &mut out);
        }
        out
    }

    fn visit<'a>(&'a self, name: &str, done: &mut BTreeSet<String>, out: &mut Vec<&'a Module>) {
        if done.contains(name) {
            return;
        }
        done.insert(name.to_string());
        let m = &self.modules[name];
        let mut deps = BTreeSet::new();
        collect_instances(&m.items, &mut deps);
        for d in deps {
            self.visit(&d, done, out);
        }
        out.push(m);
    }

    /// Flip-flop bits of `module` and everything it instantiates: every reg (and `output reg`)
    /// a clocked block assigns, times its array depth and the count of every generate loop
    /// around its declaration, plus the instances' own, counted from the built modules.
    pub fn flop_bits(&self, module: &str) -> u64 {
        let m = &self.modules[module];
        let mut clocked = BTreeSet::new();
        clocked_targets(&m.items, &mut clocked);
        let ports: u64 = m.ports.iter().filter(|p| p.is_reg && clocked.contains(&p.name)).map(|p| p.width as u64).sum();
        ports + self.flop_bits_in(&m.items, 1)
    }

    fn flop_bits_in(&self, items: &[Item], mult: u64) -> u64 {
        let mut clocked = BTreeSet::new();
        clocked_targets(items, &mut clocked);
        let mut bits = 0;
        for it in items {
            match it {
                Item::Reg { name, width, depth, .. } if clocked.contains(name) => {
                    bits += mult * *width as u64 * depth.unwrap_or(1) as u64;
                }
                Item::Instance { module, .. } => bits += mult * self.flop_bits(module),
                Item::GenFor { count, body, .. } => bits += self.flop_bits_in(body, mult * *count as u64),
                _ => {}
            }
        }
        bits
    }

    /// How often the operators `ops` occur in `module` and everything it instantiates, as
    /// hardware: every expression (wire initializers, assigns, statement conditions, right-hand
    /// sides and case selectors) times the count of every generate loop around it and the
    /// instance count of its module. Used to count comparators from the built design.
    pub fn operator_count(&self, module: &str, ops: &[&str]) -> u64 {
        self.operator_count_in(&self.modules[module].items, ops)
    }

    fn operator_count_in(&self, items: &[Item], ops: &[&str]) -> u64 {
        fn stmts(body: &[Stmt], ops: &[&str]) -> u64 {
            body.iter()
                .map(|s| match s {
                    Stmt::Nb(_, r) | Stmt::Bl(_, r) => check::count_ops(r, ops),
                    Stmt::If { cond, then, els } => check::count_ops(cond, ops) + stmts(then, ops) + stmts(els, ops),
                    Stmt::For { body, count, .. } => *count as u64 * stmts(body, ops),
                    Stmt::Case { sel, arms, default } => {
                        check::count_ops(sel, ops) + arms.iter().map(|(_, b)| stmts(b, ops)).sum::<u64>() + stmts(default, ops)
                    }
                    Stmt::Comment(_) => 0,
                })
                .sum()
        }
        items
            .iter()
            .map(|it| match it {
                Item::Wire { init: Some(e), .. } | Item::Assign { rhs: e, .. } => check::count_ops(e, ops),
                Item::Clocked { body, .. } | Item::Comb { body, .. } => stmts(body, ops),
                Item::Instance { module, .. } => self.operator_count(module, ops),
                Item::GenFor { count, body, .. } => *count as u64 * self.operator_count_in(body, ops),
                _ => 0,
            })
            .sum()
    }

    /// Structural checks the emitter can make without a Verilog parser.
    pub fn check(&self) -> Result<(), String> {
        for m in self.modules.values() {
            check::check_module(self, m)?;
        }
        Ok(())
    }
}

/// Names assigned in clocked blocks of `items` (and of the generate loops inside them).
fn clocked_targets(items: &[Item], into: &mut BTreeSet<String>) {
    fn stmts(body: &[Stmt], into: &mut BTreeSet<String>) {
        for s in body {
            match s {
                Stmt::Nb(l, _) | Stmt::Bl(l, _) => {
                    into.insert(l.split(['[', ' ']).next().unwrap_or(l).to_string());
                }
                Stmt::If { then, els, .. } => {
                    stmts(then, into);
                    stmts(els, into);
                }
                Stmt::For { body, .. } => stmts(body, into),
                Stmt::Case { arms, default, .. } => {
                    for (_, b) in arms {
                        stmts(b, into);
                    }
                    stmts(default, into);
                }
                Stmt::Comment(_) => {}
            }
        }
    }
    for it in items {
        match it {
            Item::Clocked { body, .. } => stmts(body, into),
            Item::GenFor { body, .. } => clocked_targets(body, into),
            _ => {}
        }
    }
}

fn collect_instances(items: &[Item], into: &mut BTreeSet<String>) {
    for it in items {
        match it {
            Item::Instance { module, .. } => {
                into.insert(module.clone());
            }
            Item::GenFor { body, .. } => collect_instances(body, into),
            _ => {}
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------------------------
// Emission

fn range(width: u32) -> String {
    if width == 1 { String::new() } else { format!("[{}:0] ", width - 1) }
}

fn signed_kw(signed: bool) -> &'static str {
    if signed { "signed " } else { "" }
}

/// Emits one module as the body of its file (without the file header).
pub fn emit_module(m: &Module) -> String {
    let mut s = String::new();
    for line in &m.doc {
        if line.is_empty() {
            s.push_str("//\n");
        } else {
            let _ = writeln!(s, "// {line}");
        }
    }
    let _ = writeln!(s, "module {} (", m.name);
    let decls: Vec<String> = m
        .ports
        .iter()
        .map(|p| {
            let dir = match p.dir {
                Dir::Input => "input  wire",
                Dir::Output if p.is_reg => "output reg ",
                Dir::Output => "output wire",
            };
            format!("{dir} {}{}{}", signed_kw(p.signed), range(p.width), p.name)
        })
        .collect();
    let decl_w = decls.iter().map(|d| d.len()).max().unwrap_or(0) + 1;
    for (i, (p, d)) in m.ports.iter().zip(&decls).enumerate() {
        let comma = if i + 1 < m.ports.len() { "," } else { "" };
        let code = format!("{d}{comma}");
        if p.comment.is_empty() {
            let _ = writeln!(s, "    {code}");
        } else {
            let _ = writeln!(s, "    {code:<decl_w$} // {}", p.comment);
        }
    }
    s.push_str(");\n");
    let gv = genvars(&m.items);
    if !gv.is_empty() {
        let list: Vec<_> = gv.into_iter().collect();
        let _ = writeln!(s, "\n  genvar {};", list.join(", "));
    }
    emit_items(&mut s, &m.items, 1);
    s.push_str("\nendmodule\n");
    s
}

fn pad(level: usize) -> String {
    "  ".repeat(level)
}

fn emit_items(s: &mut String, items: &[Item], level: usize) {
    let p = pad(level);
    let mut prev_blank = false;
    for it in items {
        if matches!(it, Item::Blank) {
            if !prev_blank {
                s.push('\n');
            }
            prev_blank = true;
            continue;
        }
        prev_blank = false;
        match it {
            Item::Blank => {}
            Item::Comment(c) => {
                for line in c.lines() {
                    let _ = writeln!(s, "{p}// {line}");
                }
            }
            Item::Localparam { name, width, value } => {
                // Width 0 means an untyped (integer) localparam.
                let r = if *width == 0 { String::new() } else { range(*width) };
                let _ = writeln!(s, "{p}localparam {r}{name} = {value};");
            }
            Item::GenParam { name, width, expr } => {
                let _ = writeln!(s, "{p}localparam [{}:0] {name} = {expr};", width - 1);
            }
            Item::Wire { name, width, signed, depth, init } => {
                let arr = depth.map(|d| format!(" [0:{}]", d - 1)).unwrap_or_default();
                let init = init.as_ref().map(|e| format!(" = {e}")).unwrap_or_default();
                let _ = writeln!(s, "{p}wire {}{}{name}{arr}{init};", signed_kw(*signed), range(*width));
            }
            Item::Reg { name, width, signed, depth } => {
                let arr = depth.map(|d| format!(" [0:{}]", d - 1)).unwrap_or_default();
                let _ = writeln!(s, "{p}reg  {}{}{name}{arr};", signed_kw(*signed), range(*width));
            }
            Item::Integer(name) => {
                let _ = writeln!(s, "{p}integer {name};");
            }
            Item::Assign { lhs, rhs } => {
                let _ = writeln!(s, "{p}assign {lhs} = {rhs};");
            }
            Item::Clocked { label, body } => {
                let _ = writeln!(s, "{p}always @(posedge clk) begin : {label}");
                emit_stmts(s, body, level + 1);
                let _ = writeln!(s, "{p}end");
            }
            Item::Comb { label, body } => {
                let _ = writeln!(s, "{p}always @* begin : {label}");
                emit_stmts(s, body, level + 1);
                let _ = writeln!(s, "{p}end");
            }
            Item::Instance { module, name, conns } => {
                let _ = writeln!(s, "{p}{module} {name} (");
                let w = conns.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
                for (i, (c, e)) in conns.iter().enumerate() {
                    let comma = if i + 1 < conns.len() { "," } else { "" };
                    let _ = writeln!(s, "{p}    .{c:<w$} ({e}){comma}");
                }
                let _ = writeln!(s, "{p});");
            }
            Item::GenFor { label, var, count, body } if level == 1 => {
                let _ = writeln!(s, "{p}generate");
                let one = [Item::GenFor {
                    label: label.clone(),
                    var: var.clone(),
                    count: *count,
                    body: body.clone(),
                }];
                emit_items(s, &one, level + 1);
                let _ = writeln!(s, "{p}endgenerate");
            }
            Item::GenFor { label, var, count, body } => {
                let _ = writeln!(s, "{p}for ({var} = 0; {var} < {count}; {var} = {var} + 1) begin : {label}");
                emit_items(s, body, level + 1);
                let _ = writeln!(s, "{p}end");
            }
        }
    }
}

fn emit_stmts(s: &mut String, body: &[Stmt], level: usize) {
    let p = pad(level);
    for st in body {
        match st {
            Stmt::Comment(c) => {
                let _ = writeln!(s, "{p}// {c}");
            }
            Stmt::Nb(l, r) => {
                let _ = writeln!(s, "{p}{l} <= {r};");
            }
            Stmt::Bl(l, r) => {
                let _ = writeln!(s, "{p}{l} = {r};");
            }
            Stmt::If { cond, then, els } => {
                let _ = writeln!(s, "{p}if ({cond}) begin");
                emit_stmts(s, then, level + 1);
                if els.is_empty() {
                    let _ = writeln!(s, "{p}end");
                } else if let [Stmt::If { .. }] = els.as_slice() {
                    // `else if` chains read better flat.
                    let mut inner = String::new();
                    emit_stmts(&mut inner, els, level);
                    let _ = write!(s, "{p}end else {}", inner.trim_start());
                } else {
                    let _ = writeln!(s, "{p}end else begin");
                    emit_stmts(s, els, level + 1);
                    let _ = writeln!(s, "{p}end");
                }
            }
            Stmt::For { var, count, body } => {
                let _ = writeln!(s, "{p}for ({var} = 0; {var} < {count}; {var} = {var} + 1) begin");
                emit_stmts(s, body, level + 1);
                let _ = writeln!(s, "{p}end");
            }
            Stmt::Case { sel, arms, default } => {
                let _ = writeln!(s, "{p}case ({sel})");
                for (label, b) in arms {
                    let _ = writeln!(s, "{p}  {label}: begin");
                    emit_stmts(s, b, level + 2);
                    let _ = writeln!(s, "{p}  end");
                }
                let _ = writeln!(s, "{p}  default: begin");
                emit_stmts(s, default, level + 2);
                let _ = writeln!(s, "{p}  end");
                let _ = writeln!(s, "{p}endcase");
            }
        }
    }
}

/// `genvar` declarations a module's generate loops need, emitted once at module scope.
pub fn genvars(items: &[Item]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(items: &[Item], out: &mut BTreeSet<String>) {
        for it in items {
            if let Item::GenFor { var, body, .. } = it {
                out.insert(var.clone());
                walk(body, out);
            }
        }
    }
    walk(items, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Expression helpers: the width bookkeeping Verilator's -Wall insists on.

/// Sign-extends `expr` (of `from` bits) to `to` bits.
///
/// `expr` must be an identifier: Verilog-2005 cannot bit-select a part-select, so callers name
/// the value with a wire first (which also reads better).
pub fn sext(expr: &str, from: u32, to: u32) -> String {
    assert!(to >= from, "sext from {from} to {to}");
    assert!(is_identifier(expr), "sext needs an identifier, got '{expr}'");
    if to == from {
        expr.to_string()
    } else if from == 1 {
        format!("{{{to}{{{expr}}}}}")
    } else {
        format!("{{{{{}{{{expr}[{}]}}}}, {expr}}}", to - from, from - 1)
    }
}

/// Zero-extends `expr` (of `from` bits) to `to` bits.
pub fn zext(expr: &str, from: u32, to: u32) -> String {
    assert!(to >= from, "zext from {from} to {to}");
    if to == from { expr.to_string() } else { format!("{{{}'d0, {expr}}}", to - from) }
}

/// A sized unsigned constant.
pub fn lit(width: u32, value: u64) -> String {
    format!("{width}'d{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clog2_and_ubits() {
        assert_eq!([clog2(1), clog2(2), clog2(3), clog2(4), clog2(5)], [0, 1, 2, 2, 3]);
        assert_eq!([ubits(0), ubits(1), ubits(2), ubits(4095), ubits(4096)], [1, 1, 2, 12, 13]);
    }

    #[test]
    fn open_port_is_caught() {
        let mut d = Design::default();
        let mut leaf = Module::new("kllm_leaf");
        leaf.input("a", 1, "").output("y", 1, "");
        leaf.assign("y", "a");
        d.add(leaf);
        let mut top = Module::new("kllm_top");
        top.input("a", 1, "").output("y", 1, "");
        top.instance("kllm_leaf", "u_leaf", &[("a", "a".into())]);
        d.add(top);
        let err = d.check().unwrap_err();
        assert!(err.contains("leaves port y"), "{err}");
    }

    #[test]
    fn assign_to_reg_is_caught() {
        let mut d = Design::default();
        let mut m = Module::new("kllm_bad");
        m.input("a", 1, "").output_reg("y", 1, "");
        m.assign("y", "a");
        d.add(m);
        assert!(d.check().unwrap_err().contains("needs a wire"));
    }

    /// A leaf with an 8-bit unsigned input and a 4-bit signed output, and a top that the test
    /// edits one mistake into.
    fn with_top(edit: impl Fn(&mut Module, &Handle)) -> Result<(), String> {
        let mut d = Design::default();
        let mut leaf = Module::new("kllm_leaf");
        leaf.input("a", 8, "").output_signed("y", 4, "");
        leaf.assign("y", "a[3:0]");
        d.add(leaf);
        let h = Handle::of(&d, "kllm_leaf", serde_json::Value::Null);
        let mut top = Module::new("kllm_top");
        top.input("x", 8, "").output_signed("z", 4, "");
        edit(&mut top, &h);
        d.add(top);
        d.check()
    }

    #[test]
    fn a_correct_top_passes_the_check() {
        with_top(|m, h| {
            let x = m.sig("x").unwrap();
            let w = m.new_wire("w", 4, true);
            m.instantiate(h, "u_leaf", &[("a", x.to_string()), ("y", w.to_string())]);
            m.assign("z", w.to_string());
        })
        .unwrap();
    }

    #[test]
    fn mistakes_are_rejected_naming_module_and_signal() {
        let cases: Vec<(&str, Box<dyn Fn(&mut Module, &Handle)>)> = vec![
            (
                "module kllm_top: signal u_leaf.a: 8-bit port a of kllm_leaf is connected to the 4-bit 'x[3:0]'",
                Box::new(|m, h| {
                    let x = m.sig("x").unwrap();
                    let w = m.new_wire("w", 4, true);
                    m.instantiate(h, "u_leaf", &[("a", x.bits(3, 0)), ("y", w.to_string())]);
                    m.assign("z", "w");
                }),
            ),
            (
                "module kllm_top: signal u_leaf.y: signed port y of kllm_leaf is connected to the unsigned 'w'",
                Box::new(|m, h| {
                    m.new_wire("w", 4, false);
                    m.instantiate(h, "u_leaf", &[("a", "x".into()), ("y", "w".into())]);
                    m.assign("z", "$signed(w)");
                }),
            ),
            (
                "module kllm_top: signal z: 4-bit target gets a 8-bit value 'x'",
                Box::new(|m, _| {
                    m.assign("z", "x");
                }),
            ),
            (
                "module kllm_top: signal z: literal '4'd16' does not fit in 4 bits",
                Box::new(|m, _| {
                    m.assign("z", "4'd16");
                }),
            ),
            (
                "module kllm_top: signal z: 'q' is not declared",
                Box::new(|m, _| {
                    m.assign("z", "q[3:0]");
                }),
            ),
            (
                "module kllm_top: signal z: has two drivers",
                Box::new(|m, _| {
                    m.assign("z", "x[3:0]");
                    m.assign("z", "x[7:4]");
                }),
            ),
            (
                "module kllm_top: signal r: has two drivers",
                Box::new(|m, _| {
                    m.input("clk", 1, "");
                    m.new_reg("r", 4, false);
                    m.clocked("one", vec![nb("r", "x[3:0]")]);
                    m.clocked("two", vec![nb("r", "x[7:4]")]);
                    m.assign("z", "$signed(r)");
                }),
            ),
            (
                "module kllm_top: signal z: 'x[8]' is outside its 8 bits",
                Box::new(|m, _| {
                    m.assign("z", "{3'd0, x[8]}");
                }),
            ),
            (
                "module kllm_top: signal UNUSED: localparam is never used",
                Box::new(|m, _| {
                    m.localparam("UNUSED", 0, 3);
                    m.assign("z", "x[3:0]");
                }),
            ),
            (
                "module kllm_top: signal z: output port is never driven",
                Box::new(|_, _| {}),
            ),
        ];
        for (want, edit) in cases {
            assert_eq!(with_top(edit).unwrap_err(), want);
        }
    }

    #[test]
    #[should_panic(expected = "two different modules")]
    fn name_collision_panics() {
        let mut d = Design::default();
        let mut a = Module::new("kllm_x");
        a.input("a", 1, "");
        let mut b = Module::new("kllm_x");
        b.input("a", 2, "");
        d.add(a);
        d.add(b);
    }

    #[test]
    fn dependency_order_puts_leaves_first() {
        let mut d = Design::default();
        let mut top = Module::new("kllm_a_top");
        top.instance("kllm_z_leaf", "u_leaf", &[]);
        d.add(top);
        d.add(Module::new("kllm_z_leaf"));
        let names: Vec<_> = d.dependency_order().iter().map(|m| m.name.clone()).collect();
        assert_eq!(names, ["kllm_z_leaf", "kllm_a_top"]);
    }

    #[test]
    fn extension_helpers() {
        assert_eq!(sext("x", 4, 8), "{{4{x[3]}}, x}");
        assert_eq!(sext("x", 1, 3), "{3{x}}");
        assert_eq!(zext("x", 4, 8), "{4'd0, x}");
        assert_eq!(zext("x", 4, 4), "x");
    }
}
