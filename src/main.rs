fn main() -> std::process::ExitCode {
    bazaar::cli::main()
}
