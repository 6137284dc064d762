//! Command-line arguments (argh): the daemon's flags and the `ctl`
//! client, epmd's own spellings of its flags, and the daemon's
//! configuration resolved from flags and environment.

use std::net::IpAddr;
use std::time::Duration;

use argh::FromArgs;

use crate::control::ControlSettings;
use crate::daemon::{is_blank_address_list, parse_addresses, Config, Listen};
use crate::epmd::EpmdSettings;
use crate::partition::Pattern;
use crate::proxy::ProxySettings;

/// The exit code of a usage error (`EX_USAGE`): nothing was sent.
pub const USAGE_ERROR: i32 = 64;

/// Parses the process's arguments as `argh::from_env` does (same help and
/// error output, same exit codes), except that `ctl -` (commands from
/// stdin) works: argh takes a lone `-` for an unknown option unless it
/// comes after `--`, so one is inserted.
pub fn from_env() -> Args {
    let strings: Vec<String> = match std::env::args_os()
        .map(|arg| arg.into_string())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(strings) => strings,
        Err(arg) => {
            eprintln!("Invalid utf8: {}", arg.to_string_lossy());
            std::process::exit(1)
        }
    };
    let Some((program, rest)) = strings.split_first() else {
        eprintln!("No program name, argv is empty");
        std::process::exit(1)
    };
    let command = std::path::Path::new(program)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(program);
    let rest = match epmd_style_args(rest.to_vec()) {
        Ok(rest) => rest,
        Err(message) => {
            eprintln!("{command}: {message}");
            std::process::exit(USAGE_ERROR)
        }
    };
    let rest = stdin_marker_as_positional(&rest);
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    Args::from_args(&[command], &rest).unwrap_or_else(|early_exit| match early_exit.status {
        Ok(()) => {
            println!("{}", early_exit.output);
            std::process::exit(0)
        }
        Err(()) => {
            eprintln!(
                "{}\nRun {command} --help for more information.",
                early_exit.output
            );
            // Not 1 (ctl: the proxy said ERR) nor 2 (ctl: cannot connect).
            std::process::exit(USAGE_ERROR)
        }
    })
}

/// The usage line of `epmdpxy ctl`, as argh prints it for `--help`.
pub fn ctl_usage() -> String {
    match CtlArgs::from_args(&["epmdpxy", "ctl"], &["--help"]) {
        Err(exit) => exit.output.lines().next().unwrap_or_default().to_owned(),
        Ok(_) => "Usage: epmdpxy ctl <command words...>".to_owned(),
    }
}

/// `ctl ... -` → `ctl ... -- -`, when no `--` came before the `-`.
fn stdin_marker_as_positional(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut in_ctl = false;
    let mut escaped = false;
    for arg in args {
        if !in_ctl && arg == "ctl" {
            in_ctl = true;
        } else if in_ctl && arg == "--" {
            escaped = true;
        } else if in_ctl && !escaped && arg == "-" {
            out.push("--".to_owned());
            escaped = true;
        }
        out.push(arg.clone());
    }
    out
}

/// epmdpxy: a drop-in EPMD (Erlang Port Mapper Daemon) that proxies every
/// distribution link, so a text control port can cut and heal network
/// partitions between real Erlang nodes on one machine.
#[derive(FromArgs, Debug)]
#[argh(
    example = "Start it, point nodes at it, then cut from another terminal:\n  {command_name} --port 4369\n  ERL_EPMD_PORT=4369 erl -sname n1 -start_epmd false\n  {command_name} ctl 'cut n1 | n2'",
    note = "Control commands (nc localhost 4370, `epmdpxy ctl`, or `help` on the control port):\n  cut, fix, isolate, rejoin, delay, throttle, reset, clear, heal, watch, sleep,\n  split, bridge, ring, seed, chaos, exempt, unexempt, status, nodes, links, matrix,\n  help, quit\n  (grammar and examples: docs/control-protocol.md)\nEnvironment: ERL_EPMD_PORT (default port), ERL_EPMD_ADDRESS (default addresses),\nERL_EPMD_RELAXED_COMMAND_CHECK (set: as --relaxed-command-check);\nEPMDPXY_CONTROL ([host:]port) and EPMDPXY_AT: where `epmdpxy ctl` connects.\nepmd's own spellings work too: -port N, -address LIST, -relaxed_command_check,\n-packet_timeout S, -d/-debug (as -v)."
)]
pub struct Args {
    /// TCP port for EPMD requests (default: $ERL_EPMD_PORT, else 4369; 0 picks a free port)
    #[argh(option)]
    pub port: Option<u16>,

