// Verilator bench for kllm_nl_map: table look-ups with reloads, random gaps and back-pressure.
#include "Vkllm_nl_map.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_nl_map> b(argc, argv, "nl_map");
    Vkllm_nl_map* t = b.top.get();
    b.cfg_write = [t](uint64_t addr, const Bits& data) {
        t->cfg_we = 1;
        t->cfg_addr = addr;
        put(t->cfg_wdata, data);
    };
    b.cfg_idle = [t]() { t->cfg_we = 0; };
    b.add_in("", &t->s_valid, &t->s_ready, [t](const Fields& f) {
        put(t->s_idx, f.at(0));
        put(t->s_last, f.at(1));
    });
    b.add_out("", &t->m_valid, &t->m_ready, [t]() { return Fields{get(t->m_out), get(t->m_last)}; });
    return b.run();
}
