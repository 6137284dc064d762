//! Reading the initiator's name from the first distribution handshake
//! message (`send_name`). Pure and incremental: feed it everything received
//! so far; it says whether it needs more bytes.
//!
//! The message is a 2-byte length, then either
//! - `n` Version:16 Flags:32 Name (old form), or
//! - `N` Flags:64 Creation:32 Nlen:16 Name (OTP 23+).
//!
//! With the `DFLAG_NAME_ME` flag (dynamic node names) the name is only the
//! host part, and with TLS distribution the bytes are encrypted: the
//! initiator is then unknown and the link is relayed anyway.

use crate::base::bytes::{be16, be64};

/// The flag a node sets when it asks the other side to name it.
pub const DFLAG_NAME_ME: u64 = 1 << 33;

/// Longest first message we wait for; anything longer is not a `send_name`
/// we understand, and the link is relayed with the initiator unknown.
pub const MAX_SEND_NAME: usize = 2048;

/// What the bytes received so far say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendName {
    /// Not a full message yet.
    NeedMore,
    /// The initiator's full node name, e.g. `n1@host`.
    Name(String),
    /// Not a `send_name` we can read (TLS, dynamic name, garbage).
    Unknown,
}

/// The length-prefixed message that starts at `at`: `NeedMore` until all
/// of it has arrived, `Unknown` if its length is 0 or would take the
/// handshake past [`MAX_SEND_NAME`].
fn message_at(received: &[u8], at: usize) -> Result<&[u8], SendName> {
    let rest = received.get(at..).unwrap_or_default();
    let len = usize::from(be16(rest, 0).ok_or(SendName::NeedMore)?);
    if len == 0 || at + 2 + len > MAX_SEND_NAME {
        return Err(SendName::Unknown);
    }
    rest.get(2..2 + len).ok_or(SendName::NeedMore)
}

/// A full node name read from `bytes`, if they hold one.
fn named(bytes: Option<&[u8]>) -> SendName {
    match bytes.and_then(|bytes| std::str::from_utf8(bytes).ok()) {
        Some(name) if valid_node_name(name) => SendName::Name(name.to_owned()),
        _ => SendName::Unknown,
    }
}

/// Parses the first handshake message from the bytes received so far.
pub fn parse_send_name(received: &[u8]) -> SendName {
    let message = match message_at(received, 0) {
        Ok(message) => message,
        Err(not_yet) => return not_yet,
    };
    let name = match message.first() {
        // n Version:16 Flags:32 Name
        Some(b'n') => message.get(7..),
        // N Flags:64 Creation:32 Nlen:16 Name
        Some(b'N') => match (be64(message, 1), be16(message, 13)) {
            (Some(flags), _) if flags & DFLAG_NAME_ME != 0 => None,
            (Some(_), Some(name_len)) => message.get(15..15 + usize::from(name_len)),
            _ => None,
        },
        _ => None,
    };
    named(name)
}

/// Parses the accepting node's first two messages — `send_status`
/// (`s` + status text) and then its challenge, which carries its full name:
/// - `n` Version:16 Flags:32 Challenge:32 Name (old form), or
/// - `N` Flags:64 Challenge:32 Creation:32 Nlen:16 Name (OTP 23+).
///
/// Any status but `ok`, `ok_simultaneous` or `named:` (a dynamic name
/// assigned to the initiator) means no challenge follows.
pub fn parse_challenge(received: &[u8]) -> SendName {
    let status = match message_at(received, 0) {
        Ok(status) => status,
        Err(not_yet) => return not_yet,
    };
    if !status.starts_with(b"sok") && !status.starts_with(NAMED_STATUS) {
        return SendName::Unknown;
    }
    let message = match message_at(received, 2 + status.len()) {
        Ok(message) => message,
        Err(not_yet) => return not_yet,
    };
    let name = match message.first() {
        Some(b'n') => message.get(11..),
        Some(b'N') => be16(message, 17).and_then(|n| message.get(19..19 + usize::from(n))),
        _ => None,
    };
    named(name)
}

/// The status that assigns a dynamic name: `s` `named:` Nlen:16 Name
/// Creation:32 (OTP 23+).
const NAMED_STATUS: &[u8] = b"snamed:";

/// The full name the accepting node assigned the initiator in a `named:`
/// status (the initiator asked for one with `DFLAG_NAME_ME`), if the bytes
/// received so far begin with one.
pub fn parse_assigned(received: &[u8]) -> Option<String> {
    let status = message_at(received, 0).ok()?;
    let rest = status.strip_prefix(NAMED_STATUS)?;
    let len = usize::from(be16(rest, 0)?);
    match named(rest.get(2..2 + len)) {
        SendName::Name(name) => Some(name),
        _ => None,
    }
}

/// Encodes a `named:` status (used by tests that play a node).
pub fn encode_named_status(name: &str, creation: u32) -> Vec<u8> {
    let mut body = NAMED_STATUS.to_vec();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&creation.to_be_bytes());
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// `alive@host`, both parts non-empty and printable.
fn valid_node_name(name: &str) -> bool {
    match name.split_once('@') {
        Some((alive, host)) => {
            !alive.is_empty()
                && !host.is_empty()
                && name.chars().all(|c| !c.is_control() && c != ' ')
        }
        None => false,
    }
}

