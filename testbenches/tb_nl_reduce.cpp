// Verilator bench for kllm_nl_reduce: table sums by counting, with reloads, gaps, back-pressure.
#include "Vkllm_nl_reduce.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_nl_reduce> b(argc, argv, "nl_reduce");
    Vkllm_nl_reduce* t = b.top.get();
    b.cfg_write = [t](uint64_t addr, const Bits& data) {
        t->cfg_we = 1;
        t->cfg_addr = addr;
        put(t->cfg_wdata, data);
    };
    b.cfg_idle = [t]() { t->cfg_we = 0; };
    b.add_in("", &t->s_valid, &t->s_ready, [t](const Fields& f) {
        put(t->s_idx, f.at(0));
        put(t->s_keep, f.at(1));
        put(t->s_last, f.at(2));
    });
    b.add_out("", &t->m_valid, &t->m_ready, [t]() { return Fields{get(t->m_sum)}; });
    static_assert(KLLM_NL_REDUCE_SUM_BITS <= 64, "m_sum is read as one integer");
    return b.run();
}
