//! The `iris-trainer` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    iris_trainer::cli::main()
}
