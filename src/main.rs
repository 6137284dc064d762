//! The `epmdpxy` binary: parses arguments, then runs the daemon or `ctl`.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;
use epmdpxy::cli::{self, Args, Subcommand};
use epmdpxy::daemon::{self, Listen};
use epmdpxy::shared::Settings;

/// Parses the command line as argh's `from_env` does, after rewriting
/// epmd's single-dash spellings (`-port 4369`) into ours.
fn parse_args() -> Result<Args, ExitCode> {
    let mut words = std::env::args();
    let program = words.next().unwrap_or_else(|| "epmdpxy".to_owned());
    let command = std::path::Path::new(&program)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("epmdpxy")
        .to_owned();
    let words = match cli::epmd_style_args(words.collect()) {
        Ok(words) => words,
        Err(message) => {
            eprintln!("{command}: {message}");
            return Err(ExitCode::FAILURE);
        }
    };
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    Args::from_args(&[&command], &refs).map_err(|exit| match exit.status {
        Ok(()) => {
            println!("{}", exit.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!(
                "{}\nRun {command} --help for more information.",
                exit.output
            );
            ExitCode::FAILURE
        }
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    if args.version {
        println!("epmdpxy {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(Subcommand::Ctl(ctl)) = &args.command {
        let code = epmdpxy::ctl::run(&ctl.control_address, ctl.control_port, &ctl.words);
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
    let settings = Settings {
        relaxed_command_check: args.relaxed_command_check
            || std::env::var_os("ERL_EPMD_RELAXED_COMMAND_CHECK").is_some(),
        packet_timeout: Duration::from_secs(args.packet_timeout),
        listener_timeout: Duration::from_secs(args.listener_timeout),
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
