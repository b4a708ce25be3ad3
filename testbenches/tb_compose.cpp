// Verilator bench for a design made by `kllm-gen compose`: +part=PREFIX picks the part whose
// golden file (+golden=FILE) this run checks, through the part's generated binding; the other
// parts share clk and rst and sit idle.
#include <cstring>
#include <string>
#include "kllm_top.h"
#include "kllm_bench.h"

int main(int argc, char** argv) {
    std::string part;
    for (int i = 1; i < argc; i++)
        if (std::strncmp(argv[i], "+part=", 6) == 0) part = argv[i] + 6;
    return kllm_run_part<KllmTop>(argc, argv, part);
}
