//! EPMD wire formats: pure functions that parse requests and encode replies.
//!
//! A request is a 2-byte big-endian length `L` followed by `L` bytes whose
//! first byte is the tag. Replies carry no length prefix. Nothing here
//! touches a socket; every function is total (no panics on any input).

use crate::base::bytes::be16;

/// Largest request body OTP's epmd accepts (`L`); `L` = 0 or larger → close.
pub const MAX_REQUEST_LEN: usize = 3057;
/// Longest node name (bytes) a registration may carry.
pub const MAX_NAME_BYTES: usize = 1020;
/// Longest node name in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest `extra` field a registration may carry.
pub const MAX_EXTRA_BYTES: usize = 1020;

pub const TAG_ALIVE2_REQ: u8 = b'x'; // 120
pub const TAG_PORT_PLEASE2_REQ: u8 = b'z'; // 122
pub const TAG_NAMES_REQ: u8 = b'n'; // 110
pub const TAG_DUMP_REQ: u8 = b'd'; // 100
pub const TAG_KILL_REQ: u8 = b'k'; // 107
pub const TAG_STOP_REQ: u8 = b's'; // 115
pub const TAG_ALIVE2_RESP: u8 = b'y'; // 121
pub const TAG_ALIVE2_X_RESP: u8 = b'v'; // 118
pub const TAG_PORT2_RESP: u8 = b'w'; // 119

/// Node type of a normal (visible) node.
pub const NODE_TYPE_NORMAL: u8 = 77;
/// Node type of a hidden node.
pub const NODE_TYPE_HIDDEN: u8 = 72;

/// Creation value OTP's epmd puts in an ALIVE2 error reply.
pub const ERROR_CREATION: u32 = 99;

/// Everything a node tells EPMD when it registers (ALIVE2_REQ), and what
/// PORT2_RESP hands back to whoever looks the node up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub port: u16,
    pub node_type: u8,
    pub protocol: u8,
    pub highest_version: u16,
    pub lowest_version: u16,
    /// Raw name bytes as sent; not checked for UTF-8 here.
    pub name: Vec<u8>,
    pub extra: Vec<u8>,
}

impl NodeInfo {
    /// The name as text (lossy: only valid names are ever registered).
    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A well-formed EPMD request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Alive2(NodeInfo),
    PortPlease2 { name: String },
    Names,
    Dump,
    Kill,
    Stop { name: Vec<u8> },
}

/// Why a request was refused. OTP's epmd answers all of these by closing
/// the connection without a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    Empty,
    UnknownTag(u8),
    TooShort,
    LengthMismatch,
    NulInName,
    BadName,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::Empty => write!(f, "empty request"),
            Malformed::UnknownTag(tag) => write!(f, "unknown request tag {tag}"),
            Malformed::TooShort => write!(f, "request too short"),
            Malformed::LengthMismatch => write!(f, "lengths disagree with the packet"),
            Malformed::NulInName => write!(f, "NUL byte inside a name"),
            Malformed::BadName => write!(f, "name empty, too long or not UTF-8"),
        }
    }
}

/// What the 2-byte length prefix says about the request that follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Read this many body bytes next.
    Body(usize),
    /// `L` = 0 or `L` > [`MAX_REQUEST_LEN`]: close without a reply.
    Reject,
}

/// Interprets the 2-byte length prefix of a request.
pub fn framing(prefix: [u8; 2]) -> Framing {
    let len = usize::from(u16::from_be_bytes(prefix));
    if len == 0 || len > MAX_REQUEST_LEN {
        Framing::Reject
    } else {
        Framing::Body(len)
    }
}

/// "normal" / "hidden" / the raw number, for logs and `nodes`.
pub fn node_type_label(node_type: u8) -> String {
    match node_type {
        NODE_TYPE_NORMAL => "normal".to_owned(),
        NODE_TYPE_HIDDEN => "hidden".to_owned(),
        other => other.to_string(),
    }
}