/// Encodes an OTP 23+ `send_name` message (used by tests and benchmarks
/// that play a node).
pub fn encode_send_name_v6(flags: u64, creation: u32, name: &str) -> Vec<u8> {
    let mut body = vec![b'N'];
    body.extend_from_slice(&flags.to_be_bytes());
    body.extend_from_slice(&creation.to_be_bytes());
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Encodes the old `send_name` message (`n` form).
pub fn encode_send_name_v5(version: u16, flags: u32, name: &str) -> Vec<u8> {
    let mut body = vec![b'n'];
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&flags.to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Encodes `send_status` + an OTP 23+ challenge (tests and fake nodes).
pub fn encode_status_and_challenge_v6(
    flags: u64,
    challenge: u32,
    creation: u32,
    name: &str,
) -> Vec<u8> {
    let mut out = vec![0, 3, b's', b'o', b'k'];
    let mut body = vec![b'N'];
    body.extend_from_slice(&flags.to_be_bytes());
    body.extend_from_slice(&challenge.to_be_bytes());
    body.extend_from_slice(&creation.to_be_bytes());
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_whole_and_split() {
        let msg = encode_status_and_challenge_v6(0x0d_7fbd, 42, 7, "n2@host");
        assert_eq!(parse_challenge(&msg), SendName::Name("n2@host".into()));
        for cut in 0..msg.len() {
            assert_eq!(
                parse_challenge(&msg[..cut]),
                SendName::NeedMore,
                "prefix {cut}"
            );
        }
        // old form: n Version:16 Flags:32 Challenge:32 Name
        let mut old = vec![0, 3, b's', b'o', b'k'];
        let mut body = vec![b'n', 0, 5, 0, 0, 0x7f, 0xbd, 1, 2, 3, 4];
        body.extend_from_slice(b"old@h");
        old.extend_from_slice(&(body.len() as u16).to_be_bytes());
        old.extend_from_slice(&body);
        assert_eq!(parse_challenge(&old), SendName::Name("old@h".into()));
        // refused handshakes carry no name
        assert_eq!(
            parse_challenge(&[0, 4, b's', b'n', b'o', b'k']),
            SendName::Unknown
        );
        assert_eq!(parse_challenge(&[0x16, 0x03, 0, 0]), SendName::Unknown);
    }

    #[test]
    fn new_form_whole_and_split() {
        let msg = encode_send_name_v6(0x0d_7fbd, 1234, "n1@host");
        assert_eq!(parse_send_name(&msg), SendName::Name("n1@host".into()));
        for cut in 0..msg.len() {
            assert_eq!(
                parse_send_name(&msg[..cut]),
                SendName::NeedMore,
                "prefix {cut}"
            );
        }
        // bytes after the message (the next one) do not matter
        let mut more = msg.clone();
        more.extend_from_slice(b"rest");
        assert_eq!(parse_send_name(&more), SendName::Name("n1@host".into()));
    }

    #[test]
    fn old_form() {
        let msg = encode_send_name_v5(5, 0x7fbd, "old@h");
        assert_eq!(parse_send_name(&msg), SendName::Name("old@h".into()));
        for cut in 0..msg.len() {
            assert_eq!(parse_send_name(&msg[..cut]), SendName::NeedMore);
        }
    }

    #[test]
    fn unknown_initiators() {
        // dynamic node name: only the host is sent
        let dynamic = encode_send_name_v6(DFLAG_NAME_ME, 0, "host");
        assert_eq!(parse_send_name(&dynamic), SendName::Unknown);
        // TLS ClientHello starts 0x16 0x03: a length too big to be ours
        assert_eq!(
            parse_send_name(&[0x16, 0x03, 0x01, 0x02]),
            SendName::Unknown
        );
        assert_eq!(parse_send_name(&[0, 0]), SendName::Unknown);
        assert_eq!(parse_send_name(&[0, 3, b'x', 1, 2]), SendName::Unknown);
        // name length past the message
        let mut lying = encode_send_name_v6(0, 0, "n1@h");
        let last = lying.len() - 5;
        lying[last - 1] = 0xff;
        assert_eq!(parse_send_name(&lying), SendName::Unknown);
        // no '@', empty parts, not UTF-8
        for name in ["n1", "@h", "n1@", "a b@h"] {
            assert_eq!(
                parse_send_name(&encode_send_name_v6(0, 0, name)),
                SendName::Unknown,
                "{name}"
            );
        }
        let mut bad = encode_send_name_v5(5, 0, "ab@h");
        let n = bad.len();
        bad[n - 1] = 0xff;
        assert_eq!(parse_send_name(&bad), SendName::Unknown);
    }

    #[test]
    fn a_named_status_assigns_the_initiator_its_name() {
        let status = encode_named_status("k2@host", 7);
        let challenge = encode_status_and_challenge_v6(0, 1, 2, "n2@host");
        // The challenge that follows a `named:` status is read as after `ok`.
        let ok_len = 2 + usize::from(u16::from_be_bytes([challenge[0], challenge[1]]));
        let mut both = status.clone();
        both.extend_from_slice(&challenge[ok_len..]);
        assert_eq!(parse_assigned(&both), Some("k2@host".to_owned()));
        assert_eq!(parse_challenge(&both), SendName::Name("n2@host".into()));
        assert_eq!(parse_assigned(&status[..status.len() - 1]), None);
        assert_eq!(
            parse_assigned(&challenge),
            None,
            "an ok status assigns nothing"
        );
        assert_eq!(parse_assigned(&encode_named_status("nohost", 1)), None);
    }
}
