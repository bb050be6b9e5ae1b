//! `syncookie`: a SYN-flood shield. See `syncookie --help`.

mod cli;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("syncookie: {}", cli::render(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
