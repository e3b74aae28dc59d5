//! Listen and dial addresses: `scheme://host:port?opt=val&opt=val`.
//!
//! Accepted forms:
//!
//! * `tcp://127.0.0.1:80`, `tcp4://localhost:80`, `tcp6://[::1]:80`, and the same with
//!   `udp`, `udp4` and `udp6`. The scheme is case-insensitive.
//! * `127.0.0.1:5000`, `localhost:80`, `[::1]:80`: no `://` means `tcp`.
//! * `unix:///abs/path.sock` and `unix://relative.sock`.
//! * Options after `?`, `&`-separated `key=value`. The only known option is
//!   `reuseport=true|false|1|0` (inet addresses only).
//!
//! IPv6 literals must be written in brackets, the port is required for inet addresses
//! (`0` means "any port"), and whitespace is never allowed.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// Longest address text accepted, in bytes.
const MAX_ADDR_LEN: usize = 4096;
/// Longest host name accepted, in bytes.
const MAX_HOST_LEN: usize = 253;
/// Longest label (dot-separated part) of a host name, in bytes.
const MAX_LABEL_LEN: usize = 63;
/// Longest unix socket path accepted, in bytes (`sun_path` is 108 bytes with the NUL).
const MAX_UNIX_PATH_LEN: usize = 107;
/// How much of a rejected address [`AddrError`]'s `Display` shows, in bytes.
const MAX_SHOWN_LEN: usize = 128;

/// Transport named by an address's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `tcp`: TCP over IPv4 or IPv6.
    Tcp,
    /// `tcp4`: TCP over IPv4 only.
    Tcp4,
    /// `tcp6`: TCP over IPv6 only.
    Tcp6,
    /// `udp`: UDP over IPv4 or IPv6.
    Udp,
    /// `udp4`: UDP over IPv4 only.
    Udp4,
    /// `udp6`: UDP over IPv6 only.
    Udp6,
    /// `unix`: a unix domain stream socket.
    Unix,
}

impl Scheme {
    const ALL: [Scheme; 7] = [
        Scheme::Tcp,
        Scheme::Tcp4,
        Scheme::Tcp6,
        Scheme::Udp,
        Scheme::Udp4,
        Scheme::Udp6,
        Scheme::Unix,
    ];

    /// The scheme as written in canonical addresses: `"tcp"`, `"tcp4"`, ..., `"unix"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Tcp => "tcp",
            Scheme::Tcp4 => "tcp4",
            Scheme::Tcp6 => "tcp6",
            Scheme::Udp => "udp",
            Scheme::Udp4 => "udp4",
            Scheme::Udp6 => "udp6",
            Scheme::Unix => "unix",
        }
    }

    /// True for `udp`, `udp4` and `udp6`.
    pub fn is_udp(self) -> bool {
        matches!(self, Scheme::Udp | Scheme::Udp4 | Scheme::Udp6)
    }

    /// True for `unix`.
    pub fn is_unix(self) -> bool {
        self == Scheme::Unix
    }

    /// True for `tcp`, `tcp4` and `tcp6`.
    pub fn is_tcp(self) -> bool {
        matches!(self, Scheme::Tcp | Scheme::Tcp4 | Scheme::Tcp6)
    }

    /// Whether the scheme is restricted to IPv4 (`Some(true)`), to IPv6 (`Some(false)`),
    /// or allows both (`None`).
    fn ipv4_only(self) -> Option<bool> {
        match self {
            Scheme::Tcp4 | Scheme::Udp4 => Some(true),
            Scheme::Tcp6 | Scheme::Udp6 => Some(false),
            Scheme::Tcp | Scheme::Udp | Scheme::Unix => None,
        }
    }

    fn from_name(name: &str) -> Option<Scheme> {
        Scheme::ALL
            .iter()
            .copied()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// Host part of an inet address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 literal (`127.0.0.1`) or a bracketed IPv6 literal (`[::1]`).
    Ip(IpAddr),
    /// A host name to resolve, validated and lower-cased (`localhost`).
    Name(String),
}

/// Where an address points.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A host and port, for the tcp and udp schemes.
    Inet {
        /// The host: an IP literal or a name.
        host: Host,
        /// The port; `0` means "any port" when listening.
        port: u16,
    },
    /// A unix socket path, absolute or relative, for the `unix` scheme.
    Unix(PathBuf),
}

