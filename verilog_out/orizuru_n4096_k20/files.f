kllm_orizuru.v
