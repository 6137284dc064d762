//! `epmdpxy ctl`: a client that sends control commands and prints the
//! answers, for scripts. Exit codes: 0 all OK, 1 an ERR, 2 cannot connect.
//!
//! With `--at HOST:PORT[,HOST:PORT...]` (or `$EPMDPXY_AT`) it talks to
//! several proxies — one per host of a cluster — and sends every command to
//! all of them at once, so a cluster-wide fault is one command. It connects
//! to every proxy before sending anything: if one cannot be reached, no
//! proxy gets the command (a fault applied to only part of the cluster is
//! worse than none). Each answer line is printed prefixed by the address as
//! written, in the order listed. The exit code is the worst of all: 2 if a
//! proxy could not be reached or dropped the session, else 1 if one
//! answered `ERR`, else 0.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::base::net::connect_first;
use crate::cli::CtlArgs;
use crate::control::command::{END, MULTI_LINE_COMMANDS};

/// The environment variable read when `--at` is not given.
pub const AT_ENV: &str = "EPMDPXY_AT";

/// The control port assumed when an address has none.
pub const DEFAULT_CONTROL_PORT: u16 = 4370;

/// The control address of the single-target form.
pub const DEFAULT_CONTROL_ADDRESS: &str = "127.0.0.1";

/// A connected control session.
pub struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    /// Connects to `host:port`.
    pub fn connect(host: &str, port: u16) -> io::Result<Session> {
        let addresses: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        if addresses.is_empty() {
            let why = format!("cannot resolve {host}");
            return Err(io::Error::new(io::ErrorKind::NotFound, why));
        }
        let stream = connect_first(&addresses, Duration::from_secs(5))?;
        let writer = stream.try_clone()?;
        Ok(Session {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one command and reads its whole answer.
    pub fn send(&mut self, command: &str) -> io::Result<Vec<String>> {
        self.writer.write_all(format!("{command}\n").as_bytes())?;
        let mut lines = vec![self.read_line()?];
        let word = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let multi = MULTI_LINE_COMMANDS.contains(&word.as_str())
            && lines.first().is_some_and(|l| l.starts_with("OK"));
        while multi && lines.last().is_some_and(|line| line != END) {
            lines.push(self.read_line()?);
        }
        Ok(lines)
    }

    /// Sends `watch` and prints every line, after `prefix`, until the
    /// stream ends. Returns the exit code.
    pub fn watch(&mut self, command: &str, prefix: &str) -> i32 {
        if self
            .writer
            .write_all(format!("{command}\n").as_bytes())
            .is_err()
        {
            return 2;
        }
        let mut first = true;
        while let Ok(line) = self.read_line() {
            if first && line.starts_with("ERR") {
                print_line(&format!("{prefix}{line}"));
                return 1;
            }
            first = false;
            if !print_line(&format!("{prefix}{line}")) {
                return 0; // nobody reads our output any more
            }
        }
        0
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the control port closed the session",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Prints a line on stdout; false once stdout is closed (never panics,
/// unlike `println!`, so `epmdpxy ctl watch | head` ends cleanly).
fn print_line(line: &str) -> bool {
    writeln!(io::stdout().lock(), "{line}").is_ok()
}

/// Runs `work` on every item at once, one scoped thread each; the results
/// come back in the items' order (a thread that panicked gives an error).
fn on_each<I, T, R>(items: I, work: impl Fn(T) -> io::Result<R> + Sync) -> Vec<io::Result<R>>
where
    I: IntoIterator<Item = T>,
    T: Send,
    R: Send,
{
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("worker thread failed")))
            })
            .collect()
    })
}

/// One proxy of a `--at` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// As the user wrote it; prefixes every line of its answers.
    pub label: String,
    pub host: String,
    pub port: u16,
}

/// Parses `HOST[:PORT][,HOST[:PORT]...]`. A missing port is 4370; IPv6
/// addresses are written `[::1]:4370` (or bare, `::1`, for port 4370).
pub fn parse_at(text: &str) -> Result<Vec<Endpoint>, String> {
    let endpoints = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(parse_endpoint)
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Err("no address given".to_owned());
    }
    Ok(endpoints)
}

fn parse_endpoint(item: &str) -> Result<Endpoint, String> {
    let bad = |why: &str| format!("bad address '{item}': {why}");
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad("expected ':PORT' after ']'")),
            },
        }
    } else if item.parse::<Ipv6Addr>().is_ok() {
        (item, None)
    } else {
        match item.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (item, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad("no host"));
    }
    let port = match port {
        None => DEFAULT_CONTROL_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(bad("the port must be 1..65535")),
        },
    };
    Ok(Endpoint {
        label: item.to_owned(),
        host: host.to_owned(),
        port,
    })
}

/// Runs `epmdpxy ctl` as the arguments say: `--at` (several proxies), else
/// `--control-address`/`--control-port` (one), else `$EPMDPXY_AT`, else
/// 127.0.0.1:4370. Returns the process exit code.
pub fn main(args: &CtlArgs) -> i32 {
    let single_given = args.control_address.is_some() || args.control_port.is_some();
    let at = match (&args.at, single_given) {
        (Some(_), true) => {
            eprintln!(
                "epmdpxy ctl: give either --at or --control-address/--control-port, not both"
            );
            return 2;
        }
        (Some(at), false) => Some(at.clone()),
        (None, true) => None,
        (None, false) => std::env::var(AT_ENV)
            .ok()
            .filter(|value| !value.trim().is_empty()),
    };
    match at {
        Some(text) => match parse_at(&text) {
            Ok(endpoints) => run_many(&endpoints, &args.words),
            Err(why) => {
                eprintln!("epmdpxy ctl: {why}");
                2
            }
        },
        None => run(
            args.control_address
                .as_deref()
                .unwrap_or(DEFAULT_CONTROL_ADDRESS),
            args.control_port.unwrap_or(DEFAULT_CONTROL_PORT),
            &args.words,
        ),
    }
}

