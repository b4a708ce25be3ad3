// Verilator bench for kllm_topk_sorter (bitonic baseline): the same golden vectors and streams
// as tb_orizuru.cpp, so both tops are held to one result contract.
#include "Vkllm_topk_sorter.h"
#include "kllm_params.h"
#include "kllm_tb.h"

int main(int argc, char** argv) {
    Bench<Vkllm_topk_sorter> b(argc, argv, "topk_sorter");
    bind_topk_ports(b);
    return b.run();
}
