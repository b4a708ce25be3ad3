// Verilator bench for kllm_nl_map: the golden file's vectors with random gaps and back-pressure.
// Its port binding is generated from the module's ports (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_nl_map.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_nl_map> b(argc, argv, "nl_map");
    kllm_bind_nl_map(b);
    return b.run();
}
