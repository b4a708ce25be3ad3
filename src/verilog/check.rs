//! The checks a design passes when it is built, before any Verilog tool sees it.
//!
//! Every name, expression and connection of every module is checked against the declarations
//! in scope: an undeclared name, a sized literal too large for its width, a constant select
//! outside its vector, an assignment or port connection whose widths differ, a signed/unsigned
//! mix on a port connection, a procedural assignment to a wire or a continuous one to a reg,
//! and a signal with two drivers are errors that name the module and the signal. Expressions
//! are raw Verilog text (the generators write them the way a person would), so this module
//! parses them: a small recursive-descent parser over the Verilog-2005 expression grammar the
//! generators use, computing each expression's self-determined width and signedness by the
//! language's rules (IEEE 1364-2005 §5.5). An expression it cannot size (none today) is left
//! to `verilator --lint-only -Wall`, which every committed config also passes.

use std::collections::{BTreeMap, BTreeSet};

use super::{is_identifier, Design, Dir, Item, Module, Stmt};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Net,
    Var,
    Input,
    Const,
    Genvar,
    Instance,
}

#[derive(Clone, Debug)]
struct Decl {
    kind: Kind,
    /// 0 for integer localparams and `integer`s (32-bit, unsized in expressions).
    width: u32,
    signed: bool,
    depth: Option<u32>,
    value: Option<i64>,
    /// Where it was declared (generate labels and name), to tell apart equal names of
    /// different generate blocks.
    key: String,
}

type Scope = BTreeMap<String, Decl>;

/// A width: known, an unsized constant (adapts to its context), or not computable here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Width {
    Known(u32),
    Unsized,
    Unknown,
}

/// What the checker knows of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Val {
    pub width: Width,
    pub signed: bool,
    /// The value, where it is a constant the checker can evaluate (for selects).
    pub konst: Option<i64>,
    /// The expression is a plain name (for the signedness check of port connections).
    plain: bool,
    /// A product may be assigned to a target up to this wide: the context width then sizes
    /// the multiplication, which is how a full-width product is written (`p = a * b`).
    product: Option<u32>,
}

impl Val {
    fn known(width: u32, signed: bool) -> Val {
        Val { width: Width::Known(width), signed, konst: None, plain: false, product: None }
    }
    fn unknown() -> Val {
        Val { width: Width::Unknown, signed: false, konst: None, plain: false, product: None }
    }
}

