// Verilator bench for kllm_dq_pe_line (the dequantize-multiply baseline of kllm_pe_line): golden
// dot products with random gaps and back-pressure; cfg writes load the two codebooks.
#include "Vkllm_dq_pe_line.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_dq_pe_line> b(argc, argv, "dq_pe_line");
    Vkllm_dq_pe_line* t = b.top.get();
    b.cfg_write = [t](uint64_t addr, const Bits& data) {
        t->cfg_we = 1;
        t->cfg_addr = addr;
        put(t->cfg_wdata, data);
    };
    b.cfg_idle = [t]() { t->cfg_we = 0; };
    b.add_in("", &t->s_valid, &t->s_ready, [t](const Fields& f) {
        put(t->s_idx_a, f.at(0));
        put(t->s_idx_w, f.at(1));
        put(t->s_keep, f.at(2));
        put(t->s_last, f.at(3));
    });
    b.add_out("", &t->m_valid, &t->m_ready, [t]() { return Fields{get(t->m_y)}; });
    static_assert(KLLM_DQ_PE_LINE_Y_BITS <= 64, "m_y is read as one integer");
    return b.run();
}