/// Parses a request body (the `L` bytes after the length prefix).
pub fn parse_request(body: &[u8]) -> Result<Request, Malformed> {
    let (&tag, rest) = body.split_first().ok_or(Malformed::Empty)?;
    match tag {
        TAG_ALIVE2_REQ => parse_alive2(body).map(Request::Alive2),
        TAG_PORT_PLEASE2_REQ => parse_port_please2(rest).map(|name| Request::PortPlease2 { name }),
        TAG_NAMES_REQ => Ok(Request::Names),
        TAG_DUMP_REQ => Ok(Request::Dump),
        TAG_KILL_REQ => Ok(Request::Kill),
        TAG_STOP_REQ => {
            // epmd wants at least one byte after the tag, then reads the
            // name as a C string: it ends at the first NUL (`s\0x` asks
            // for the empty name, which is never registered).
            if rest.is_empty() {
                return Err(Malformed::TooShort);
            }
            let name: Vec<u8> = rest.iter().copied().take_while(|&b| b != 0).collect();
            Ok(Request::Stop { name })
        }
        other => Err(Malformed::UnknownTag(other)),
    }
}

/// ALIVE2_REQ body, tag included:
/// `x PortNo:16 NodeType:8 Protocol:8 HighVsn:16 LowVsn:16 Nlen:16 Name Elen:16 Extra`.
fn parse_alive2(body: &[u8]) -> Result<NodeInfo, Malformed> {
    // 13 bytes is the fixed part with an empty name; epmd wants more.
    const FIXED: usize = 13;
    if body.len() <= FIXED {
        return Err(Malformed::TooShort);
    }
    let field = |at| be16(body, at).ok_or(Malformed::TooShort);
    let port = field(1)?;
    let node_type = *body.get(3).ok_or(Malformed::TooShort)?;
    let protocol = *body.get(4).ok_or(Malformed::TooShort)?;
    let highest_version = field(5)?;
    let lowest_version = field(7)?;
    let name_len = usize::from(field(9)?);
    if name_len + FIXED > body.len() {
        return Err(Malformed::LengthMismatch);
    }
    let name = body
        .get(11..11 + name_len)
        .ok_or(Malformed::LengthMismatch)?;
    let extra_len = usize::from(field(11 + name_len)?);
    if extra_len + name_len + FIXED > body.len() {
        return Err(Malformed::LengthMismatch);
    }
    let extra_at = 13 + name_len;
    let extra = body
        .get(extra_at..extra_at + extra_len)
        .ok_or(Malformed::LengthMismatch)?;
    if name.contains(&0) {
        return Err(Malformed::NulInName);
    }
    // An empty name (possible from 14 bytes on) is well-formed here; the
    // registration refuses it (see `check_registration`).
    Ok(NodeInfo {
        port,
        node_type,
        protocol,
        highest_version,
        lowest_version,
        name: name.to_vec(),
        extra: extra.to_vec(),
    })
}

/// PORT_PLEASE2_REQ name: one trailing NUL is dropped; it must then be
/// non-empty UTF-8 of 1..=255 characters with no NUL inside.
fn parse_port_please2(raw: &[u8]) -> Result<String, Malformed> {
    let name = raw.strip_suffix(&[0]).unwrap_or(raw);
    if name.contains(&0) {
        return Err(Malformed::NulInName);
    }
    let name = std::str::from_utf8(name).map_err(|_| Malformed::BadName)?;
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(Malformed::BadName);
    }
    Ok(name.to_owned())
}

/// Why a well-formed registration is refused with an error reply (result 1,
/// creation 99), keeping the socket open as epmd does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// OTP 25.2.3 registers the empty name (nobody can look it up, as
    /// PORT2 refuses empty names); we refuse it. A knowing difference.
    EmptyName,
    NameTooLong,
    NameNotUtf8,
    ExtraTooLong,
    AlreadyRegistered,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::EmptyName => "empty name",
            Refusal::NameTooLong => "name too long",
            Refusal::NameNotUtf8 => "name not UTF-8",
            Refusal::ExtraTooLong => "extra field too long",
            Refusal::AlreadyRegistered => "name already registered",
        })
    }
}

/// The size and encoding checks epmd makes on a registration before it
/// looks at the registry.
pub fn check_registration(info: &NodeInfo) -> Result<(), Refusal> {
    if info.name.is_empty() {
        return Err(Refusal::EmptyName);
    }
    if info.name.len() > MAX_NAME_BYTES {
        return Err(Refusal::NameTooLong);
    }
    let name = std::str::from_utf8(&info.name).map_err(|_| Refusal::NameNotUtf8)?;
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Refusal::NameTooLong);
    }
    if info.extra.len() > MAX_EXTRA_BYTES {
        return Err(Refusal::ExtraTooLong);
    }
    Ok(())
}