    /// TCP port for the control protocol (default: 4370; 0 picks a free port)
    #[argh(option, default = "4370")]
    pub control_port: u16,

    /// comma-separated addresses for EPMD and the proxy listeners
    /// (default: $ERL_EPMD_ADDRESS, else 127.0.0.1, ::1 and the loopback
    /// addresses the host name resolves to, e.g. 127.0.1.1; loopback is always served)
    #[argh(option)]
    pub address: Option<String>,

    /// address for the control port (default: 127.0.0.1; it has no authentication)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    pub control_address: String,

    /// allow KILL while nodes are registered, and STOP (as epmd's -relaxed_command_check)
    #[argh(switch)]
    pub relaxed_command_check: bool,

    /// seconds an EPMD client may take to send its request (default: 60)
    #[argh(option, default = "60")]
    pub packet_timeout: u64,

    /// seconds a proxy listener waits for its connection before closing (default: 30)
    #[argh(option, default = "30")]
    pub listener_timeout: u64,

    /// a node no fault ever applies to (never cut, isolated, delayed or
    /// reset), e.g. the test runner; repeat or comma-separate for several
    #[argh(option)]
    pub exempt: Vec<String>,

    /// seed of the random shapes, chaos runs and delay jitter (default: from the clock;
    /// the ready line prints it)
    #[argh(option)]
    pub seed: Option<u64>,

    /// seconds a new link waits for the connecting node's first handshake
    /// message before it is closed (default: 30)
    #[argh(option, default = "30")]
    pub handshake_timeout: u64,

    /// proxy listeners that may wait for their connection at once; lookups
    /// beyond are answered "not found" (default: 1024)
    #[argh(option, default = "1024")]
    pub max_pending_listeners: usize,

    /// control sessions open at once; one more is answered
    /// `ERR too many control sessions` and closed (default: 64)
    #[argh(option, default = "64")]
    pub max_control_sessions: usize,

    /// log node, link and fault events to stderr; twice for every EPMD request
    #[argh(switch, short = 'v')]
    pub verbose: u8,

    /// print the version and exit
    #[argh(switch)]
    pub version: bool,

    #[argh(subcommand)]
    pub command: Option<Subcommand>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Subcommand {
    Ctl(CtlArgs),
}

/// Send control commands to a running epmdpxy and print the answers.
/// Exits 0 on OK, 1 on ERR, 2 when it cannot connect, 64 on a usage error.
/// With --at (or $EPMDPXY_AT) every command goes to each listed proxy at
/// once, each answer line prefixed by its address; the exit code is the
/// worst one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "ctl",
    // `epmdpxy ctl help` sends `help` to the proxy; only --help is ours.
    help_triggers("--help"),
    example = "{command_name} status\n{command_name} 'cut n1,n2 | n3'\n{command_name} - < scenario.txt\n{command_name} --at 10.0.0.1:4370,10.0.0.2:4370 'cut *@10.0.0.1 | *@10.0.0.2'",
    note = "Environment (flags > EPMDPXY_CONTROL > EPMDPXY_AT > 127.0.0.1:4370):\n  EPMDPXY_CONTROL=[host:]port  the control port, e.g. 14370 or 127.0.0.1:14370\n  EPMDPXY_AT=HOST[:PORT],...   the --at list, when neither a flag nor\n                               EPMDPXY_CONTROL says where\nA bad value is a usage error (exit 64) that shows the right form."
)]
pub struct CtlArgs {
    /// control port to connect to (default: $EPMDPXY_CONTROL's, else 4370)
    #[argh(option)]
    pub control_port: Option<u16>,

    /// control address to connect to (default: $EPMDPXY_CONTROL's, else 127.0.0.1)
    #[argh(option)]
    pub control_address: Option<String>,

