//! One link of the benchmark: the fake node that serves the command
//! protocol of the module doc of `bench.rs`, a client's link setup
//! (`send_name`, then the node's status and challenge), and the
//! measurements made over a link.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::run::Lookup;
use crate::common::fake;
use crate::{CHUNK, IO_TIMEOUT, PING, SPLIT_GAP};
use epmdpxy::proxy::handshake::encode_status_and_challenge_v6;

/// Connects to `port`, sends the `send_name` of `initiator` and reads the
/// node's status and challenge.
pub fn connect_link(port: u16, initiator: &str) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(&fake::send_name(initiator, 1))?;
    read_status_and_challenge(&mut stream)?;
    Ok(stream)
}

/// Reads the `sok` status and the challenge a node answers `send_name`
/// with (the real handshake goes on with challenge_reply and ack; the
/// bench switches to its own commands instead).
fn read_status_and_challenge(stream: &mut TcpStream) -> io::Result<()> {
    let status = fake::read_message(stream)?;
    if status != b"sok" {
        return Err(io::Error::other(format!("status {status:?}")));
    }
    fake::read_message(stream)?;
    Ok(())
}

pub fn command_bytes(tag: u8, argument: u64) -> [u8; 9] {
    let mut bytes = [0u8; 9];
    bytes[0] = tag;
    bytes[1..].copy_from_slice(&argument.to_be_bytes());
    bytes
}

fn gbit_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 * 8.0 / elapsed.as_secs_f64().max(1e-9) / 1e9
}

/// Sends `bytes` to the fake node; timed until its 1-byte answer.
pub fn bulk_up(link: &mut TcpStream, bytes: u64) -> io::Result<f64> {
    let chunk = vec![0x5a_u8; CHUNK];
    let start = Instant::now();
    link.write_all(&command_bytes(b'U', bytes))?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        link.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    let mut answer = [0u8; 1];
    link.read_exact(&mut answer)?;
    Ok(gbit_per_second(bytes, start.elapsed()))
}

/// Has the fake node send `bytes`; timed until the last one arrived.
pub fn bulk_down(link: &mut TcpStream, bytes: u64) -> io::Result<f64> {
    let mut buffer = vec![0u8; CHUNK];
    let start = Instant::now();
    link.write_all(&command_bytes(b'D', bytes))?;
    let mut left = bytes;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = link.read(&mut buffer[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= n as u64;
    }
    Ok(gbit_per_second(bytes, start.elapsed()))
}

/// `count` 64-byte round trips with the fake node's `tag` behaviour
/// (`P` echo, `S` split reply); each reply is checked.
pub fn round_trips(link: &mut TcpStream, tag: u8, count: usize) -> io::Result<Vec<Duration>> {
    link.write_all(&command_bytes(tag, count as u64))?;
    let mut samples = Vec::with_capacity(count);
    let mut ping = [0u8; PING];
    let mut pong = [0u8; PING];
    for sequence in 0..count as u64 {
        ping[..8].copy_from_slice(&sequence.to_be_bytes());
        let start = Instant::now();
        link.write_all(&ping)?;
        link.read_exact(&mut pong)?;
        samples.push(start.elapsed());
        if pong != ping {
            return Err(io::Error::other("reply differs from the ping"));
        }
    }
    Ok(samples)
}

/// Sets up links one after another for up to `budget` or `limit` links:
/// lookup, connect, `send_name`, one byte echoed. Returns how many and the
/// time they took.
pub fn link_setups(
    lookup: &Lookup,
    initiator: &str,
    budget: Duration,
    limit: usize,
) -> io::Result<(u64, Duration)> {
    let mut first_message = fake::send_name(initiator, 1);
    first_message.extend_from_slice(&command_bytes(b'E', 0));
    first_message.push(0x42);
    let mut count = 0;
    let start = Instant::now();
    while count < limit.max(1) as u64 && (count == 0 || start.elapsed() < budget) {
        let port = lookup.resolve()?;
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(&first_message)?;
        read_status_and_challenge(&mut stream)?;
        let mut echoed = [0u8; 1];
        stream.read_exact(&mut echoed)?;
        if echoed[0] != 0x42 {
            return Err(io::Error::other("wrong echo"));
        }
        count += 1;
    }
    Ok((count, start.elapsed()))
}

/// A Rust stand-in for an Erlang node: a listener serving the command
/// protocol of the module doc, one thread per connection.
pub struct FakeNode {
    pub port: u16,
    /// Bytes received by `U` commands, over all connections.
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FakeNode {
    /// Starts a fake node whose challenge carries the full name `name`.
    pub fn start(name: &str) -> FakeNode {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the fake node");
        let port = listener.local_addr().expect("fake node address").port();
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_received, thread_stop) = (Arc::clone(&received), Arc::clone(&stop));
        let name: Arc<str> = Arc::from(name);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (received, name) = (Arc::clone(&thread_received), Arc::clone(&name));
                thread::spawn(move || {
                    let _ = serve(stream, &name, &received);
                });
            }
        });
        FakeNode {
            port,
            received,
            stop,
        }
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the blocked accept
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn serve(mut stream: TcpStream, name: &str, received: &AtomicU64) -> io::Result<()> {
    // Erlang sets TCP_NODELAY on its distribution sockets.
    stream.set_nodelay(true)?;
    fake::read_message(&mut stream)?; // send_name
                                      // As a real node: status `sok`, then the challenge, which names us.
    stream.write_all(&encode_status_and_challenge_v6(
        0x0d_7fbd,
        0x1234_5678,
        1,
        name,
    ))?;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let mut command = [0u8; 9];
        match stream.read_exact(&mut command) {
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        let mut argument_bytes = [0u8; 8];
        argument_bytes.copy_from_slice(&command[1..]);
        let argument = u64::from_be_bytes(argument_bytes);
        match command[0] {
            b'U' => {
                let mut left = argument;
                while left > 0 {
                    let want = left.min(CHUNK as u64) as usize;
                    let n = stream.read(&mut buffer[..want])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    received.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                }
                stream.write_all(&[1])?;
            }
            b'D' => {
                let mut left = argument;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    stream.write_all(&buffer[..n])?;
                    left -= n as u64;
                }
            }
            b'P' => {
                let mut ping = [0u8; PING];
                for _ in 0..argument {
                    stream.read_exact(&mut ping)?;
                    stream.write_all(&ping)?;
                }
            }
            b'S' => {
                let mut ping = [0u8; PING];
                for _ in 0..argument {
                    stream.read_exact(&mut ping)?;
                    stream.write_all(&ping[..PING / 2])?;
                    thread::sleep(SPLIT_GAP);
                    stream.write_all(&ping[PING / 2..])?;
                }
            }
            b'E' => loop {
                let n = stream.read(&mut buffer)?;
                if n == 0 {
                    return Ok(());
                }
                stream.write_all(&buffer[..n])?;
            },
            other => {
                return Err(io::Error::other(format!("unknown command {other}")));
            }
        }
    }
}
