fn main() {
    std::process::exit(kllm_gen::cli::main());
}