/// A parsed address: `scheme://host:port?opt=val&opt=val`.
///
/// Equality and hashing ignore the original text ([`Addr::as_str`]): `localhost:80` and
/// `tcp://LOCALHOST:80?reuseport=false` are equal.
#[derive(Clone, Debug)]
pub struct Addr {
    text: String,
    scheme: Scheme,
    target: Target,
    reuseport: bool,
}

impl Addr {
    /// Parse an address; see the [module documentation](self) for the accepted forms.
    pub fn parse(s: &str) -> Result<Addr, AddrError> {
        parse(s).map_err(|reason| AddrError {
            address: s.to_owned(),
            reason,
        })
    }

    /// The transport named by the scheme (`tcp` when the address had none).
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Where the address points: a host and port, or a unix socket path.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether `reuseport=true` (or `=1`) was given.
    pub fn reuseport(&self) -> bool {
        self.reuseport
    }

    /// The text the address was parsed from, as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Resolve an inet target to socket addresses with std's resolver (blocking; for listen
    /// addresses at start-up), keeping only the family the scheme allows (tcp4/udp4: IPv4,
    /// tcp6/udp6: IPv6). Unix targets -> error InvalidInput. No address left -> error naming
    /// the address.
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let (host, port) = match &self.target {
            Target::Inet { host, port } => (host, *port),
            Target::Unix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot resolve {self}: not an inet address"),
                ))
            }
        };
        let found: Vec<SocketAddr> = match host {
            Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            Host::Name(name) => (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {self}: {e}")))?
                .collect(),
        };
        let wanted = self.scheme.ipv4_only();
        let kept: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match wanted {
                Some(v4) => a.is_ipv4() == v4,
                None => true,
            })
            .collect();
        if kept.is_empty() {
            let family = match wanted {
                Some(true) => "IPv4 ",
                Some(false) => "IPv6 ",
                None => "",
            };
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("cannot resolve {self}: no {family}address found"),
            ));
        }
        Ok(kept)
    }
}

impl PartialEq for Addr {
    fn eq(&self, other: &Addr) -> bool {
        self.scheme == other.scheme
            && self.target == other.target
            && self.reuseport == other.reuseport
    }
}

impl Eq for Addr {}

impl Hash for Addr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scheme.hash(state);
        self.target.hash(state);
        self.reuseport.hash(state);
    }
}

impl FromStr for Addr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Addr, AddrError> {
        Addr::parse(s)
    }
}

impl fmt::Display for Addr {
    /// The canonical form: `tcp://127.0.0.1:80`, `tcp6://[::1]:80?reuseport=true`,
    /// `unix:///tmp/a.sock`. Parsing it gives back an equal address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.target {
            Target::Inet { host, port } => {
                match host {
                    Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
                    Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
                    Host::Name(name) => f.write_str(name)?,
                }
                write!(f, ":{port}")?;
            }
            Target::Unix(path) => write!(f, "{}", path.display())?,
        }
        if self.reuseport {
            f.write_str("?reuseport=true")?;
        }
        Ok(())
    }
}

/// Why an address was rejected; Display names the address, e.g.
/// `bad address "tcp://x:99999": port out of range`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrError {
    address: String,
    reason: String,
}

impl AddrError {
    /// The rejected text, as given.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Why it was rejected, e.g. `port out of range`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match truncate(&self.address, MAX_SHOWN_LEN) {
            (shown, false) => write!(f, "bad address {shown:?}: {}", self.reason),
            (shown, true) => write!(
                f,
                "bad address {shown:?}... ({} bytes): {}",
                self.address.len(),
                self.reason
            ),
        }
    }
}

impl std::error::Error for AddrError {}

/// Longest piece of input quoted in an error reason, in bytes.
const MAX_QUOTED_LEN: usize = 40;

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary, and
/// whether anything was cut.
fn truncate(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s.get(..end).unwrap_or_default(), true)
}

/// A piece of input quoted in an error reason: Debug-escaped, and cut short if long.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match truncate(self.0, MAX_QUOTED_LEN) {
            (s, false) => write!(f, "{s:?}"),
            (s, true) => write!(f, "{s:?}..."),
        }
    }
}