    /// comma-separated HOST:PORT list of proxies (one per host) that each
    /// get every command (default: $EPMDPXY_AT; a missing port is 4370)
    #[argh(option)]
    pub at: Option<String>,

    /// the command words (quote `|` from the shell), or `-` to read one command per line from stdin
    #[argh(positional, greedy)]
    pub words: Vec<String>,
}

/// Options of ours that take a value: the word after them is a value, not
/// a flag, and is never rewritten.
/// A test checks it against the usage line argh prints.
const OPTIONS_WITH_VALUE: &[&str] = &[
    "--port",
    "--control-port",
    "--address",
    "--control-address",
    "--packet-timeout",
    "--listener-timeout",
    "--exempt",
    "--seed",
    "--handshake-timeout",
    "--max-pending-listeners",
    "--max-control-sessions",
];

/// Rewrites `epmd`'s single-dash flags into ours before argh parses the
/// arguments (argh reads `-port` as an unknown flag). `args` excludes the
/// program name. Mapped: `-port N`, `-address LIST`,
/// `-relaxed_command_check`, `-packet_timeout S` (to their `--` forms) and
/// `-d`/`-debug` (to `-v`). epmd flags we do not offer are refused with a
/// message saying why. Nothing after a `--` or the `ctl` subcommand is
/// touched.
pub fn epmd_style_args(args: Vec<String>) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.into_iter();
    while let Some(word) = words.next() {
        let mapped = match word.as_str() {
            "-port" => "--port",
            "-address" => "--address",
            "-relaxed_command_check" => "--relaxed-command-check",
            "-packet_timeout" => "--packet-timeout",
            "-d" | "-debug" => "-v",
            "-daemon" | "-systemd" => {
                return Err(format!(
                    "epmd's {word} is not supported: epmdpxy runs in the foreground; start it \
                     from your shell, test script or service manager, and start nodes with \
                     `-start_epmd false`"
                ))
            }
            "-names" | "-kill" | "-stop" => {
                return Err(format!(
                    "epmd's client command {word} is not part of epmdpxy; OTP's own client works \
                     against it: `epmd -port P {word}`"
                ))
            }
            "-delay_accept" | "-delay_write" => {
                return Err(format!("epmd's debugging option {word} is not supported"))
            }
            "--" | "ctl" => {
                out.push(word);
                out.extend(words);
                break;
            }
            other => {
                let takes_value = OPTIONS_WITH_VALUE.contains(&other);
                out.push(word);
                if takes_value {
                    out.extend(words.next());
                }
                continue;
            }
        };
        let takes_value = OPTIONS_WITH_VALUE.contains(&mapped);
        out.push(mapped.to_owned());
        if takes_value {
            out.extend(words.next());
        }
    }
    Ok(out)
}

