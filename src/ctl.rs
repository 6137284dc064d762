//! `epmdpxy ctl`: a client that sends control commands and prints the
//! answers, for scripts. Exit codes: 0 all OK, 1 an ERR, 2 cannot connect.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::control::command::{END, MULTI_LINE_COMMANDS};

/// A connected control session.
pub struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    /// Connects to `host:port`.
    pub fn connect(host: &str, port: u16) -> io::Result<Session> {
        let addresses: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {host}"));
        for address in addresses {
            match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
                Ok(stream) => {
                    let writer = stream.try_clone()?;
                    return Ok(Session {
                        reader: BufReader::new(stream),
                        writer,
                    });
                }
                Err(err) => last = err,
            }
        }
        Err(last)
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

    /// Sends `watch` and prints every line until the stream ends.
    /// Returns the exit code.
    pub fn watch(&mut self, command: &str) -> i32 {
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
                print_line(&line);
                return 1;
            }
            first = false;
            if !print_line(&line) {
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
/// unlike `println!`).
fn print_line(line: &str) -> bool {
    writeln!(io::stdout().lock(), "{line}").is_ok()
}

/// Runs `epmdpxy ctl`. Returns the process exit code.
pub fn run(host: &str, port: u16, words: &[String]) -> i32 {
    let commands: Vec<String> = if words == ["-"] {
        io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    } else if words.is_empty() {
        eprintln!("epmdpxy ctl: no command given (try: epmdpxy ctl help)");
        return 2;
    } else {
        vec![words.join(" ")]
    };
    let mut session = match Session::connect(host, port) {
        Ok(session) => session,
        Err(err) => {
            eprintln!("epmdpxy ctl: cannot connect to the control port {host}:{port}: {err}");
            return 2;
        }
    };
    for command in commands {
        if command
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("watch"))
        {
            return session.watch(&command);
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
