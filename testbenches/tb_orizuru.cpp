// Verilator bench for kllm_orizuru: the golden file's vectors with random gaps and back-pressure.
// Its port binding is generated from the module's ports (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_orizuru.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_orizuru> b(argc, argv, "orizuru");
    kllm_bind_orizuru(b);
    return b.run();
}
