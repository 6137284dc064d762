//! Command-line arguments (argh): the daemon's flags and the `ctl` client.

use argh::FromArgs;

/// epmdpxy: a drop-in EPMD (Erlang Port Mapper Daemon) that proxies every
/// distribution link, so a text control port can cut and heal network
/// partitions between real Erlang nodes on one machine.
#[derive(FromArgs, Debug)]
#[argh(
    example = "Start it, point nodes at it, then cut from another terminal:\n  {command_name} --port 4369\n  ERL_EPMD_PORT=4369 erl -sname n1 -start_epmd false\n  {command_name} ctl 'cut n1 | n2'",
    note = "Control commands (nc localhost 4370, or `epmdpxy ctl`): cut, fix, heal, status, nodes, links, help, quit.\nEnvironment: ERL_EPMD_PORT (default port), ERL_EPMD_ADDRESS (default addresses),\nERL_EPMD_RELAXED_COMMAND_CHECK (set: as --relaxed-command-check)."
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
