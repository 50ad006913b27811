//! `deisctl`: parses the command line and runs it (see the `deisctl` library).

fn main() {
    std::process::exit(deisctl::run(std::env::args().collect()));
}