fn merge(a: Width, b: Width) -> Width {
    match (a, b) {
        (Width::Known(x), Width::Known(y)) => Width::Known(x.max(y)),
        (Width::Known(x), Width::Unsized) | (Width::Unsized, Width::Known(x)) => Width::Known(x),
        (Width::Unsized, Width::Unsized) => Width::Unsized,
        _ => Width::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Sys(String),
    /// A literal: width (None = unsized), value (None when it has x/z digits or overflows u64),
    /// signed, and its text for messages.
    Num(Option<u32>, Option<u64>, bool, String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "<<<", ">>>", "===", "!==", "+:", "-:", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "~&", "~|",
    "~^", "^~", "**", "+", "-", "*", "/", "%", "<", ">", "!", "~", "&", "|", "^", "?", ":", "(", ")",
    "[", "]", "{", "}", ",",
];

/// How many of the operators `ops` the expression `s` uses (a `<=` is only a comparison here:
/// non-blocking assignments keep their target apart). Text that does not tokenize counts 0;
/// the design check rejects it anyway.
pub(crate) fn count_ops(s: &str, ops: &[&str]) -> u64 {
    tokenize(s).map(|t| t.iter().filter(|t| matches!(t, Tok::Op(o) if ops.contains(o))).count() as u64).unwrap_or(0)
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = vec![];
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push(Tok::Ident(s[st..i].to_string()));
        } else if c == '$' {
            let st = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Sys(s[st..i].to_string()));
        } else if c.is_ascii_digit() || c == '\'' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
            let size_text: String = s[st..i].chars().filter(|&c| c != '_').collect();
            if i < b.len() && b[i] == b'\'' {
                i += 1;
                let signed = i < b.len() && (b[i] == b's' || b[i] == b'S');
                if signed {
                    i += 1;
                }
                let base = match b.get(i).map(|c| c.to_ascii_lowercase()) {
                    Some(b'd') => 10,
                    Some(b'b') => 2,
                    Some(b'h') => 16,
                    Some(b'o') => 8,
                    _ => return Err(format!("literal '{}' has no base", &s[st..(i + 1).min(s.len())])),
                };
                i += 1;
                let ds = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let digits: String = s[ds..i].chars().filter(|&c| c != '_').collect();
                let value = u64::from_str_radix(&digits, base).ok();
                let width = if size_text.is_empty() { None } else { Some(size_text.parse::<u32>().map_err(|_| format!("bad literal size '{size_text}'"))?) };
                out.push(Tok::Num(width, value, signed, s[st..i].to_string()));
            } else {
                let value = size_text.parse::<u64>().ok();
                out.push(Tok::Num(None, value, true, s[st..i].to_string()));
            }
        } else {
            let op = OPS.iter().find(|op| s[i..].starts_with(**op));
            match op {
                Some(op) => {
                    out.push(Tok::Op(op));
                    i += op.len();
                }
                None => return Err(format!("unexpected character '{c}' in '{s}'")),
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Expressions

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    scope: &'a Scope,
    text: &'a str,
    /// Names the expression reads or writes (roots of selects).
    names: Vec<String>,
}

/// Binary operators by precedence, loosest first (ternary handled above them).
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^", "~^", "^~"],
    &["&"],
    &["==", "!=", "===", "!=="],
    &["<", "<=", ">", ">="],
    &["<<", ">>", "<<<", ">>>"],
    &["+", "-"],
    &["*", "/", "%"],
    &["**"],
];

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{op}' in '{}'", self.text))
        }
    }

    fn expr(&mut self) -> Result<Val, String> {
        let c = self.binary(0)?;
        if self.is_op("?") {
            self.pos += 1;
            let a = self.expr()?;
            self.expect(":")?;
            let b = self.expr()?;
            let konst = match c.konst {
                Some(v) if v != 0 => a.konst,
                Some(_) => b.konst,
                None => None,
            };
            return Ok(Val { width: merge(a.width, b.width), signed: a.signed && b.signed, konst, plain: false, product: None });
        }
        Ok(c)
    }

    fn binary(&mut self, level: usize) -> Result<Val, String> {
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut a = self.binary(level + 1)?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(o)) if LEVELS[level].contains(o) => *o,
                _ => return Ok(a),
            };
            self.pos += 1;
            let b = self.binary(level + 1)?;
            a = binop(op, a, b);
        }
    }

    fn unary(&mut self) -> Result<Val, String> {
        if let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            if ["-", "+", "~", "!", "&", "|", "^", "~&", "~|", "~^"].contains(&op) {
                self.pos += 1;
                let v = self.unary()?;
                return Ok(match op {
                    "-" => Val { konst: v.konst.map(|x| -x), plain: false, ..v },
                    "+" => Val { plain: false, ..v },
                    "~" => Val { konst: None, plain: false, ..v },
                    _ => Val::known(1, false),
                });
            }
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Val, String> {
        let Some(t) = self.peek().cloned() else { return Err(format!("expression ends early: '{}'", self.text)) };
        self.pos += 1;
        match t {
            Tok::Num(width, value, signed, text) => {
                let konst = value.and_then(|v| i64::try_from(v).ok());
                match width {
                    Some(0) => Err(format!("literal '{text}' has width 0")),
                    Some(w) => {
                        if let Some(v) = value
                            && w < 64
                            && v >> w != 0
                        {
                            return Err(format!("literal '{text}' does not fit in {w} bits"));
                        }
                        Ok(Val { width: Width::Known(w), signed, konst, plain: false, product: None })
                    }
                    None => Ok(Val { width: Width::Unsized, signed, konst, plain: false, product: None }),
                }
            }
            Tok::Sys(name) => {
                self.expect("(")?;
                let v = self.expr()?;
                self.expect(")")?;
                match name.as_str() {
                    "$signed" => Ok(Val { signed: true, plain: false, ..v }),
                    "$unsigned" => Ok(Val { signed: false, plain: false, ..v }),
                    _ => Ok(Val::unknown()),
                }
            }
            Tok::Op("(") => {
                let v = self.expr()?;
                self.expect(")")?;
                Ok(Val { plain: false, ..v })
            }
            Tok::Op("{") => self.concat(),
            Tok::Ident(name) => self.name(name),
            other => Err(format!("unexpected {other:?} in '{}'", self.text)),
        }
    }

    fn concat(&mut self) -> Result<Val, String> {
        let first = self.expr()?;
        if self.is_op("{") {
            // Replication {n{a, b}}.
            self.pos += 1;
            let inner = self.concat()?;
            self.expect("}")?;
            let Some(n) = first.konst else { return Err(format!("replication count is not constant in '{}'", self.text)) };
            if n <= 0 {
                return Err(format!("replication count {n} in '{}'", self.text));
            }
            return Ok(match inner.width {
                Width::Known(w) => Val::known(w * n as u32, false),
                _ => Val::unknown(),
            });
        }
        let mut total = Some(0u32);
        let mut add = |v: &Val| {
            total = match (total, v.width) {
                (Some(t), Width::Known(w)) => Some(t + w),
                _ => None,
            }
        };
        add(&first);
        let mut has_unsized = first.width == Width::Unsized;
        while self.is_op(",") {
            self.pos += 1;
            let v = self.expr()?;
            has_unsized |= v.width == Width::Unsized;
            add(&v);
        }
        self.expect("}")?;
        if has_unsized {
            return Err(format!("unsized constant in a concatenation in '{}'", self.text));
        }
        Ok(match total {
            Some(t) => Val::known(t, false),
            None => Val::unknown(),
        })
    }

    fn name(&mut self, name: String) -> Result<Val, String> {
        let Some(d) = self.scope.get(&name).cloned() else {
            return Err(format!("'{name}' is not declared"));
        };
        if d.kind == Kind::Instance {
            return Err(format!("'{name}' is an instance, not a signal"));
        }
        self.names.push(name.clone());
        let mut v = match d.kind {
            Kind::Genvar => Val { width: Width::Unsized, signed: true, konst: None, plain: false, product: None },
            _ if d.width == 0 => Val { width: Width::Unsized, signed: true, konst: d.value, plain: false, product: None },
            _ => Val { width: Width::Known(d.width), signed: d.signed, konst: d.value, plain: true, product: None },
        };
        let mut array = d.depth;
        while self.is_op("[") {
            self.pos += 1;
            let a = self.expr()?;
            let whole = match v.width {
                Width::Known(w) => Some(w),
                _ => None,
            };
            if let Some(depth) = array.take() {
                // An array word.
                self.expect("]")?;
                if let Some(i) = a.konst
                    && (i < 0 || i >= depth as i64)
                {
                    return Err(format!("'{name}[{i}]' is outside the array's {depth} words"));
                }
                v = Val::known(d.width, d.signed);
                continue;
            }
            let sel = if self.is_op(":") {
                self.pos += 1;
                let b = self.expr()?;
                match (a.konst, b.konst) {
                    (Some(hi), Some(lo)) => {
                        if hi < lo {
                            return Err(format!("'{name}[{hi}:{lo}]' selects downwards"));
                        }
                        if let Some(w) = whole
                            && hi >= w as i64
                        {
                            return Err(format!("'{name}[{hi}:{lo}]' is outside its {w} bits"));
                        }
                        Val::known((hi - lo + 1) as u32, false)
                    }
                    _ => Val::unknown(),
                }
            } else if self.is_op("+:") || self.is_op("-:") {
                let up = self.is_op("+:");
                self.pos += 1;
                let b = self.expr()?;
                match b.konst {
                    Some(n) if n > 0 => {
                        if let (Some(base), Some(w)) = (a.konst, whole) {
                            let (lo, hi) = if up { (base, base + n - 1) } else { (base - n + 1, base) };
                            if lo < 0 || hi >= w as i64 {
                                return Err(format!("'{name}[{base} {}: {n}]' is outside its {w} bits", if up { '+' } else { '-' }));
                            }
                        }
                        Val::known(n as u32, false)
                    }
                    _ => return Err(format!("the width of an indexed select of '{name}' is not a positive constant")),
                }
            } else {
                if let (Some(i), Some(w)) = (a.konst, whole)
                    && (i < 0 || i >= w as i64)
                {
                    return Err(format!("'{name}[{i}]' is outside its {w} bits"));
                }
                Val::known(1, false)
            };
            self.expect("]")?;
            v = sel;
        }
        if array.is_some() {
            return Err(format!("array '{name}' is used without a word index"));
        }
        Ok(v)
    }
}

