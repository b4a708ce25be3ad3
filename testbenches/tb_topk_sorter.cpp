// Verilator bench for kllm_topk_sorter (bitonic baseline): the same golden vectors and streams
// as tb_orizuru.cpp, so both tops are held to one result contract.
#include "Vkllm_topk_sorter.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_topk_sorter> b(argc, argv, "topk_sorter");
    Vkllm_topk_sorter* t = b.top.get();
    b.cfg_write = [](uint64_t, const Bits&) {};
    b.cfg_idle = []() {};
    b.add_in("", &t->s_valid, &t->s_ready, [t](const Fields& f) { put(t->s_x, f.at(0)); });
    b.add_out("max", &t->m_max_valid, &t->m_max_ready, [t]() {
        return Fields{get(t->m_max_value), get(t->m_max_pos), get(t->m_max_last)};
    });
    b.add_out("min", &t->m_min_valid, &t->m_min_ready, [t]() {
        return Fields{get(t->m_min_value), get(t->m_min_pos), get(t->m_min_last)};
    });
    return b.run();
}
