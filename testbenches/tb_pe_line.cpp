// Verilator bench for kllm_pe_line: golden dot products with random gaps and back-pressure.
#include "Vkllm_pe_line.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_pe_line> b(argc, argv, "pe_line");
    bind_pe_line_ports(b);
    static_assert(KLLM_PE_LINE_Y_BITS <= 64, "m_y is read as one integer");
    return b.run();
}