/// The daemon's configuration: flags first, then the environment epmd
/// reads (`ERL_EPMD_PORT`, `ERL_EPMD_ADDRESS`,
/// `ERL_EPMD_RELAXED_COMMAND_CHECK`), then the defaults.
pub fn daemon_config(args: &Args) -> Result<Config, String> {
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
        Some(text) if !is_blank_address_list(&text) => Some(parse_addresses(&text)?),
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
    Ok(Config {
        listen: Listen {
            epmd_port,
            control_port: args.control_port,
            addresses,
            control_address,
        },
        epmd: EpmdSettings {
            port: epmd_port,
            relaxed_command_check: args.relaxed_command_check
                || std::env::var_os("ERL_EPMD_RELAXED_COMMAND_CHECK").is_some(),
            packet_timeout: Duration::from_secs(args.packet_timeout),
        },
        proxy: ProxySettings {
            listener_timeout: Duration::from_secs(args.listener_timeout),
            handshake_timeout: Duration::from_secs(args.handshake_timeout),
            max_pending_listeners: args.max_pending_listeners,
            ..ProxySettings::default()
        },
        control: ControlSettings {
            max_sessions: args.max_control_sessions,
        },
        exempt,
        seed: args.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn ctl_reads_stdin_with_a_lone_dash() {
        let fixed = stdin_marker_as_positional(&strings(&["ctl", "--at", "h:1", "-"]));
        assert_eq!(fixed, strings(&["ctl", "--at", "h:1", "--", "-"]));
        let parsed = Args::from_args(
            &["epmdpxy"],
            &fixed.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .expect("parses");
        let Some(Subcommand::Ctl(ctl)) = parsed.command else {
            panic!("not ctl: {parsed:?}");
        };
        assert_eq!(ctl.words, ["-"]);
        assert_eq!(ctl.at.as_deref(), Some("h:1"));
        // Left alone: an explicit `--`, a dash that is not ctl's, words.
        for unchanged in [
            &["ctl", "--", "-"][..],
            &["-v", "--port", "1"],
            &["ctl", "cut", "a", "|", "b"],
        ] {
            assert_eq!(
                stdin_marker_as_positional(&strings(unchanged)),
                strings(unchanged)
            );
        }
    }

    fn rewrite(words: &[&str]) -> Result<Vec<String>, String> {
        epmd_style_args(words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn epmd_spellings_become_ours() {
        assert_eq!(
            rewrite(&["-port", "4369", "-address", "127.0.0.1,::1"]),
            Ok(strings(&["--port", "4369", "--address", "127.0.0.1,::1"]))
        );
        assert_eq!(
            rewrite(&["-relaxed_command_check", "-packet_timeout", "5"]),
            Ok(strings(&[
                "--relaxed-command-check",
                "--packet-timeout",
                "5"
            ]))
        );
        assert_eq!(rewrite(&["-d", "-debug"]), Ok(strings(&["-v", "-v"])));
    }

    #[test]
    fn our_own_spellings_pass_unchanged() {
        let ours = [
            "--port",
            "0",
            "--control-port",
            "0",
            "-v",
            "--relaxed-command-check",
        ];
        assert_eq!(rewrite(&ours), Ok(strings(&ours)));
        assert_eq!(rewrite(&[]), Ok(vec![]));
    }

    #[test]
    fn values_are_never_rewritten() {
        // a value that happens to look like an epmd flag stays a value
        assert_eq!(
            rewrite(&["--address", "-d", "-port", "-d"]),
            Ok(strings(&["--address", "-d", "--port", "-d"]))
        );
        // a missing value is left for argh to report
        assert_eq!(rewrite(&["-port"]), Ok(strings(&["--port"])));
    }

    #[test]
    fn ctl_words_and_after_double_dash_are_untouched() {
        assert_eq!(
            rewrite(&["-d", "ctl", "-port", "-d"]),
            Ok(strings(&["-v", "ctl", "-port", "-d"]))
        );
        assert_eq!(rewrite(&["--", "-port"]), Ok(strings(&["--", "-port"])));
    }

    #[test]
    fn unsupported_epmd_flags_explain_themselves() {
        for flag in [
            "-daemon",
            "-systemd",
            "-names",
            "-kill",
            "-stop",
            "-delay_accept",
        ] {
            let err = rewrite(&[flag]).expect_err(flag);
            assert!(err.contains(flag), "{err}");
        }
        assert!(rewrite(&["-names"])
            .unwrap_err()
            .contains("epmd -port P -names"));
    }

    #[test]
    fn options_with_value_match_the_usage_line() {
        // argh's usage line shows `[--name <name>]` for every option that
        // takes a value and `[--name]` for switches.
        let help = match Args::from_args(&["epmdpxy"], &["--help"]) {
            Err(exit) => exit.output,
            Ok(_) => panic!("--help parsed as arguments"),
        };
        let usage = help.lines().next().unwrap_or_default();
        let mut with_value: Vec<&str> = usage
            .split('[')
            .filter_map(|part| {
                let (name, rest) = part.trim().split_once(' ')?;
                (name.starts_with("--") && rest.starts_with('<')).then_some(name)
            })
            .collect();
        with_value.sort_unstable();
        let mut listed = OPTIONS_WITH_VALUE.to_vec();
        listed.sort_unstable();
        assert_eq!(with_value, listed, "usage: {usage}");
    }

    #[test]
    fn rewritten_epmd_flags_parse() {
        let words = rewrite(&["-port", "4370", "-relaxed_command_check", "-d", "-d"]).unwrap();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let args = Args::from_args(&["epmdpxy"], &refs).expect("parses");
        assert_eq!(args.port, Some(4370));
        assert!(args.relaxed_command_check);
        assert_eq!(args.verbose, 2);
    }
}