/// The commands to send: the words as one command, or with `-` one per
/// line of stdin (blank lines and `#` comments skipped). `None` (after a
/// message) when there is none.
fn commands(words: &[String]) -> Option<Vec<String>> {
    if words == ["-"] {
        Some(
            io::stdin()
                .lock()
                .lines()
                .map_while(Result::ok)
                .map(|line| line.trim().to_owned())
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .collect(),
        )
    } else if words.is_empty() {
        eprintln!("epmdpxy ctl: no command given (try: epmdpxy ctl help)");
        None
    } else {
        Some(vec![words.join(" ")])
    }
}

fn is_watch(command: &str) -> bool {
    command
        .split_whitespace()
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("watch"))
}

/// Runs `epmdpxy ctl` against one proxy. Returns the process exit code.
pub fn run(host: &str, port: u16, words: &[String]) -> i32 {
    let Some(commands) = commands(words) else {
        return 2;
    };
    let mut session = match Session::connect(host, port) {
        Ok(session) => session,
        Err(err) => {
            eprintln!("epmdpxy ctl: cannot connect to the control port {host}:{port}: {err}");
            return 2;
        }
    };
    for command in commands {
        if is_watch(&command) {
            return session.watch(&command, "");
        }
        match session.send(&command) {
            Ok(lines) => {
                for line in &lines {
                    print_line(line);
                }
                if lines.first().is_some_and(|line| line.starts_with("ERR")) {
                    return 1;
                }
            }
            Err(err) => {
                eprintln!("epmdpxy ctl: {command}: {err}");
                return 2;
            }
        }
    }
    0
}

/// Runs `epmdpxy ctl` against every proxy in `endpoints`: each command goes
/// to all of them at once; the next command only after every answer is in.
/// Stops after a command that failed anywhere. Returns the exit code.
pub fn run_many(endpoints: &[Endpoint], words: &[String]) -> i32 {
    let Some(commands) = commands(words) else {
        return 2;
    };
    let connected: Vec<io::Result<Session>> = on_each(endpoints.iter(), |endpoint| {
        Session::connect(&endpoint.host, endpoint.port)
    });
    let mut sessions = Vec::with_capacity(endpoints.len());
    let mut unreachable = false;
    for (endpoint, session) in endpoints.iter().zip(connected) {
        match session {
            Ok(session) => sessions.push(session),
            Err(err) => {
                unreachable = true;
                eprintln!(
                    "{}: epmdpxy ctl: cannot connect to the control port: {err}",
                    endpoint.label
                );
            }
        }
    }
    if unreachable {
        eprintln!("epmdpxy ctl: nothing was sent to any proxy");
        return 2;
    }
    for command in commands {
        if is_watch(&command) {
            return watch_many(endpoints, &mut sessions, &command);
        }
        let answers: Vec<io::Result<Vec<String>>> =
            on_each(sessions.iter_mut(), |session| session.send(&command));
        let mut code = 0;
        for (endpoint, answer) in endpoints.iter().zip(answers) {
            match answer {
                Ok(lines) => {
                    for line in &lines {
                        print_line(&format!("{}: {line}", endpoint.label));
                    }
                    if lines.first().is_some_and(|line| line.starts_with("ERR")) {
                        code = code.max(1);
                    }
                }
                Err(err) => {
                    eprintln!("{}: epmdpxy ctl: {command}: {err}", endpoint.label);
                    code = 2;
                }
            }
        }
        if code != 0 {
            return code;
        }
    }
    0
}

/// `watch` on every proxy at once, lines prefixed, until every stream ends.
fn watch_many(endpoints: &[Endpoint], sessions: &mut [Session], command: &str) -> i32 {
    std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .iter_mut()
            .zip(endpoints)
            .map(|(session, endpoint)| {
                scope.spawn(move || session.watch(command, &format!("{}: ", endpoint.label)))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or(2))
            .max()
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(label: &str, host: &str, port: u16) -> Endpoint {
        Endpoint {
            label: label.to_owned(),
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn at_lists() {
        assert_eq!(
            parse_at("10.0.0.1:4370, 10.0.0.2:14370,host-3"),
            Ok(vec![
                endpoint("10.0.0.1:4370", "10.0.0.1", 4370),
                endpoint("10.0.0.2:14370", "10.0.0.2", 14370),
                endpoint("host-3", "host-3", 4370),
            ])
        );
        assert_eq!(
            parse_at("[::1]:5000,[fe80::1],::1,"),
            Ok(vec![
                endpoint("[::1]:5000", "::1", 5000),
                endpoint("[fe80::1]", "fe80::1", 4370),
                endpoint("::1", "::1", 4370),
            ])
        );
    }

    #[test]
    fn bad_at_lists() {
        for bad in [
            "", " , ", ":4370", "h:0", "h:99999", "h:port", "h:", "[::1", "[::1]x", "[]:4370",
            "a b:4370", "h:1:2",
        ] {
            assert!(parse_at(bad).is_err(), "{bad:?}");
        }
    }
}
