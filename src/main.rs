//! The `epmdpxy` binary: parses arguments, then runs `ctl` or the daemon,
//! and says why the daemon ended.

use std::process::ExitCode;

use epmdpxy::cli::{self, Subcommand};

fn main() -> ExitCode {
    let args = cli::from_env();
    if args.version {
        println!("epmdpxy {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(Subcommand::Ctl(ctl)) = &args.command {
        let code = epmdpxy::ctl::main(ctl);
        return ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    epmdpxy::base::log::set_verbosity(args.verbose);
    match cli::daemon_config(&args).and_then(epmdpxy::daemon::run) {
        Ok(why) => {
            epmdpxy::log_warn!("epmdpxy: exiting: {why}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            epmdpxy::log_warn!("epmdpxy: {message}");
            ExitCode::FAILURE
        }
    }
}
