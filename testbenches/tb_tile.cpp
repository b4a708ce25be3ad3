// Verilator bench for kllm_tile: the golden file's GEMVs with random gaps on both input streams
// and back-pressure on the results. Its port binding is generated from the module's ports
// (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_tile.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_tile> b(argc, argv, "tile");
    kllm_bind_tile(b);
    return b.run();
}