/// Nodes announcing a highest version of 6 or more get the 32-bit reply.
pub fn wants_extended_reply(highest_version: u16) -> bool {
    highest_version >= 6
}

/// ALIVE2_X_RESP (`v`, 32-bit creation) or ALIVE2_RESP (`y`, 16-bit).
pub fn encode_alive2_reply(extended: bool, result: u8, creation: u32) -> Vec<u8> {
    if extended {
        let mut out = vec![TAG_ALIVE2_X_RESP, result];
        out.extend_from_slice(&creation.to_be_bytes());
        out
    } else {
        let mut out = vec![TAG_ALIVE2_RESP, result];
        out.extend_from_slice(&(creation as u16).to_be_bytes());
        out
    }
}

/// PORT2_RESP for a name that is not registered.
pub fn encode_port2_not_found() -> Vec<u8> {
    vec![TAG_PORT2_RESP, 1]
}

/// PORT2_RESP for a registered node, with `port` in place of its own
/// (the proxy listener's port); every other field is the registration's.
pub fn encode_port2_found(info: &NodeInfo, port: u16) -> Vec<u8> {
    let mut out = vec![TAG_PORT2_RESP, 0];
    encode_node_fields(&mut out, info, port);
    out
}

/// The fields ALIVE2_REQ and PORT2_RESP share: `PortNo:16 NodeType:8
/// Protocol:8 HighVsn:16 LowVsn:16 Nlen:16 Name Elen:16 Extra`.
fn encode_node_fields(out: &mut Vec<u8>, info: &NodeInfo, port: u16) {
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&[info.node_type, info.protocol]);
    out.extend_from_slice(&info.highest_version.to_be_bytes());
    out.extend_from_slice(&info.lowest_version.to_be_bytes());
    // Both lengths fit: registration caps them at 1020 bytes.
    out.extend_from_slice(&(info.name.len() as u16).to_be_bytes());
    out.extend_from_slice(&info.name);
    out.extend_from_slice(&(info.extra.len() as u16).to_be_bytes());
    out.extend_from_slice(&info.extra);
}

/// NAMES_RESP: our EPMD port as 4 bytes, then one line per node
/// (`(name, real port)`, newest registration first).
pub fn encode_names_reply<'a>(
    epmd_port: u16,
    nodes: impl IntoIterator<Item = (&'a str, u16)>,
) -> Vec<u8> {
    let mut out = u32::from(epmd_port).to_be_bytes().to_vec();
    for (name, port) in nodes {
        out.extend_from_slice(format!("name {name} at port {port}\n").as_bytes());
    }
    out
}

/// One entry of a DUMP reply.
pub enum DumpEntry<'a> {
    Active { name: &'a str, port: u16, fd: i32 },
    Old { name: &'a str, port: u16, fd: i32 },
}

/// DUMP_RESP: our EPMD port as 4 bytes, then a NUL-terminated line per
/// entry, in the exact text OTP's epmd writes.
pub fn encode_dump_reply<'a>(
    epmd_port: u16,
    entries: impl IntoIterator<Item = DumpEntry<'a>>,
) -> Vec<u8> {
    let mut out = u32::from(epmd_port).to_be_bytes().to_vec();
    for entry in entries {
        let line = match entry {
            DumpEntry::Active { name, port, fd } => {
                format!("active name     <{name}> at port {port}, fd = {fd}\n")
            }
            DumpEntry::Old { name, port, fd } => {
                format!("old/unused name <{name}>, port = {port}, fd = {fd} \n")
            }
        };
        out.extend_from_slice(line.as_bytes());
        out.push(0);
    }
    out
}

/// Encodes a request with its length prefix (used by tests and `ctl`).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Encodes an ALIVE2_REQ body (tag included).
pub fn encode_alive2_request(info: &NodeInfo) -> Vec<u8> {
    let mut out = vec![TAG_ALIVE2_REQ];
    encode_node_fields(&mut out, info, info.port);
    out
}