/// The whole parse; the error is the reason only, [`Addr::parse`] adds the text.
fn parse(s: &str) -> Result<Addr, String> {
    if s.len() > MAX_ADDR_LEN {
        return Err(format!("address longer than {MAX_ADDR_LEN} bytes"));
    }
    if s.is_empty() {
        return Err("empty address".into());
    }
    if s.chars().any(char::is_whitespace) {
        return Err("whitespace is not allowed".into());
    }

    let (scheme, rest) = match s.split_once("://") {
        Some((name, rest)) => {
            if name.is_empty() {
                return Err("missing scheme before \"://\"".into());
            }
            let scheme = Scheme::from_name(name).ok_or_else(|| {
                format!(
                    "unknown scheme {} (expected tcp, tcp4, tcp6, udp, udp4, udp6 or unix)",
                    Quoted(name)
                )
            })?;
            (scheme, rest)
        }
        None => {
            // `tcp:80` is host "tcp", port 80; `unix:/tmp/a.sock` or `tcp:/x:1` is a
            // scheme missing its "//".
            if let Some((name, rest)) = s.split_once(':') {
                if let Some(scheme) = Scheme::from_name(name) {
                    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!(
                            "expected \"{}://\" after the scheme",
                            scheme.as_str()
                        ));
                    }
                }
            }
            (Scheme::Tcp, s)
        }
    };

    let (body, query) = match rest.split_once('?') {
        Some((body, query)) => (body, Some(query)),
        None => (rest, None),
    };

    let reuseport = match query {
        Some(q) => parse_options(q)?,
        None => None,
    };

    let target = if scheme.is_unix() {
        if reuseport.is_some() {
            return Err("option \"reuseport\" is not supported for unix addresses".into());
        }
        Target::Unix(parse_unix_path(body)?)
    } else {
        let (host, port) = parse_host_port(body)?;
        if let (Host::Ip(ip), Some(v4)) = (&host, scheme.ipv4_only()) {
            if ip.is_ipv4() != v4 {
                let (have, want) = if v4 {
                    ("IPv6", "IPv4")
                } else {
                    ("IPv4", "IPv6")
                };
                return Err(format!(
                    "{have} address with {want}-only scheme {:?}",
                    scheme.as_str()
                ));
            }
        }
        Target::Inet { host, port }
    };

    Ok(Addr {
        text: s.to_owned(),
        scheme,
        target,
        reuseport: reuseport.unwrap_or(false),
    })
}

/// Parse `key=value&key=value`; returns the `reuseport` value if it was given.
fn parse_options(query: &str) -> Result<Option<bool>, String> {
    let mut reuseport = None;
    for opt in query.split('&') {
        if opt.is_empty() {
            return Err("empty option after '?' or '&'".into());
        }
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| format!("option {} is missing '=value'", Quoted(opt)))?;
        if key.is_empty() {
            return Err(format!("option {} has an empty name", Quoted(opt)));
        }
        match key {
            "reuseport" => {
                if reuseport.is_some() {
                    return Err(format!("duplicate option {}", Quoted(key)));
                }
                reuseport = Some(match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(format!(
                            "invalid value {} for option {} (expected true, false, 1 or 0)",
                            Quoted(value),
                            Quoted(key)
                        ))
                    }
                });
            }
            _ => return Err(format!("unknown option {}", Quoted(key))),
        }
    }
    Ok(reuseport)
}

fn parse_unix_path(path: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err("empty unix socket path".into());
    }
    if path.starts_with('@') {
        return Err("abstract unix socket names are not supported".into());
    }
    if path.contains('\0') {
        return Err("unix socket path contains a NUL byte".into());
    }
    if path.len() > MAX_UNIX_PATH_LEN {
        return Err(format!(
            "unix socket path longer than {MAX_UNIX_PATH_LEN} bytes"
        ));
    }
    Ok(PathBuf::from(path))
}

