//! Small building blocks shared by the block families.

use crate::verilog::{clog2, if_, if_else, lit, nb, Design, Item, Module};

/// `kllm_fifo_w{w}_d{depth}`: a register FIFO whose writer guarantees (by credits) that it never
/// pushes when full, so there is no `full` output to leave unconnected.
pub fn fifo_module(d: &mut Design, w: u32, depth: u32) -> String {
    assert!(depth.is_power_of_two() && depth >= 2);
    let name = format!("kllm_fifo_w{w}_d{depth}");
    if d.get(&name).is_some() {
        return name;
    }
    let pb = clog2(depth as u64);
    let mut m = Module::new(&name);
    m.doc(format!("{depth}-entry FIFO of {w}-bit words; the writer must not push when it is full."));
    m.clock_reset();
    m.input("push", 1, "write push_data (never while full)")
        .input("push_data", w, "")
        .input("pop", 1, "drop the head (only while m_valid)")
        .output("m_valid", 1, "not empty")
        .output("m_data", w, "head entry");
    m.push(Item::Reg { name: "mem_q".into(), width: w, signed: false, depth: Some(depth) });
    m.reg("wr_ptr_q", pb + 1).reg("rd_ptr_q", pb + 1);
    m.clocked("store", vec![if_("push", vec![nb(format!("mem_q[wr_ptr_q[{}:0]]", pb - 1), "push_data")])]);
    m.clocked(
        "pointers",
        vec![if_else(
            "rst",
            vec![nb("wr_ptr_q", lit(pb + 1, 0)), nb("rd_ptr_q", lit(pb + 1, 0))],
            vec![
                if_("push", vec![nb("wr_ptr_q", format!("wr_ptr_q + {}", lit(pb + 1, 1)))]),
                if_("pop", vec![nb("rd_ptr_q", format!("rd_ptr_q + {}", lit(pb + 1, 1)))]),
            ],
        )],
    );
    m.assign("m_valid", "wr_ptr_q != rd_ptr_q");
    m.assign("m_data", format!("mem_q[rd_ptr_q[{}:0]]", pb - 1));
    d.add(m);
    name
}
