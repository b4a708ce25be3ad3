// Verilator bench for kllm_dq_tile (the tile with dequantize-multiply lines, `[tile] baseline =
// true`): the tile's golden GEMVs under its own name and cycle model, with random gaps on both
// input streams and back-pressure on the results. Its port binding is generated from the
// module's ports (kllm_bench.h, src/benchgen.rs).
#include "Vkllm_dq_tile.h"
#include "kllm_params.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    Bench<Vkllm_dq_tile> b(argc, argv, "dq_tile");
    kllm_bind_dq_tile(b);
    return b.run();
}
