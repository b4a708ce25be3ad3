kllm_orizuru.v
kllm_topk_sorter.v
