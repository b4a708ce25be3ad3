// Verilator bench for kllm_nl_map2: index-pair table look-ups with reloads, gaps, back-pressure.
#include "Vkllm_nl_map2.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_nl_map2> b(argc, argv, "nl_map2");
    Vkllm_nl_map2* t = b.top.get();
    b.cfg_write = [t](uint64_t addr, const Bits& data) {
        t->cfg_we = 1;
        t->cfg_addr = addr;
        put(t->cfg_wdata, data);
    };
    b.cfg_idle = [t]() { t->cfg_we = 0; };
    b.add_in("", &t->s_valid, &t->s_ready, [t](const Fields& f) {
        put(t->s_idx_a, f.at(0));
        put(t->s_idx_b, f.at(1));
        put(t->s_last, f.at(2));
    });
    b.add_out("", &t->m_valid, &t->m_ready, [t]() { return Fields{get(t->m_out), get(t->m_last)}; });
    return b.run();
}
