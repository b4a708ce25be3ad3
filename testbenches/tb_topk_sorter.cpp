// Verilator bench for kllm_topk_sorter: the golden file's vectors with random gaps and back-pressure.
// Its port binding is generated from the module's ports (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_topk_sorter.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_topk_sorter> b(argc, argv, "topk_sorter");
    kllm_bind_topk_sorter(b);
    return b.run();
}
