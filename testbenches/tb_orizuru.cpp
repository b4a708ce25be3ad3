// Verilator bench for kllm_orizuru: golden vectors in, the k largest (out.max) and k smallest
// (out.min) out, each stream with its own random back-pressure.
#include "Vkllm_orizuru.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_orizuru> b(argc, argv, "orizuru");
    Vkllm_orizuru* t = b.top.get();
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
