//! Control sessions: the acceptor (at most `--max-control-sessions` at
//! once), a line reader that bounds every line, and the session loop —
//! parse, dispatch, answer — which turns into an event stream after
//! `watch`, or a stream of matrices after `watch matrix`. Bad input gets
//! `ERR <why>`; the session goes on.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::command::{self, Command};
use super::reply::Reply;
use super::room::Control;
use super::{dispatch, report};
use crate::base::net::accept_forever;
use crate::base::sync::spawn;
use crate::events::{Event, Next};
use crate::{log_info, log_warn};

/// Longest command line accepted, in bytes, without its `\n` or `\r\n`.
pub const MAX_LINE: usize = 4096;

/// Accepts control sessions forever, one thread each.
pub fn accept_loop(control: &Arc<Control>, listener: &TcpListener) {
    accept_forever(listener, "control", |mut stream| {
        if !control.open_session() {
            let _ = stream.write_all(b"ERR too many control sessions\n");
            return;
        }
        let session_control = Arc::clone(control);
        let spawned = spawn("control", move || {
            session(&session_control, stream);
            session_control.close_session();
        });
        if let Err(err) = spawned {
            control.close_session();
            log_warn!("control: cannot start a session thread: {err}");
        }
    });
}

/// Reads lines of at most [`MAX_LINE`] bytes from a stream.
struct LineReader {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Skipping the rest of an over-long line.
    discarding: bool,
}

enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

impl LineReader {
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            if let Some(at) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=at).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                // The whole line counts, not only what was buffered before
                // its newline arrived in the same read.
                if std::mem::take(&mut self.discarding) || line.len() > MAX_LINE {
                    return Ok(Some(Line::TooLong));
                }
                return Ok(Some(match String::from_utf8(line) {
                    Ok(text) => Line::Text(text),
                    Err(_) => Line::NotUtf8,
                }));
            }
            // No newline yet: past MAX_LINE (plus a possible '\r') the line
            // is too long whatever follows, so stop keeping its bytes.
            if self.buffer.len() > MAX_LINE + 1 {
                self.buffer.clear();
                self.discarding = true;
            }
            let mut chunk = [0u8; 1024];
            let n = match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            self.buffer
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

/// One session: reads command lines, answers each, until `quit`, `watch`
/// or the client goes.
fn session(control: &Arc<Control>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut lines = LineReader {
        stream,
        buffer: Vec::new(),
        discarding: false,
    };
    log_info!("control: session from {peer} opened");
    while let Ok(Some(line)) = lines.next_line() {
        let (reply, multi_line) = match line {
            Line::TooLong => (
                Reply::err(format!("line too long (max {MAX_LINE} bytes)")),
                false,
            ),
            Line::NotUtf8 => (Reply::err("line is not UTF-8"), false),
            Line::Text(text) if text.trim().is_empty() => continue,
            Line::Text(text) => match command::parse(&text) {
                Ok(Command::Quit) => {
                    let _ = out.write_all(Reply::ok("bye").render(false).as_bytes());
                    break;
                }
                Ok(command @ (Command::Watch | Command::WatchMatrix)) => {
                    let stream = match command {
                        Command::WatchMatrix => Stream::Matrix,
                        _ => Stream::Events,
                    };
                    watch(control, stream, lines, out);
                    log_info!("control: session from {peer} closed after {command}");
                    return;
                }
                Ok(command) => {
                    log_info!("control: {peer}: {}", text.trim());
                    (dispatch::run(control, &command), command.multi_line())
                }
                Err(why) => (Reply::err(why), false),
            },
        };
        if out.write_all(reply.render(multi_line).as_bytes()).is_err() {
            break;
        }
    }
    log_info!("control: session from {peer} closed");
}

/// What a watching session streams.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// `watch`: every event.
    Events,
    /// `watch matrix`: the matrix, and again after each event that may
    /// change it (the events, then the new matrix).
    Matrix,
}

/// The events after which `watch matrix` draws the matrix again.
fn changes_matrix(event: &Event) -> bool {
    matches!(
        event,
        Event::FaultApplied { .. }
            | Event::FaultRemoved { .. }
            | Event::ExemptChanged { .. }
            | Event::NodeUp { .. }
            | Event::NodeDown { .. }
    )
}

/// The `matrix` answer, as sent.
fn matrix_text(control: &Control) -> String {
    report::matrix(control).render(true)
}

/// Turns the session into a stream until `quit` or disconnect. A helper
/// thread reads the session's input, so `quit` is seen while the stream
/// is waiting for events.
fn watch(control: &Control, stream: Stream, mut lines: LineReader, mut out: TcpStream) {
    // Subscribed before the first matrix is drawn, so that no change
    // falls between the two.
    let (watcher, opening) = match stream {
        Stream::Events => (
            control.events.subscribe(),
            "OK watching (type quit to stop)\n".to_owned(),
        ),
        Stream::Matrix => (
            control.events.subscribe_to(changes_matrix),
            format!(
                "OK watching the matrix (type quit to stop)\n{}",
                matrix_text(control)
            ),
        ),
    };
    if out.write_all(opening.as_bytes()).is_err() {
        watcher.close();
        return;
    }
    let input_watcher = Arc::clone(&watcher);
    let reader = spawn("control-watch", move || {
        loop {
            match lines.next_line() {
                Ok(Some(Line::Text(text))) if text.trim().eq_ignore_ascii_case("quit") => break,
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
        input_watcher.close();
    });
    if reader.is_err() {
        watcher.close();
        let _ = out.write_all(b"ERR no thread to read the session; watch ended\n");
        return;
    }
    loop {
        match watcher.next(Duration::from_secs(1)) {
            Next::Lines(events) => {
                let mut text = events.join("\n");
                text.push('\n');
                if stream == Stream::Matrix {
                    text.push_str(&matrix_text(control));
                }
                if out.write_all(text.as_bytes()).is_err() {
                    break;
                }
            }
            Next::Idle => continue,
            Next::Closed => {
                let _ = out.write_all(b"OK bye\n");
                break;
            }
        }
    }
    watcher.close();
    let _ = out.shutdown(std::net::Shutdown::Both);
}
