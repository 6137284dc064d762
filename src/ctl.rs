//! `epmdpxy ctl`: a client that sends control commands and prints the
//! answers, for scripts. Exit codes: 0 all OK, 1 an ERR, 2 cannot connect,
//! 64 a usage error (no command, a bad flag or environment value: nothing
//! was sent). Where it connects is `ctl_target.rs`.
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
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::base::net::connect_first;
use crate::cli::USAGE_ERROR;
use crate::cli::{ctl_usage, CtlArgs};
use crate::control::command::{END, MULTI_LINE_COMMANDS};
use crate::ctl_target::{target, Endpoint, Target};

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

/// Runs `epmdpxy ctl` as the arguments say, connecting where
/// [`target`] says. Returns the process exit code.
pub fn main(args: &CtlArgs) -> i32 {
    if args.words.is_empty() {
        eprintln!("epmdpxy ctl: no command given (try: epmdpxy ctl help)");
        eprintln!("{}", ctl_usage());
        return USAGE_ERROR;
    }
    match target(args, |name| std::env::var(name).ok()) {
        Ok(Target::One(host, port)) => run(&host, port, &args.words),
        Ok(Target::Many(endpoints)) => run_many(&endpoints, &args.words),
        Err(why) => {
            eprintln!("epmdpxy ctl: {why}");
            USAGE_ERROR
        }
    }
}

/// The commands to send: the words as one command, or with `-` one per
/// line of stdin (blank lines and `#` comments skipped).
fn commands(words: &[String]) -> Vec<String> {
    if words == ["-"] {
        io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    } else {
        vec![words.join(" ")]
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
    let commands = commands(words);
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
    let commands = commands(words);
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