fn binop(op: &str, a: Val, b: Val) -> Val {
    let konst = match (a.konst, b.konst) {
        (Some(x), Some(y)) => match op {
            "+" => x.checked_add(y),
            "-" => x.checked_sub(y),
            "*" => x.checked_mul(y),
            "/" if y != 0 => Some(x / y),
            "%" if y != 0 => Some(x % y),
            "<<" | "<<<" if (0..63).contains(&y) => x.checked_shl(y as u32),
            ">>" | ">>>" if (0..63).contains(&y) => Some(x >> y),
            "&" => Some(x & y),
            "|" => Some(x | y),
            "^" => Some(x ^ y),
            "<" => Some((x < y) as i64),
            "<=" => Some((x <= y) as i64),
            ">" => Some((x > y) as i64),
            ">=" => Some((x >= y) as i64),
            "==" => Some((x == y) as i64),
            "!=" => Some((x != y) as i64),
            _ => None,
        },
        _ => None,
    };
    let width = match op {
        "<<" | ">>" | "<<<" | ">>>" | "**" => a.width,
        "<" | "<=" | ">" | ">=" | "==" | "!=" | "===" | "!==" | "&&" | "||" => Width::Known(1),
        _ => merge(a.width, b.width),
    };
    let signed = match op {
        "<<" | ">>" | "<<<" | ">>>" | "**" => a.signed,
        "<" | "<=" | ">" | ">=" | "==" | "!=" | "===" | "!==" | "&&" | "||" => false,
        _ => a.signed && b.signed,
    };
    let product = match (op, a.width, b.width) {
        ("*", Width::Known(x), Width::Known(y)) => Some(x + y),
        _ => None,
    };
    Val { width, signed, konst, plain: false, product }
}

