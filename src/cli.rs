//! Command-line arguments (argh): the daemon's flags and the `ctl` client.

use argh::FromArgs;

/// epmdpxy: a drop-in EPMD (Erlang Port Mapper Daemon) that proxies every
/// distribution link, so a text control port can cut and heal network
/// partitions between real Erlang nodes on one machine.
#[derive(FromArgs, Debug)]
#[argh(
    example = "Start it, point nodes at it, then cut from another terminal:\n  {command_name} --port 4369\n  ERL_EPMD_PORT=4369 erl -sname n1 -start_epmd false\n  {command_name} ctl 'cut n1 | n2'",
    note = "Control commands (nc localhost 4370, or `epmdpxy ctl`): cut, fix, heal, status, nodes, links, help, quit.\nEnvironment: ERL_EPMD_PORT (default port), ERL_EPMD_ADDRESS (default addresses),\nERL_EPMD_RELAXED_COMMAND_CHECK (set: as --relaxed-command-check).\nepmd's own spellings work too: -port N, -address LIST, -relaxed_command_check,\n-packet_timeout S, -d/-debug (as -v)."
)]
pub struct Args {
    /// TCP port for EPMD requests (default: $ERL_EPMD_PORT, else 4369; 0 picks a free port)
    #[argh(option)]
    pub port: Option<u16>,

    /// TCP port for the control protocol (default: 4370; 0 picks a free port)
    #[argh(option, default = "4370")]
    pub control_port: u16,

    /// comma-separated addresses for EPMD and the proxy listeners
    /// (default: $ERL_EPMD_ADDRESS, else 127.0.0.1 and ::1; loopback is always served)
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
/// Exits 0 on OK, 1 on ERR, 2 when it cannot connect.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "ctl",
    example = "{command_name} status\n  {command_name} 'cut n1,n2 | n3'\n  {command_name} - < scenario.txt"
)]
pub struct CtlArgs {
    /// control port to connect to (default: 4370)
    #[argh(option, default = "4370")]
    pub control_port: u16,

    /// control address to connect to (default: 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    pub control_address: String,

    /// the command words (quote `|` from the shell), or `-` to read one command per line from stdin
    #[argh(positional, greedy)]
    pub words: Vec<String>,
}

/// Options of ours that take a value: the word after them is a value, not
/// a flag, and is never rewritten.
const OPTIONS_WITH_VALUE: &[&str] = &[
    "--port",
    "--control-port",
    "--address",
    "--control-address",
    "--packet-timeout",
    "--listener-timeout",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(words: &[&str]) -> Result<Vec<String>, String> {
        epmd_style_args(words.iter().map(|w| w.to_string()).collect())
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
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
    fn rewritten_epmd_flags_parse() {
        let words = rewrite(&["-port", "4370", "-relaxed_command_check", "-d", "-d"]).unwrap();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let args = Args::from_args(&["epmdpxy"], &refs).expect("parses");
        assert_eq!(args.port, Some(4370));
        assert!(args.relaxed_command_check);
        assert_eq!(args.verbose, 2);
    }
}
