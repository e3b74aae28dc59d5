//! IP networks in CIDR form, for the senders a PROXY protocol listener trusts.

use std::fmt;
use std::net::IpAddr;

/// An IP network: an address and a prefix length (`10.0.0.0/8`; a bare address is one
/// host). IPv4-mapped IPv6 addresses match the IPv4 networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Network, String> {
        let bad = || format!("bad network {s:?} (expected an address or ADDR/PREFIX)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::Network;

    #[test]
    fn networks_contain_their_addresses() {
        let n = |s: &str| Network::parse(s).unwrap();
        let ip = |s: &str| s.parse().unwrap();
        assert!(n("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!n("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(n("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!n("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(
            n("127.0.0.1").contains(ip("::ffff:127.0.0.1")),
            "IPv4-mapped"
        );
        assert!(n("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(n("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!n("2001:db8::/32").contains(ip("2001:db9::5")));
        assert!(!n("::/0").contains(ip("1.2.3.4")));
        assert!(n("::/0").contains(ip("::1")));
        assert_eq!(n("10.1.0.0/16").to_string(), "10.1.0.0/16");
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nope",
            "1.2.3.4/",
            "/8",
            "1.2.3.4/-1",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }
}
