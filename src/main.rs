//! The `iris-trainer` binary: parses the command line, calls the library, prints, exits.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