/// Width and signedness of `text` in `scope`, and the names it uses.
fn eval(text: &str, scope: &Scope) -> Result<(Val, Vec<String>), String> {
    let toks = tokenize(text)?;
    let mut p = Parser { toks, pos: 0, scope, text, names: vec![] };
    let v = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected text after the expression in '{text}'"));
    }
    Ok((v, p.names))
}

// ---------------------------------------------------------------------------------------------
// Modules


struct Ctx<'a> {
    design: &'a Design,
    m: &'a Module,
    /// Per driven name: how it is driven (for the two-driver check).
    drivers: BTreeMap<String, Drivers>,
    /// Procedural blocks seen, to tell them apart.
    blocks: usize,
    /// Labels of the generate blocks being checked, `g_a.g_b.`.
    prefix: String,
    /// Declarations some expression uses (by key), and the localparams declared (key, name).
    used: std::cell::RefCell<BTreeSet<String>>,
    params: Vec<(String, String)>,
}

#[derive(Default)]
struct Drivers {
    /// A continuous driver of the whole signal (assign to the bare name, a wire initializer,
    /// an instance output connected to the bare name).
    whole: u32,
    /// Continuous drivers of a part of it.
    part: u32,
    /// The procedural blocks that assign it.
    procs: BTreeSet<usize>,
}

