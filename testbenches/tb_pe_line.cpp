// Verilator bench for kllm_pe_line: the golden file's vectors with random gaps and back-pressure.
// Its port binding is generated from the module's ports (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_pe_line.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_pe_line> b(argc, argv, "pe_line");
    kllm_bind_pe_line(b);
    return b.run();
}