/// Parses a PORT2_RESP; `None` if incomplete or malformed, `Some(None)`
/// for "not found".
pub fn parse_port2_reply(bytes: &[u8]) -> Option<Option<NodeInfo>> {
    if bytes.first() != Some(&TAG_PORT2_RESP) {
        return None;
    }
    match bytes.get(1)? {
        0 => {}
        _ => return Some(None),
    }
    let name_len = usize::from(be16(bytes, 10)?);
    let name = bytes.get(12..12 + name_len)?;
    let extra_len = usize::from(be16(bytes, 12 + name_len)?);
    let extra = bytes.get(14 + name_len..14 + name_len + extra_len)?;
    Some(Some(NodeInfo {
        port: be16(bytes, 2)?,
        node_type: *bytes.get(4)?,
        protocol: *bytes.get(5)?,
        highest_version: be16(bytes, 6)?,
        lowest_version: be16(bytes, 8)?,
        name: name.to_vec(),
        extra: extra.to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeInfo {
        NodeInfo {
            port: 40_000,
            node_type: NODE_TYPE_NORMAL,
            protocol: 0,
            highest_version: 6,
            lowest_version: 6,
            name: name.as_bytes().to_vec(),
            extra: vec![],
        }
    }

    #[test]
    fn framing_limits() {
        assert_eq!(framing([0, 0]), Framing::Reject);
        assert_eq!(framing([0, 1]), Framing::Body(1));
        assert_eq!(framing(3057u16.to_be_bytes()), Framing::Body(3057));
        assert_eq!(framing(3058u16.to_be_bytes()), Framing::Reject);
        assert_eq!(framing([0xff, 0xff]), Framing::Reject);
    }

    #[test]
    fn alive2_round_trip() {
        let mut info = node("n1");
        info.extra = b"xyz".to_vec();
        info.node_type = NODE_TYPE_HIDDEN;
        let body = encode_alive2_request(&info);
        assert_eq!(parse_request(&body), Ok(Request::Alive2(info)));
    }

    #[test]
    fn alive2_malformed() {
        let body = encode_alive2_request(&node("n1"));
        // every truncation is refused, never a panic
        for cut in 0..body.len() {
            assert!(parse_request(&body[..cut]).is_err(), "prefix {cut}");
        }
        // name length larger than the packet
        let mut long = body.clone();
        long[10] = 50;
        assert_eq!(parse_request(&long), Err(Malformed::LengthMismatch));
        // extra length larger than the packet
        let mut extra = body.clone();
        let n = extra.len();
        extra[n - 1] = 9;
        assert_eq!(parse_request(&extra), Err(Malformed::LengthMismatch));
        // NUL inside the name
        assert_eq!(
            parse_request(&encode_alive2_request(&node("a\0b"))),
            Err(Malformed::NulInName)
        );
        // the empty name in a 14-byte packet parses; the registration
        // refuses it (OTP 25.2.3 registers it; we do not)
        let mut empty = encode_alive2_request(&node(""));
        empty.push(0);
        match parse_request(&empty) {
            Ok(Request::Alive2(info)) => {
                assert_eq!(check_registration(&info), Err(Refusal::EmptyName))
            }
            other => panic!("14-byte empty-name ALIVE2 gave {other:?}"),
        }
        // 13 bytes: epmd wants more than the fixed part
        assert_eq!(
            parse_request(&encode_alive2_request(&node(""))),
            Err(Malformed::TooShort)
        );
        // trailing bytes after extra are tolerated, as in epmd
        let mut trailing = body.clone();
        trailing.push(7);
        assert!(parse_request(&trailing).is_ok());
    }

    #[test]
    fn registration_checks() {
        assert_eq!(check_registration(&node("n1")), Ok(()));
        assert_eq!(check_registration(&node(&"a".repeat(255))), Ok(()));
        assert_eq!(
            check_registration(&node(&"a".repeat(256))),
            Err(Refusal::NameTooLong)
        );
        assert_eq!(check_registration(&node(&"é".repeat(255))), Ok(()));
        assert_eq!(
            check_registration(&node(&"a".repeat(1021))),
            Err(Refusal::NameTooLong)
        );
        let mut bad = node("x");
        bad.name = vec![0xff, 0xfe];
        assert_eq!(check_registration(&bad), Err(Refusal::NameNotUtf8));
        let mut extra = node("x");
        extra.extra = vec![1; 1021];
        assert_eq!(check_registration(&extra), Err(Refusal::ExtraTooLong));
    }

    #[test]
    fn port_please2_names() {
        let req = |b: &[u8]| parse_request(&[&[TAG_PORT_PLEASE2_REQ][..], b].concat());
        assert_eq!(req(b"n1"), Ok(Request::PortPlease2 { name: "n1".into() }));
        assert_eq!(req(b"n1\0"), Ok(Request::PortPlease2 { name: "n1".into() }));
        assert_eq!(req(b""), Err(Malformed::BadName));
        assert_eq!(req(b"\0"), Err(Malformed::BadName));
        assert_eq!(req(b"n1\0\0"), Err(Malformed::NulInName));
        assert_eq!(req(b"a\0b"), Err(Malformed::NulInName));
        assert_eq!(req(&[0xff]), Err(Malformed::BadName));
        assert!(req("a".repeat(255).as_bytes()).is_ok());
        assert_eq!(req("a".repeat(256).as_bytes()), Err(Malformed::BadName));
    }

    #[test]
    fn other_requests() {
        assert_eq!(parse_request(&[]), Err(Malformed::Empty));
        assert_eq!(parse_request(b"n"), Ok(Request::Names));
        assert_eq!(parse_request(b"nxx"), Ok(Request::Names));
        assert_eq!(parse_request(b"d"), Ok(Request::Dump));
        assert_eq!(parse_request(b"k"), Ok(Request::Kill));
        assert_eq!(
            parse_request(b"sfoo"),
            Ok(Request::Stop {
                name: b"foo".to_vec()
            })
        );
        assert_eq!(
            parse_request(b"sfoo\0bar"),
            Ok(Request::Stop {
                name: b"foo".to_vec()
            })
        );
        assert_eq!(parse_request(b"s"), Err(Malformed::TooShort));
        assert_eq!(
            parse_request(b"s\0x"),
            Ok(Request::Stop { name: Vec::new() })
        );
        assert_eq!(parse_request(b"Q"), Err(Malformed::UnknownTag(b'Q')));
    }

    #[test]
    fn alive2_replies() {
        assert_eq!(
            encode_alive2_reply(true, 0, 0x0102_0304),
            vec![118, 0, 1, 2, 3, 4]
        );
        assert_eq!(encode_alive2_reply(false, 0, 3), vec![121, 0, 0, 3]);
        assert_eq!(
            encode_alive2_reply(true, 1, ERROR_CREATION),
            vec![118, 1, 0, 0, 0, 99]
        );
        assert!(wants_extended_reply(6));
        assert!(!wants_extended_reply(5));
    }

    #[test]
    fn port2_reply_round_trip() {
        let mut info = node("n1");
        info.extra = vec![9, 8];
        let bytes = encode_port2_found(&info, 5555);
        assert_eq!(&bytes[..4], &[119, 0, 0x15, 0xb3]);
        let mut expected = info.clone();
        expected.port = 5555;
        assert_eq!(parse_port2_reply(&bytes), Some(Some(expected)));
        assert_eq!(parse_port2_reply(&encode_port2_not_found()), Some(None));
        for cut in 0..bytes.len() {
            assert_eq!(parse_port2_reply(&bytes[..cut]), None, "prefix {cut}");
        }
    }

    #[test]
    fn names_and_dump_text() {
        let names = encode_names_reply(4369, [("b", 2), ("a", 1)]);
        assert_eq!(&names[..4], &[0, 0, 0x11, 0x11]);
        assert_eq!(&names[4..], b"name b at port 2\nname a at port 1\n");
        let dump = encode_dump_reply(
            4369,
            [
                DumpEntry::Active {
                    name: "a",
                    port: 1,
                    fd: 7,
                },
                DumpEntry::Old {
                    name: "b",
                    port: 2,
                    fd: 8,
                },
            ],
        );
        assert_eq!(
            &dump[4..],
            &b"active name     <a> at port 1, fd = 7\n\0old/unused name <b>, port = 2, fd = 8 \n\0"
                [..]
        );
    }
}
