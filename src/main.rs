//! The `epmdpxy` binary: parses arguments, then runs the daemon or `ctl`.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use epmdpxy::cli::{Args, Subcommand};
use epmdpxy::daemon::{self, Listen};
use epmdpxy::partition::Pattern;
use epmdpxy::shared::Settings;

fn main() -> ExitCode {
    let args: Args = epmdpxy::cli::from_env();
    if args.version {
        println!("epmdpxy {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(Subcommand::Ctl(ctl)) = &args.command {
        let code = epmdpxy::ctl::main(ctl);
        return ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    epmdpxy::log::set_verbosity(args.verbose);
    match start(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("epmdpxy: {message}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: &Args) -> Result<(), String> {
    let epmd_port = match args.port {
        Some(port) => port,
        None => match std::env::var("ERL_EPMD_PORT") {
            Ok(text) => text
                .trim()
                .parse()
                .map_err(|_| format!("ERL_EPMD_PORT is not a port: '{text}'"))?,
            Err(_) => 4369,
        },
    };
    // As epmd: a list of only separators (or an empty ERL_EPMD_ADDRESS)
    // means the defaults.
    let addresses = match args
        .address
        .clone()
        .or_else(|| std::env::var("ERL_EPMD_ADDRESS").ok())
    {
        Some(text) if !daemon::is_blank_address_list(&text) => {
            Some(daemon::parse_addresses(&text)?)
        }
        _ => None,
    };
    let control_address: IpAddr = args
        .control_address
        .parse()
        .map_err(|_| format!("bad --control-address '{}'", args.control_address))?;
    let exempt = args
        .exempt
        .iter()
        .flat_map(|list| list.split(','))
        .map(|name| Pattern::parse(name.trim()).map_err(|err| format!("--exempt: {err}")))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = Settings {
        relaxed_command_check: args.relaxed_command_check
            || std::env::var_os("ERL_EPMD_RELAXED_COMMAND_CHECK").is_some(),
        packet_timeout: Duration::from_secs(args.packet_timeout),
        listener_timeout: Duration::from_secs(args.listener_timeout),
        exempt,
        seed: args.seed,
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        max_pending_listeners: args.max_pending_listeners,
        max_control_sessions: args.max_control_sessions,
        ..Settings::default()
    };
    let listen = Listen {
        epmd_port,
        control_port: args.control_port,
        addresses,
        control_address,
    };
    daemon::run(listen, settings)
}
