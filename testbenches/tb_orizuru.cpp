// Verilator bench for kllm_orizuru: golden vectors in, the k largest (out.max) and k smallest
// (out.min) out, each stream with its own random back-pressure.
#include "Vkllm_orizuru.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_orizuru> b(argc, argv, "orizuru");
    bind_topk_ports(b);
    return b.run();
}
