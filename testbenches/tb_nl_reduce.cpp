// Verilator bench for kllm_nl_reduce: the golden file's vectors with random gaps and back-pressure.
// Its port binding is generated from the module's ports (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_nl_reduce.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_nl_reduce> b(argc, argv, "nl_reduce");
    kllm_bind_nl_reduce(b);
    return b.run();
}
