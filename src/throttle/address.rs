//! Who the client is, as far as throttling can tell: the TCP peer, or, behind proxies the
//! operator trusts (`FINQL_TRUSTED_PROXIES`), the address they say they forwarded.
//!
//! `X-Forwarded-For` is a list every hop appends to, and a client can write anything at its
//! start. So it is read only when the TCP peer is a trusted proxy, from the right: the
//! right-most address that is not itself a trusted proxy is the one the nearest trusted proxy
//! saw connecting (`X-Forwarded-For: <spoofed>, <real client>, <inner proxy>`). A peer that is
//! not trusted is the client, whatever it claims. An unreadable entry ends the walk at the
//! last trusted hop (throttling then falls on that proxy: conservative, and visible).

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
};

/// An address block, `10.0.0.0/8` or `fd00::/8` (a bare address is a block of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(net)), self.prefix, 32) == mask(u128::from(u32::from(ip)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), self.prefix, 128) == mask(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn mask(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 { 0 } else { bits >> (width - prefix) }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let network =
            canonical(addr.parse::<IpAddr>().map_err(|_| format!("`{raw}` is not an address or CIDR block"))?);
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= width => p,
                _ => return Err(format!("`{raw}`: the prefix length must be 0 to {width}")),
            },
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `FINQL_TRUSTED_PROXIES`, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// A comma-separated list of CIDR blocks or addresses; empty trusts no one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Cidr::from_str).collect::<Result<_, _>>().map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(addr))
    }

    /// The client's address: `peer`, or what trusted proxies forwarded. `forwarded_for` are the
    /// `X-Forwarded-For` header values in the order received.
    pub fn client_addr<'a>(&self, peer: IpAddr, forwarded_for: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut nearest = peer;
        for value in forwarded_for.rev() {
            for entry in value.rsplit(',') {
                let Some(addr) = parse_forwarded(entry) else { return nearest };
                if !self.trusts(addr) {
                    return addr;
                }
                nearest = addr;
            }
        }
        nearest
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').and_then(|(addr, _)| addr.parse::<Ipv6Addr>().ok()).map(|a| canonical(a.into()));
    }
    entry.parse::<std::net::SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as plain IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The unit an address limit applies to: an IPv4 address, or an IPv6 /64. One subscriber is
/// routinely given a whole /64 (and can pick any address in it), so limiting single IPv6
/// addresses would limit nothing.
pub fn bucket(addr: IpAddr) -> String {
    match canonical(addr) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_contain_their_addresses() {
        let private: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(private.contains(ip("10.255.0.1")));
        assert!(!private.contains(ip("11.0.0.1")));
        assert!(private.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 is IPv4");
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse("10.0.0.0/8, ::1 ,").unwrap().0.len() == 2);
        assert!(TrustedProxies::parse("10.0.0.0/8,bad").is_err());
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_only_behind_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let peer = ip("10.0.0.5");
        // The client wrote `6.6.6.6`; the proxy appended what it saw.
        assert_eq!(proxies.client_addr(peer, ["6.6.6.6, 203.0.113.7"].into_iter()), ip("203.0.113.7"));
        // Two trusted hops; the header split over two lines.
        assert_eq!(proxies.client_addr(peer, ["6.6.6.6, 203.0.113.7", "10.0.0.9"].into_iter()), ip("203.0.113.7"));
        // An untrusted peer is the client whatever it says.
        assert_eq!(proxies.client_addr(ip("198.51.100.1"), ["203.0.113.7"].into_iter()), ip("198.51.100.1"));
        assert_eq!(TrustedProxies::default().client_addr(peer, ["203.0.113.7"].into_iter()), peer);
        // No header, or only trusted hops: the nearest one.
        assert_eq!(proxies.client_addr(peer, std::iter::empty()), peer);
        assert_eq!(proxies.client_addr(peer, ["10.1.1.1"].into_iter()), ip("10.1.1.1"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(proxies.client_addr(peer, ["203.0.113.7, garbage"].into_iter()), peer);
        // Ports and brackets.
        assert_eq!(proxies.client_addr(peer, ["[2001:db8::1]:443"].into_iter()), ip("2001:db8::1"));
        assert_eq!(proxies.client_addr(peer, ["203.0.113.7:5678"].into_iter()), ip("203.0.113.7"));
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), bucket(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
