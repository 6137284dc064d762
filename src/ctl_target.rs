//! Where `epmdpxy ctl` connects: one control port or a `--at` list, from
//! the flags, else `$EPMDPXY_CONTROL` (`[host:]port`), else `$EPMDPXY_AT`
//! (`HOST[:PORT],...`), else 127.0.0.1:4370. A bad value is a usage
//! error that shows the right form; nothing is sent then.

use std::net::Ipv6Addr;

use crate::cli::CtlArgs;

/// The environment variable read when `--at` is not given.
pub const AT_ENV: &str = "EPMDPXY_AT";

/// The environment variable giving the one control port to use when no
/// flag says where: `[host:]port`.
pub const CONTROL_ENV: &str = "EPMDPXY_CONTROL";

/// The control port assumed when an address has none.
pub const DEFAULT_CONTROL_PORT: u16 = 4370;

/// The control address of the single-target form.
pub const DEFAULT_CONTROL_ADDRESS: &str = "127.0.0.1";

/// The form of `--at` and `$EPMDPXY_AT`, for usage errors.
const AT_FORM: &str = "HOST[:PORT][,HOST[:PORT]...], e.g. 10.0.0.1:4370,10.0.0.2";

/// The form of `$EPMDPXY_CONTROL`, for usage errors.
const CONTROL_FORM: &str = "[host:]port, e.g. 14370 or 127.0.0.1:14370 or [::1]:14370";

/// Where the commands go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One proxy: host and control port.
    One(String, u16),
    /// Several (`--at`): every command goes to each.
    Many(Vec<Endpoint>),
}

/// Where `args` say to connect, with `env` reading the environment:
/// `--at`; else one proxy, its host and port each from its flag
/// (`--control-address`, `--control-port`), else from `$EPMDPXY_CONTROL`;
/// with neither flag nor `$EPMDPXY_CONTROL`, `$EPMDPXY_AT`; else
/// 127.0.0.1:4370. `Err` is a usage error.
pub fn target(args: &CtlArgs, env: impl Fn(&str) -> Option<String>) -> Result<Target, String> {
    let single_given = args.control_address.is_some() || args.control_port.is_some();
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    if let Some(at) = &args.at {
        if single_given {
            return Err(
                "give either --at or --control-address/--control-port, not both".to_owned(),
            );
        }
        return parse_at(at)
            .map(Target::Many)
            .map_err(|why| format!("--at: {why}; the form is {AT_FORM}"));
    }
    let control =
        match set(CONTROL_ENV) {
            None => None,
            Some(text) => Some(parse_control(&text).map_err(|why| {
                format!("{CONTROL_ENV}='{text}': {why}; the form is {CONTROL_FORM}")
            })?),
        };
    if single_given || control.is_some() {
        let (env_host, env_port) = control.unzip();
        let host = args.control_address.clone().or(env_host);
        return Ok(Target::One(
            host.unwrap_or_else(|| DEFAULT_CONTROL_ADDRESS.to_owned()),
            args.control_port
                .or(env_port)
                .unwrap_or(DEFAULT_CONTROL_PORT),
        ));
    }
    match set(AT_ENV) {
        Some(at) => parse_at(&at)
            .map(Target::Many)
            .map_err(|why| format!("{AT_ENV}='{at}': {why}; the form is {AT_FORM}")),
        None => Ok(Target::One(
            DEFAULT_CONTROL_ADDRESS.to_owned(),
            DEFAULT_CONTROL_PORT,
        )),
    }
}

/// `14370`, `127.0.0.1:14370`, `[::1]:14370`, `myhost:14370`: one control
/// port's host and port; the host defaults to 127.0.0.1, the port must
/// be given.
pub fn parse_control(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    let (host, port) = if text.bytes().all(|b| b.is_ascii_digit()) {
        (DEFAULT_CONTROL_ADDRESS, Some(text))
    } else {
        split_host_port(text)?
    };
    let Some(port) = port else {
        return Err("no port".to_owned());
    };
    Ok((host.to_owned(), parse_port(port)?))
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
    let (host, port) = split_host_port(item)?;
    let port = match port {
        None => DEFAULT_CONTROL_PORT,
        Some(port) => parse_port(port).map_err(|why| format!("bad address '{item}': {why}"))?,
    };
    Ok(Endpoint {
        label: item.to_owned(),
        host: host.to_owned(),
        port,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn split_host_port(item: &str) -> Result<(&str, Option<&str>), String> {
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
    Ok((host, port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err("the port must be 1..65535".to_owned()),
    }
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

    fn one(host: &str, port: u16) -> Target {
        Target::One(host.to_owned(), port)
    }

    #[test]
    fn control_addresses() {
        let pair = |host: &str, port: u16| Ok((host.to_owned(), port));
        assert_eq!(parse_control("14370"), pair("127.0.0.1", 14370));
        assert_eq!(parse_control(" 10.0.0.1:5 "), pair("10.0.0.1", 5));
        assert_eq!(parse_control("[::1]:14370"), pair("::1", 14370));
        assert_eq!(parse_control("myhost:4370"), pair("myhost", 4370));
        for bad in [
            "0", "70000", "myhost", "::1", "[::1]", "h:", ":4370", "h:x", "a b:1",
        ] {
            assert!(parse_control(bad).is_err(), "{bad:?}");
        }
    }

    fn args(at: Option<&str>, address: Option<&str>, port: Option<u16>) -> CtlArgs {
        CtlArgs {
            control_port: port,
            control_address: address.map(str::to_owned),
            at: at.map(str::to_owned),
            words: vec!["status".to_owned()],
        }
    }

    /// Flags, then EPMDPXY_CONTROL, then EPMDPXY_AT, then the default.
    #[test]
    fn flags_then_control_then_at_then_the_default() {
        let both = |name: &str| match name {
            CONTROL_ENV => Some("10.0.0.9:14370".to_owned()),
            AT_ENV => Some("h1,h2".to_owned()),
            _ => None,
        };
        let at_only = |name: &str| (name == AT_ENV).then(|| "h1".to_owned());
        let nothing = |_: &str| None;
        let blank = |_: &str| Some(" ".to_owned());
        let bare = args(None, None, None);
        // Each flag beats its part of EPMDPXY_CONTROL.
        assert_eq!(
            target(&args(None, None, Some(5)), both),
            Ok(one("10.0.0.9", 5))
        );
        assert_eq!(
            target(&args(None, Some("::1"), None), both),
            Ok(one("::1", 14370))
        );
        assert_eq!(
            target(&args(None, Some("::1"), None), at_only),
            Ok(one("::1", 4370))
        );
        assert_eq!(
            target(&args(Some("h3"), None, None), both),
            Ok(Target::Many(vec![endpoint("h3", "h3", 4370)]))
        );
        assert_eq!(target(&bare, both), Ok(one("10.0.0.9", 14370)));
        assert_eq!(
            target(&bare, at_only),
            Ok(Target::Many(vec![endpoint("h1", "h1", 4370)]))
        );
        assert_eq!(target(&bare, nothing), Ok(one("127.0.0.1", 4370)));
        assert_eq!(target(&bare, blank), Ok(one("127.0.0.1", 4370)));
        assert!(target(&args(Some("h"), None, Some(1)), nothing).is_err());
        let bad = |_: &str| Some("localhost".to_owned());
        let why = target(&bare, bad).expect_err("no port");
        assert!(why.contains("[host:]port"), "{why}");
        // --at does not look at the environment at all.
        assert_eq!(
            target(&args(Some("h3"), None, None), bad),
            Ok(Target::Many(vec![endpoint("h3", "h3", 4370)]))
        );
    }
}
