#![forbid(unsafe_code)]

fn main() {
    std::process::exit(reprise::cli::main());
}
