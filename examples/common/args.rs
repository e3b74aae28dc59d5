//! Option values for the examples' command lines: a bad value is an error that names the
//! option and the value (`--port: invalid value "notanumber" (invalid digit found in
//! string)`), never lexopt's bare `cannot parse argument`.

use std::fmt::Display;
use std::str::FromStr;

use lexopt::{Error, Parser, ValueExt};

/// The value of option `opt` (spelled as on the command line, `--port`) parsed as `T`.
pub fn value<T>(p: &mut Parser, opt: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    let raw = p.value()?;
    let text = raw
        .to_str()
        .ok_or_else(|| format!("{opt}: invalid value {raw:?} (not UTF-8)"))?;
    text.parse()
        .map_err(|e| format!("{opt}: invalid value {text:?} ({e})").into())
}

/// A port number for `opt`: 0 to 65535 (what 0 means is the option's to say).
pub fn port(p: &mut Parser, opt: &str) -> Result<u16, Error> {
    let raw = p.value()?;
    let text = raw.to_string_lossy();
    text.parse()
        .map_err(|_| format!("{opt}: invalid value {text:?} (a port number, 0 to 65535)").into())
}

/// `--loops N`: 1 or more, or -1 for one loop per core; 0 and other negatives are refused.
pub fn loops(p: &mut Parser) -> Result<i64, Error> {
    let n: i64 = value(p, "--loops")?;
    if n == -1 || (1..=1024).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "--loops: invalid value \"{n}\" (a number of loops from 1 to 1024, or -1 for one \
             per core)"
        )
        .into())
    }
}

/// `--proxy-protocol-from NETS`: the comma-separated networks a PROXY protocol header is
/// taken from.
pub fn proxy_protocol(
    p: &mut Parser,
) -> Result<wireloop_middleware::proxy_protocol::ProxyProtocol, Error> {
    let nets = p.value()?.string()?;
    let list: Vec<&str> = nets.split(',').map(str::trim).collect();
    wireloop_middleware::proxy_protocol::ProxyProtocol::new(&list)
        .map_err(|e| format!("--proxy-protocol-from: invalid value {nets:?} ({e})").into())
}

/// `--send-proxy-protocol V`: `v1` or `v2`.
pub fn send_proxy_protocol(
    p: &mut Parser,
) -> Result<wireloop_middleware::proxy_protocol::Version, Error> {
    use wireloop_middleware::proxy_protocol::Version;
    match p.value()?.string()?.as_str() {
        "v1" => Ok(Version::V1),
        "v2" => Ok(Version::V2),
        other => Err(format!("--send-proxy-protocol: invalid value {other:?} (v1 or v2)").into()),
    }
}

/// `--max-connections N`: at least 1.
pub fn max_connections(p: &mut Parser) -> Result<usize, Error> {
    let n: usize = value(p, "--max-connections")?;
    if n == 0 {
        return Err("--max-connections: invalid value \"0\" (at least 1)".into());
    }
    Ok(n)
}
