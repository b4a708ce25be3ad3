// Verilator bench for kllm_act_encoder: the golden file's vectors with random gaps and back-pressure.
// Its port binding is generated from the module's ports (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_act_encoder.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_act_encoder> b(argc, argv, "act_encoder");
    kllm_bind_act_encoder(b);
    return b.run();
}
