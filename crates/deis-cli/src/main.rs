//! `deis`: parses the command line and runs it (see the `deis_cli` library).

fn main() {
    std::process::exit(deis_cli::run(std::env::args().collect()));
}