impl Ctx<'_> {
    fn err(&self, signal: &str, msg: impl std::fmt::Display) -> String {
        format!("module {}: signal {signal}: {msg}", self.m.name)
    }

    fn declare(&self, scope: &mut Scope, name: &str, mut decl: Decl) -> Result<(), String> {
        decl.key = format!("{}{name}", self.prefix);
        if !is_identifier(name) {
            return Err(format!("module {}: '{name}' is not a Verilog identifier", self.m.name));
        }
        if scope.insert(name.to_string(), decl).is_some() {
            return Err(format!("module {}: '{name}' is declared twice", self.m.name));
        }
        Ok(())
    }

    /// Sizes `text` and records the names it uses.
    fn eval(&self, text: &str, scope: &Scope) -> Result<Val, String> {
        let (v, names) = eval(text, scope)?;
        let mut used = self.used.borrow_mut();
        for n in names {
            used.insert(scope[&n].key.clone());
        }
        Ok(v)
    }

    /// Checks `rhs` and, when both widths are known, that it is as wide as `want`.
    fn value(&self, scope: &Scope, signal: &str, want: Width, rhs: &str) -> Result<Val, String> {
        let v = self.eval(rhs, scope).map_err(|e| self.err(signal, e))?;
        if let (Width::Known(w), Width::Known(got)) = (want, v.width)
            && w != got
            && !v.product.is_some_and(|p| got < w && w <= p)
        {
            return Err(self.err(signal, format!("{w}-bit target gets a {got}-bit value '{rhs}'")));
        }
        Ok(v)
    }

    /// Checks an assignment target and returns its root name and width.
    fn target(&self, scope: &Scope, lhs: &str, allowed: Kind) -> Result<(String, Width, bool), String> {
        let root = lhs.split(['[', ' ']).next().unwrap_or(lhs).to_string();
        let v = self.eval(lhs, scope).map_err(|e| self.err(&root, e))?;
        let kind = scope[&root].kind;
        if kind != allowed {
            let what = if allowed == Kind::Net {
                "a continuous assign needs a wire of this module"
            } else {
                "a procedural assign needs a reg of this module"
            };
            return Err(self.err(&root, what));
        }
        Ok((root, v.width, v.plain))
    }

    fn drive(&mut self, scope: &Scope, root: &str, whole: bool, proc_block: Option<usize>) -> Result<(), String> {
        let d = self.drivers.entry(scope[root].key.clone()).or_default();
        match proc_block {
            Some(b) => {
                d.procs.insert(b);
            }
            None if whole => d.whole += 1,
            None => d.part += 1,
        }
        let multiple = d.whole > 1 || (d.whole == 1 && (d.part > 0 || !d.procs.is_empty())) || d.procs.len() > 1;
        if multiple {
            return Err(self.err(root, "has two drivers"));
        }
        Ok(())
    }

    fn items(&mut self, items: &[Item], scope: &mut Scope) -> Result<(), String> {
        // Declarations first, so the check does not depend on declaration order.
        for it in items {
            match it {
                Item::Localparam { name, width, value } => {
                    self.declare(
                        scope,
                        name,
                        Decl { kind: Kind::Const, width: *width, signed: *width == 0, depth: None, value: Some(*value), key: String::new() },
                    )?;
                    self.params.push((scope[name].key.clone(), name.clone()));
                }
                Item::GenParam { name, width, .. } => self.declare(
                    scope,
                    name,
                    Decl { kind: Kind::Const, width: *width, signed: false, depth: None, value: None, key: String::new() },
                )?,
                Item::Wire { name, width, signed, depth, .. } | Item::Reg { name, width, signed, depth } => {
                    if *width == 0 {
                        return Err(self.err(name, "has width 0"));
                    }
                    let kind = if matches!(it, Item::Wire { .. }) { Kind::Net } else { Kind::Var };
                    self.declare(scope, name, Decl { kind, width: *width, signed: *signed, depth: *depth, value: None, key: String::new() })?;
                }
                Item::Integer(name) => self.declare(
                    scope,
                    name,
                    Decl { kind: Kind::Var, width: 0, signed: true, depth: None, value: None, key: String::new() },
                )?,
                Item::Instance { name, .. } => self.declare(
                    scope,
                    name,
                    Decl { kind: Kind::Instance, width: 0, signed: false, depth: None, value: None, key: String::new() },
                )?,
                _ => {}
            }
        }
        for it in items {
            match it {
                Item::GenParam { name, expr, .. } => {
                    self.value(scope, name, Width::Unknown, expr)?;
                }
                Item::Wire { name, width, init: Some(e), depth: None, .. } => {
                    self.value(scope, name, Width::Known(*width), e)?;
                    self.drive(scope, name, true, None)?;
                }
                Item::Assign { lhs, rhs } => {
                    let (root, w, whole) = self.target(scope, lhs, Kind::Net)?;
                    self.value(scope, &root, w, rhs)?;
                    self.drive(scope, &root, whole, None)?;
                }
                Item::Clocked { body, label } | Item::Comb { body, label } => {
                    if !is_identifier(label) {
                        return Err(format!("module {}: bad block label '{label}'", self.m.name));
                    }
                    self.blocks += 1;
                    let id = self.blocks;
                    self.stmts(body, scope, id)?;
                }
                Item::Instance { module, name, conns } => self.instance(scope, module, name, conns)?,
                Item::GenFor { var, body, label, .. } => {
                    if !is_identifier(label) {
                        return Err(format!("module {}: bad generate label '{label}'", self.m.name));
                    }
                    let mut inner = scope.clone();
                    // A genvar may be shared by sibling loops (declared once at module scope).
                    inner.insert(
                        var.clone(),
                        Decl { kind: Kind::Genvar, width: 0, signed: true, depth: None, value: None, key: String::new() },
                    );
                    let inner_prefix = format!("{}{label}.", self.prefix);
                    let outer = std::mem::replace(&mut self.prefix, inner_prefix);
                    self.items(body, &mut inner)?;
                    self.prefix = outer;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn instance(&mut self, scope: &Scope, module: &str, name: &str, conns: &[(String, String)]) -> Result<(), String> {
        let m = &self.m.name;
        let Some(target) = self.design.get(module) else {
            return Err(format!("module {m}: instance {name} of unknown module {module}"));
        };
        for p in &target.ports {
            if !conns.iter().any(|(c, _)| c == &p.name) {
                return Err(format!("module {m}: instance {name} leaves port {} of {module} open", p.name));
            }
        }
        for (c, e) in conns {
            let Some(p) = target.port_named(c) else {
                return Err(format!("module {m}: instance {name} connects {c}, which {module} does not have"));
            };
            let what = format!("{name}.{c}");
            let v = self.eval(e, scope).map_err(|err| self.err(&what, err))?;
            if let Width::Known(w) = v.width
                && w != p.width
            {
                return Err(self.err(&what, format!("{}-bit port {c} of {module} is connected to the {w}-bit '{e}'", p.width)));
            }
            if v.plain && v.signed != p.signed {
                let s = |b: bool| if b { "signed" } else { "unsigned" };
                return Err(self.err(&what, format!("{} port {c} of {module} is connected to the {} '{e}'", s(p.signed), s(v.signed))));
            }
            if p.dir == Dir::Output {
                let (root, _, whole) = self.target(scope, e, Kind::Net).map_err(|_| {
                    self.err(&what, format!("output port {c} of {module} must drive a wire of this module, not '{e}'"))
                })?;
                self.drive(scope, &root, whole, None)?;
            }
        }
        Ok(())
    }

    fn stmts(&mut self, body: &[Stmt], scope: &Scope, block: usize) -> Result<(), String> {
        for s in body {
            match s {
                Stmt::Nb(lhs, rhs) | Stmt::Bl(lhs, rhs) => {
                    let (root, w, _) = self.target(scope, lhs, Kind::Var)?;
                    self.value(scope, &root, w, rhs)?;
                    self.drive(scope, &root, false, Some(block))?;
                }
                Stmt::If { cond, then, els } => {
                    self.value(scope, "(condition)", Width::Unknown, cond)?;
                    self.stmts(then, scope, block)?;
                    self.stmts(els, scope, block)?;
                }
                Stmt::For { var, body, .. } => {
                    if scope.get(var).map(|d| d.kind) != Some(Kind::Var) {
                        return Err(self.err(var, "a for loop needs an integer of this module"));
                    }
                    self.stmts(body, scope, block)?;
                }
                Stmt::Case { sel, arms, default } => {
                    let v = self.eval(sel, scope).map_err(|e| self.err("(case)", e))?;
                    for (label, b) in arms {
                        self.value(scope, "(case label)", v.width, label)?;
                        self.stmts(b, scope, block)?;
                    }
                    self.stmts(default, scope, block)?;
                }
                Stmt::Comment(_) => {}
            }
        }
        Ok(())
    }
}

/// Checks one module of `d`.
pub fn check_module(d: &Design, m: &Module) -> Result<(), String> {
    if !m.name.starts_with("kllm_") || !is_identifier(&m.name) {
        return Err(format!("module name '{}' must be an identifier starting with kllm_", m.name));
    }
    let mut ctx = Ctx {
        design: d,
        m,
        drivers: BTreeMap::new(),
        blocks: 0,
        prefix: String::new(),
        used: Default::default(),
        params: vec![],
    };
    let mut scope = Scope::new();
    for p in &m.ports {
        let kind = match (p.dir, p.is_reg) {
            (Dir::Input, _) => Kind::Input,
            (Dir::Output, true) => Kind::Var,
            (Dir::Output, false) => Kind::Net,
        };
        if p.width == 0 {
            return Err(format!("module {}: port {} has width 0", m.name, p.name));
        }
        ctx.declare(&mut scope, &p.name, Decl { kind, width: p.width, signed: p.signed, depth: None, value: None, key: String::new() })?;
    }
    ctx.items(&m.items, &mut scope)?;
    // Every localparam is used (an unused one is a leftover, and a lint warning).
    for (key, name) in &ctx.params {
        if !ctx.used.borrow().contains(key) {
            return Err(ctx.err(name, "localparam is never used"));
        }
    }
    // Every output must be driven.
    for p in m.ports.iter().filter(|p| p.dir == Dir::Output) {
        if !ctx.drivers.contains_key(&scope[&p.name].key) {
            return Err(ctx.err(&p.name, "output port is never driven"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        let mut s = Scope::new();
        let mut add = |n: &str, kind, width, signed, depth, value| {
            s.insert(n.into(), Decl { kind, width, signed, depth, value, key: n.into() });
        };
        add("a", Kind::Net, 8, false, None, None);
        add("b", Kind::Net, 4, false, None, None);
        add("s", Kind::Net, 8, true, None, None);
        add("mem", Kind::Var, 16, true, Some(4), None);
        add("W", Kind::Const, 0, true, None, Some(4));
        add("g", Kind::Genvar, 0, true, None, None);
        s
    }

    fn width(e: &str) -> Width {
        eval(e, &scope()).unwrap().0.width
    }

    #[test]
    fn widths_follow_the_verilog_rules() {
        assert_eq!(width("a"), Width::Known(8));
        assert_eq!(width("a + b"), Width::Known(8));
        assert_eq!(width("{a, b}"), Width::Known(12));
        assert_eq!(width("{W{b}}"), Width::Known(16));
        assert_eq!(width("a[g*W +: W]"), Width::Known(4));
        assert_eq!(width("a[7:4]"), Width::Known(4));
        assert_eq!(width("a[3]"), Width::Known(1));
        assert_eq!(width("a < b"), Width::Known(1));
        assert_eq!(width("b << a"), Width::Known(4));
        assert_eq!(width("mem[2]"), Width::Known(16));
        assert_eq!(width("mem[2][3:0]"), Width::Known(4));
        assert_eq!(width("a == 8'd3 ? a : {4'd0, b}"), Width::Known(8));
        assert_eq!(width("W - 1"), Width::Unsized);
        assert!(eval("$signed(a)", &scope()).unwrap().0.signed);
        assert!(!eval("a + s", &scope()).unwrap().0.signed);
    }

    #[test]
    fn bad_expressions_are_named() {
        let e = |t: &str| eval(t, &scope()).unwrap_err();
        assert_eq!(e("a + c"), "'c' is not declared");
        assert_eq!(e("a + 4'd16"), "literal '4'd16' does not fit in 4 bits");
        assert_eq!(e("a[8]"), "'a[8]' is outside its 8 bits");
        assert_eq!(e("a[9:2]"), "'a[9:2]' is outside its 8 bits");
        assert_eq!(e("a[6 +: 4]"), "'a[6 +: 4]' is outside its 8 bits");
        assert_eq!(e("mem[4]"), "'mem[4]' is outside the array's 4 words");
        assert_eq!(e("mem + a"), "array 'mem' is used without a word index");
        assert!(e("{a, 1}").starts_with("unsized constant in a concatenation"));
    }
}