fn parse_host_port(body: &str) -> Result<(Host, u16), String> {
    let (host, port) = if let Some(inner) = body.strip_prefix('[') {
        let (ip, after) = inner
            .split_once(']')
            .ok_or("missing ']' after IPv6 address")?;
        if ip.is_empty() {
            return Err("empty host".into());
        }
        if ip.contains('%') {
            return Err("IPv6 zone ids (\"%eth0\") are not supported".into());
        }
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("invalid IPv6 address {}", Quoted(ip)))?;
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => return Err("missing port".into()),
            None => {
                return Err(format!(
                    "unexpected {} after ']' (expected ':port')",
                    Quoted(after)
                ))
            }
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        if body.matches(':').count() > 1 {
            return Err("IPv6 addresses must be in brackets, e.g. [::1]:80".into());
        }
        let (host, port) = body.split_once(':').ok_or("missing port")?;
        (parse_host(host)?, port)
    };
    Ok((host, parse_port(port)?))
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err("missing port".into());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid port {} (expected decimal digits)",
            Quoted(port)
        ));
    }
    // All digits: the only possible failure left is overflow.
    port.parse().map_err(|_| "port out of range".into())
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.starts_with('[') || host.ends_with(']') {
        return Err("unbalanced brackets in host".into());
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match host.parse::<Ipv4Addr>() {
            Ok(ip) => Ok(Host::Ip(IpAddr::V4(ip))),
            Err(_) => Err(format!("invalid IPv4 address {}", Quoted(host))),
        };
    }
    if host.len() > MAX_HOST_LEN {
        return Err(format!("host name longer than {MAX_HOST_LEN} bytes"));
    }
    if let Some(c) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(format!("invalid character {c:?} in host name"));
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(format!("empty label in host name {}", Quoted(host)));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "label longer than {MAX_LABEL_LEN} bytes in host name"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "label {} in host name starts or ends with '-'",
                Quoted(label)
            ));
        }
    }
    Ok(Host::Name(host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::Scheme::*;
    use super::*;

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().expect("test IP literal"))
    }

    fn name(s: &str) -> Host {
        Host::Name(s.to_owned())
    }

    /// Parse, check the parts, and check that the canonical form parses back to an equal
    /// address whose canonical form is itself.
    fn check_ok(input: &str, scheme: Scheme, target: Target, reuseport: bool) -> Addr {
        let a = Addr::parse(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
        assert_eq!(a.scheme(), scheme, "scheme of {input:?}");
        assert_eq!(a.target(), &target, "target of {input:?}");
        assert_eq!(a.reuseport(), reuseport, "reuseport of {input:?}");
        assert_eq!(a.as_str(), input);
        let canon = a.to_string();
        let b = Addr::parse(&canon).unwrap_or_else(|e| panic!("canonical {canon:?} rejected: {e}"));
        assert_eq!(a, b, "{input:?} -> {canon:?}");
        assert_eq!(b.to_string(), canon);
        assert_eq!(input.parse::<Addr>().as_ref(), Ok(&a));
        a
    }

    fn check_err(input: &str, reason: &str) {
        match Addr::parse(input) {
            Ok(a) => panic!("{input:?} accepted as {a}, expected error {reason:?}"),
            Err(e) => {
                assert!(
                    e.reason().contains(reason),
                    "{input:?}: reason {:?} does not contain {reason:?}",
                    e.reason()
                );
                assert_eq!(e.address(), input);
                let shown = e.to_string();
                assert!(shown.starts_with("bad address \""), "{shown}");
                assert!(shown.ends_with(e.reason()), "{shown}");
            }
        }
    }

    /// `ok!(test_name, "text" => Scheme, Inet(host, port), reuseport bool);`
    /// `ok!(test_name, "text" => Unix, Unix("path"), reuseport false);`
    macro_rules! ok {
        ($test:ident, $s:expr => $scheme:ident, Inet($host:expr, $port:expr), reuseport $r:expr) => {
            #[test]
            fn $test() {
                check_ok(
                    $s,
                    $scheme,
                    Target::Inet {
                        host: $host,
                        port: $port,
                    },
                    $r,
                );
            }
        };
        ($test:ident, $s:expr => $scheme:ident, Unix($path:expr), reuseport $r:expr) => {
            #[test]
            fn $test() {
                check_ok($s, $scheme, Target::Unix(PathBuf::from($path)), $r);
            }
        };
    }

    /// `err!(test_name, "text", "part of the reason");`
    macro_rules! err {
        ($test:ident, $s:expr, $reason:expr) => {
            #[test]
            fn $test() {
                check_err(&$s, $reason);
            }
        };
    }

    // Schemes.
    ok!(tcp_ipv4, "tcp://127.0.0.1:80" => Tcp, Inet(ip("127.0.0.1"), 80), reuseport false);
    ok!(tcp4_ipv4, "tcp4://10.0.0.1:8080" => Tcp4, Inet(ip("10.0.0.1"), 8080), reuseport false);
    ok!(tcp6_ipv6, "tcp6://[::1]:80" => Tcp6, Inet(ip("::1"), 80), reuseport false);
    ok!(udp_ipv4, "udp://0.0.0.0:53" => Udp, Inet(ip("0.0.0.0"), 53), reuseport false);
    ok!(udp4_name, "udp4://localhost:53" => Udp4, Inet(name("localhost"), 53), reuseport false);
    ok!(udp6_ipv6, "udp6://[2001:db8::1]:5353" => Udp6, Inet(ip("2001:db8::1"), 5353), reuseport false);
    ok!(tcp6_name, "tcp6://localhost:80" => Tcp6, Inet(name("localhost"), 80), reuseport false);
    ok!(scheme_upper, "TCP://127.0.0.1:80" => Tcp, Inet(ip("127.0.0.1"), 80), reuseport false);
    ok!(scheme_mixed, "Udp6://[::]:9" => Udp6, Inet(ip("::"), 9), reuseport false);
    err!(
        scheme_unknown,
        "http://127.0.0.1:80",
        "unknown scheme \"http\""
    );
    err!(scheme_empty, "://127.0.0.1:80", "missing scheme");
    err!(scheme_typo, "tcp5://127.0.0.1:80", "unknown scheme");
    err!(
        scheme_single_slash,
        "tcp:/127.0.0.1:80",
        "expected \"tcp://\""
    );
    err!(scheme_no_slashes, "udp6:[::1]:80", "expected \"udp6://\"");
    ok!(host_named_like_scheme, "tcp:80" => Tcp, Inet(name("tcp"), 80), reuseport false);

    // No scheme means tcp.
    ok!(bare_ipv4, "127.0.0.1:5000" => Tcp, Inet(ip("127.0.0.1"), 5000), reuseport false);
    ok!(bare_name, "localhost:80" => Tcp, Inet(name("localhost"), 80), reuseport false);
    ok!(bare_ipv6, "[::1]:80" => Tcp, Inet(ip("::1"), 80), reuseport false);
    ok!(bare_options, "localhost:80?reuseport=1" => Tcp, Inet(name("localhost"), 80), reuseport true);

    // IPv6.
    ok!(ipv6_full, "tcp://[2001:0db8:0000:0000:0000:0000:0000:0001]:443" => Tcp, Inet(ip("2001:db8::1"), 443), reuseport false);
    ok!(ipv6_mapped, "tcp://[::ffff:1.2.3.4]:1" => Tcp, Inet(ip("::ffff:1.2.3.4"), 1), reuseport false);
    err!(ipv6_unbracketed, "tcp://::1:80", "must be in brackets");
    err!(ipv6_unbracketed_bare, "::1:80", "must be in brackets");
    err!(
        ipv6_unbracketed_no_port,
        "tcp://fe80::1",
        "must be in brackets"
    );
    err!(ipv6_zone, "tcp://[fe80::1%eth0]:80", "zone ids");
    err!(ipv6_unclosed, "tcp://[::1:80", "missing ']'");
    err!(ipv6_empty, "tcp://[]:80", "empty host");
    err!(ipv6_invalid, "tcp://[::g]:80", "invalid IPv6 address");
    err!(
        ipv6_ipv4_in_brackets,
        "tcp://[127.0.0.1]:80",
        "invalid IPv6 address"
    );
    err!(ipv6_no_port, "tcp://[::1]", "missing port");
    err!(ipv6_empty_port, "tcp://[::1]:", "missing port");
    err!(ipv6_junk_after, "tcp://[::1]x:80", "after ']'");
    err!(ipv6_double_close, "tcp://[::1]]:80", "after ']'");
    err!(stray_close_bracket, "tcp://a]:80", "brackets");

    // Family restrictions.
    err!(
        tcp4_ipv6,
        "tcp4://[::1]:80",
        "IPv6 address with IPv4-only scheme"
    );
    err!(
        udp4_ipv6,
        "udp4://[::]:80",
        "IPv6 address with IPv4-only scheme"
    );
    err!(
        tcp6_ipv4,
        "tcp6://127.0.0.1:80",
        "IPv4 address with IPv6-only scheme"
    );
    err!(
        udp6_ipv4,
        "udp6://0.0.0.0:80",
        "IPv4 address with IPv6-only scheme"
    );

    // Ports.
    ok!(port_zero, "tcp://127.0.0.1:0" => Tcp, Inet(ip("127.0.0.1"), 0), reuseport false);
    ok!(port_max, "tcp://127.0.0.1:65535" => Tcp, Inet(ip("127.0.0.1"), 65535), reuseport false);
    ok!(port_leading_zeros, "tcp://127.0.0.1:0080" => Tcp, Inet(ip("127.0.0.1"), 80), reuseport false);
    err!(port_too_big, "tcp://x:99999", "port out of range");
    err!(port_65536, "tcp://127.0.0.1:65536", "port out of range");
    err!(
        port_huge,
        "tcp://127.0.0.1:99999999999999999999999",
        "port out of range"
    );
    err!(port_missing, "tcp://127.0.0.1", "missing port");
    err!(port_empty, "tcp://127.0.0.1:", "missing port");
    err!(port_sign, "tcp://127.0.0.1:+80", "invalid port");
    err!(port_negative, "tcp://127.0.0.1:-1", "invalid port");
    err!(port_hex, "tcp://127.0.0.1:0x50", "invalid port");
    err!(port_name, "tcp://127.0.0.1:http", "invalid port");
    err!(port_path, "tcp://127.0.0.1:80/", "invalid port");
    err!(port_unicode_digit, "tcp://127.0.0.1:８０", "invalid port");

    // Hosts.
    ok!(host_lowercased, "tcp://LocalHost:80" => Tcp, Inet(name("localhost"), 80), reuseport false);
    ok!(host_dotted, "tcp://a-b.example.com:80" => Tcp, Inet(name("a-b.example.com"), 80), reuseport false);
    ok!(host_digit_label, "tcp://1a.example:80" => Tcp, Inet(name("1a.example"), 80), reuseport false);
    ok!(host_max_len, format!("tcp://{}:80", long_host(253)).as_str() => Tcp, Inet(name(&long_host(253)), 80), reuseport false);
    err!(host_empty, "tcp://:80", "empty host");
    err!(host_empty_bare, ":80", "empty host");
    err!(
        host_too_long,
        format!("tcp://{}:80", long_host(254)),
        "longer than 253"
    );
    err!(
        host_label_too_long,
        format!("tcp://{}.com:80", "a".repeat(64)),
        "label longer than 63"
    );
    err!(
        host_leading_dash,
        "tcp://-a.com:80",
        "starts or ends with '-'"
    );
    err!(
        host_trailing_dash,
        "tcp://a-.com:80",
        "starts or ends with '-'"
    );
    err!(host_empty_label, "tcp://a..com:80", "empty label");
    err!(host_trailing_dot, "tcp://localhost.:80", "empty label");
    err!(host_leading_dot, "tcp://.localhost:80", "empty label");
    err!(host_underscore, "tcp://a_b:80", "invalid character '_'");
    err!(host_userinfo, "tcp://user@host:80", "invalid character '@'");
    err!(host_unicode, "tcp://bücher.de:80", "invalid character 'ü'");
    err!(host_nul, "tcp://a\0b:80", "invalid character '\\0'");
    err!(host_bad_ipv4, "tcp://256.0.0.1:80", "invalid IPv4 address");
    err!(
        host_ipv4_octal,
        "tcp://010.0.0.1:80",
        "invalid IPv4 address"
    );
    err!(host_ipv4_short, "tcp://127.1:80", "invalid IPv4 address");
    err!(host_all_digits, "tcp://1234:80", "invalid IPv4 address");

    fn long_host(len: usize) -> String {
        // Labels of 63 'a's separated by dots, cut to `len` with a letter at the end.
        let mut s = String::new();
        while s.len() < len {
            if !s.is_empty() && s.len() % 64 == 63 {
                s.push('.');
            } else {
                s.push('a');
            }
        }
        if s.ends_with('.') {
            s.pop();
            s.push('b');
        }
        s
    }

    // Unix.
    ok!(unix_abs, "unix:///tmp/a.sock" => Unix, Unix("/tmp/a.sock"), reuseport false);
    ok!(unix_rel, "unix://relative.sock" => Unix, Unix("relative.sock"), reuseport false);
    ok!(unix_rel_dir, "unix://run/x.sock" => Unix, Unix("run/x.sock"), reuseport false);
    ok!(unix_upper, "UNIX:///tmp/a.sock" => Unix, Unix("/tmp/a.sock"), reuseport false);
    ok!(unix_max_len, format!("unix:///{}", "a".repeat(106)).as_str() => Unix, Unix(format!("/{}", "a".repeat(106))), reuseport false);
    err!(unix_empty, "unix://", "empty unix socket path");
    err!(unix_nul, "unix:///tmp/a\0b", "NUL");
    err!(
        unix_too_long,
        format!("unix:///{}", "a".repeat(107)),
        "longer than 107"
    );
    err!(unix_abstract, "unix://@name", "abstract");
    err!(unix_no_slashes, "unix:/tmp/a.sock", "expected \"unix://\"");
    err!(unix_no_slashes_upper, "Unix:a.sock", "expected \"unix://\"");
    err!(
        unix_reuseport,
        "unix:///tmp/a.sock?reuseport=true",
        "not supported for unix"
    );
    err!(
        unix_reuseport_false,
        "unix:///tmp/a.sock?reuseport=false",
        "not supported for unix"
    );
    err!(
        unix_unknown_option,
        "unix:///tmp/a.sock?mode=0600",
        "unknown option \"mode\""
    );
    err!(unix_empty_query, "unix:///tmp/a.sock?", "empty option");

    // Options.
    ok!(opt_true, "tcp://127.0.0.1:80?reuseport=true" => Tcp, Inet(ip("127.0.0.1"), 80), reuseport true);
    ok!(opt_one, "udp://127.0.0.1:80?reuseport=1" => Udp, Inet(ip("127.0.0.1"), 80), reuseport true);
    ok!(opt_false, "tcp://127.0.0.1:80?reuseport=false" => Tcp, Inet(ip("127.0.0.1"), 80), reuseport false);
    ok!(opt_zero, "tcp6://[::1]:80?reuseport=0" => Tcp6, Inet(ip("::1"), 80), reuseport false);
    err!(
        opt_unknown,
        "tcp://127.0.0.1:80?nodelay=true",
        "unknown option \"nodelay\""
    );
    err!(
        opt_no_eq,
        "tcp://127.0.0.1:80?reuseport",
        "option \"reuseport\" is missing '=value'"
    );
    err!(opt_empty_key, "tcp://127.0.0.1:80?=true", "empty name");
    err!(
        opt_duplicate,
        "tcp://127.0.0.1:80?reuseport=true&reuseport=false",
        "duplicate option \"reuseport\""
    );
    err!(
        opt_bad_value,
        "tcp://127.0.0.1:80?reuseport=yes",
        "invalid value \"yes\" for option \"reuseport\""
    );
    err!(
        opt_empty_value,
        "tcp://127.0.0.1:80?reuseport=",
        "invalid value \"\" for option \"reuseport\""
    );
    err!(
        opt_value_case,
        "tcp://127.0.0.1:80?reuseport=TRUE",
        "invalid value \"TRUE\""
    );
    err!(
        opt_key_case,
        "tcp://127.0.0.1:80?ReusePort=true",
        "unknown option \"ReusePort\""
    );
    err!(opt_empty_query, "tcp://127.0.0.1:80?", "empty option");
    err!(
        opt_trailing_amp,
        "tcp://127.0.0.1:80?reuseport=1&",
        "empty option"
    );
    err!(
        opt_double_amp,
        "tcp://127.0.0.1:80?reuseport=1&&x=1",
        "empty option"
    );
    err!(
        opt_second_question,
        "tcp://127.0.0.1:80?reuseport=1?x",
        "invalid value \"1?x\""
    );

    // Whitespace, emptiness, length.
    err!(empty, "", "empty address");
    err!(ws_leading, " tcp://127.0.0.1:80", "whitespace");
    err!(ws_trailing, "tcp://127.0.0.1:80\n", "whitespace");
    err!(ws_inside, "tcp://127.0.0.1: 80", "whitespace");
    err!(ws_tab, "tcp://\t127.0.0.1:80", "whitespace");
    err!(ws_unicode, "tcp://127.0.0.1:80\u{3000}", "whitespace");
    err!(ws_unix, "unix:///tmp/a b.sock", "whitespace");
    err!(
        too_long,
        format!("unix://{}", "a".repeat(4090)),
        "longer than 4096"
    );

    #[test]
    fn display_round_trip() {
        let cases = [
            ("tcp://127.0.0.1:80", "tcp://127.0.0.1:80"),
            ("127.0.0.1:80", "tcp://127.0.0.1:80"),
            ("[::1]:80", "tcp://[::1]:80"),
            (
                "TCP6://[0:0::1]:80?reuseport=1",
                "tcp6://[::1]:80?reuseport=true",
            ),
            (
                "udp4://LOCALHOST:0080?reuseport=false",
                "udp4://localhost:80",
            ),
            ("unix:///tmp/a.sock", "unix:///tmp/a.sock"),
            ("unix://a.sock", "unix://a.sock"),
        ];
        for (input, canon) in cases {
            let a: Addr = input.parse().expect(input);
            assert_eq!(a.to_string(), canon, "display of {input:?}");
            let b: Addr = canon.parse().expect(canon);
            assert_eq!(a, b);
            assert_eq!(b.to_string(), canon);
            assert_eq!(a.as_str(), input);
            assert_eq!(b.as_str(), canon);
        }
    }

    #[test]
    fn eq_and_hash_ignore_text() {
        use std::collections::HashSet;
        let a = Addr::parse("localhost:80").expect("a");
        let b = Addr::parse("tcp://LOCALHOST:80?reuseport=false").expect("b");
        assert_eq!(a, b);
        assert_ne!(a.as_str(), b.as_str());
        let set: HashSet<Addr> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
        let c = Addr::parse("localhost:80?reuseport=true").expect("c");
        assert_ne!(set.iter().next(), Some(&c));
        let d = Addr::parse("udp://localhost:80").expect("d");
        assert_ne!(set.iter().next(), Some(&d));
    }

    #[test]
    fn scheme_predicates() {
        for s in Scheme::ALL {
            let n = [s.is_tcp(), s.is_udp(), s.is_unix()]
                .iter()
                .filter(|&&b| b)
                .count();
            assert_eq!(n, 1, "{s:?}");
            assert_eq!(Scheme::from_name(s.as_str()), Some(s));
            assert_eq!(s.as_str().starts_with("tcp"), s.is_tcp());
            assert_eq!(s.as_str().starts_with("udp"), s.is_udp());
        }
        assert_eq!(Tcp6.as_str(), "tcp6");
        assert!(Unix.is_unix());
    }

    #[test]
    fn long_input_quoted_short_in_reason() {
        let long = "x".repeat(3000);
        for input in [
            format!("{long}://a:1"),
            format!("a:{long}"),
            format!("a:1?{long}=1"),
            format!("a:1?reuseport={long}"),
            format!("[{long}]:1"),
        ] {
            let e = Addr::parse(&input).expect_err("long");
            assert!(e.reason().len() < 200, "{}", e.reason());
            assert!(e.reason().contains("\"..."), "{}", e.reason());
            assert!(e.to_string().len() < 400, "{e}");
        }
    }

    #[test]
    fn error_display() {
        let e = Addr::parse("tcp://x:99999").expect_err("out of range");
        assert_eq!(
            e.to_string(),
            "bad address \"tcp://x:99999\": port out of range"
        );
        assert_eq!(e.address(), "tcp://x:99999");
        assert_eq!(e.reason(), "port out of range");
        let long = format!("tcp://{}é:80", "a".repeat(200));
        let e = Addr::parse(&long).expect_err("long");
        let shown = e.to_string();
        assert!(shown.len() < 300, "{shown}");
        assert!(shown.contains("bytes)"), "{shown}");
        assert_eq!(e.address(), long);
        let e: Box<dyn std::error::Error> = Box::new(e);
        assert!(e.to_string().starts_with("bad address"));
    }

    #[test]
    fn resolve_literals() {
        let a = Addr::parse("tcp://127.0.0.1:80").expect("v4");
        assert_eq!(
            a.resolve().expect("resolve"),
            vec!["127.0.0.1:80".parse::<SocketAddr>().expect("sa")]
        );
        let a = Addr::parse("udp6://[::1]:0").expect("v6");
        assert_eq!(
            a.resolve().expect("resolve"),
            vec!["[::1]:0".parse::<SocketAddr>().expect("sa")]
        );
    }

    #[test]
    fn resolve_unix_is_invalid_input() {
        let a = Addr::parse("unix:///tmp/a.sock").expect("unix");
        let e = a.resolve().expect_err("unix");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("unix:///tmp/a.sock"), "{e}");
    }

    #[test]
    fn resolve_localhost_filters_family() {
        // localhost resolves through /etc/hosts without the network; it may lack an
        // IPv6 entry on some machines, so only check what comes back.
        let a = Addr::parse("tcp4://localhost:80").expect("tcp4");
        if let Ok(addrs) = a.resolve() {
            assert!(addrs.iter().all(SocketAddr::is_ipv4), "{addrs:?}");
            assert!(addrs.iter().all(|s| s.port() == 80), "{addrs:?}");
        }
        let a = Addr::parse("tcp6://localhost:80").expect("tcp6");
        match a.resolve() {
            Ok(addrs) => assert!(addrs.iter().all(SocketAddr::is_ipv6), "{addrs:?}"),
            Err(e) => assert!(e.to_string().contains("tcp6://localhost:80"), "{e}"),
        }
    }
}
