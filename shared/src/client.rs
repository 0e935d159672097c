//! Which address a request counts for.
//!
//! The connecting peer counts, unless it is a configured trusted proxy;
//! then the right-most address of `X-Forwarded-For` that is not itself a
//! trusted proxy. Entries left of that one were written by the client and
//! prove nothing, so an untrusted peer can never make a request count for
//! someone else. A request that reaches us only through trusted proxies
//! with no usable forwarded address counts for nobody: a proxy is never
//! blocked.

use crate::formats::parse_ip;
use crate::hit::Hit;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Resolves the counted client of a [`Hit`] and folds it into its key.
#[derive(Debug, Clone)]
pub struct ClientResolver {
    trusted: Vec<IpNet>,
    v6_prefix: u8,
}

impl ClientResolver {
    /// A resolver trusting `trusted` and folding IPv6 to `/v6_prefix`.
    pub fn new(trusted: Vec<IpNet>, v6_prefix: u8) -> Self {
        ClientResolver {
            trusted,
            v6_prefix: v6_prefix.min(128),
        }
    }

    #[inline]
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// The address the request counts for, or `None` when it came from
    /// trusted proxies only.
    #[inline]
    pub fn client(&self, hit: &Hit<'_>) -> Option<IpAddr> {
        if self.trusted.is_empty() {
            // Small enough to inline everywhere: the address then stays in
            // registers (returned through memory, it is read back in other
            // pieces than it was written, which waits for every earlier
            // store to reach the cache).
            return Some(canonical(hit.peer));
        }
        self.client_behind_proxies(hit)
    }

    #[inline(never)]
    fn client_behind_proxies(&self, hit: &Hit<'_>) -> Option<IpAddr> {
        let peer = canonical(hit.peer);
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let xff = hit.forwarded_for.as_deref()?;
        for part in xff.rsplit(',') {
            let ip = canonical(parse_ip(part)?);
            if !self.is_trusted(ip) {
                return Some(ip);
            }
        }
        None
    }

    /// The counting key of an address: IPv4 as a /32, IPv6 as its /64 (or
    /// the configured prefix).
    #[inline]
    pub fn key(&self, ip: IpAddr) -> IpNet {
        match ip {
            IpAddr::V4(a) => IpNet::V4(trunc_v4(a, 32)),
            IpAddr::V6(a) => IpNet::V6(trunc_v6(a, self.v6_prefix)),
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`) is the IPv4 address.
#[inline]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address key as an operator writes it: a single address without its
/// `/32` or `/128`, any other network as CIDR.
pub fn short(net: IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// The network of `len` bits around `net` (never wider than `/1`).
#[inline]
pub fn widen(net: IpNet, len_v4: u8, len_v6: u8) -> IpNet {
    match net {
        IpNet::V4(n) => IpNet::V4(trunc_v4(n.addr(), len_v4.clamp(1, 32).min(n.prefix_len()))),
        IpNet::V6(n) => IpNet::V6(trunc_v6(n.addr(), len_v6.clamp(1, 128).min(n.prefix_len()))),
    }
}

/// The network of `len` (at most 32) bits that holds `a`. Inlined
/// arithmetic, where `Ipv4Net::trunc` is a call whose result comes back
/// through memory byte by byte: on the path of every request, that cost a
/// store-forwarding stall each time.
#[inline]
fn trunc_v4(a: Ipv4Addr, len: u8) -> Ipv4Net {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    Ipv4Net::new_assert(Ipv4Addr::from_bits(a.to_bits() & mask), len.min(32))
}

/// [`trunc_v4`] for IPv6 (`len` at most 128).
#[inline]
fn trunc_v6(a: Ipv6Addr, len: u8) -> Ipv6Net {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0);
    Ipv6Net::new_assert(Ipv6Addr::from_bits(a.to_bits() & mask), len.min(128))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::borrow::Cow;

    proptest! {
        /// The inlined arithmetic gives `ipnet`'s networks.
        #[test]
        fn keys_and_networks_are_ipnets(
            v4 in any::<u32>(),
            v6 in any::<u128>(),
            len_v4 in 0u8..=40,
            len_v6 in 0u8..=140,
            key_v6 in 1u8..=128,
        ) {
            let r = ClientResolver::new(vec![], key_v6);
            let (a4, a6) = (Ipv4Addr::from_bits(v4), Ipv6Addr::from_bits(v6));
            let (k4, k6) = (r.key(IpAddr::V4(a4)), r.key(IpAddr::V6(a6)));
            prop_assert_eq!(k4, IpNet::V4(Ipv4Net::new(a4, 32).unwrap()));
            prop_assert_eq!(k6, IpNet::V6(Ipv6Net::new(a6, key_v6).unwrap().trunc()));
            let want4 = Ipv4Net::new(a4, len_v4.clamp(1, 32)).unwrap().trunc();
            prop_assert_eq!(widen(k4, len_v4, len_v6), IpNet::V4(want4));
            let want6 = Ipv6Net::new(a6, len_v6.clamp(1, 128).min(key_v6)).unwrap().trunc();
            prop_assert_eq!(widen(k6, len_v4, len_v6), IpNet::V6(want6));
        }
    }

    fn hit(peer: &str, xff: Option<&'static str>) -> Hit<'static> {
        let mut h = Hit::new(0, peer.parse().unwrap(), 404);
        h.forwarded_for = xff.map(Cow::Borrowed);
        h
    }

    #[test]
    fn untrusted_peer_cannot_name_another_address() {
        let r = ClientResolver::new(vec!["10.0.0.0/8".parse().unwrap()], 64);
        assert_eq!(
            r.client(&hit("198.51.100.7", Some("203.0.113.9"))),
            Some("198.51.100.7".parse().unwrap())
        );
    }

    #[test]
    fn trusted_peer_uses_rightmost_untrusted_forwarded_address() {
        let r = ClientResolver::new(vec!["10.0.0.0/8".parse().unwrap()], 64);
        // The client wrote a fake first entry; the proxy appended the real one.
        let h = hit("10.1.2.3", Some("1.2.3.4, 198.51.100.7, 10.9.9.9"));
        assert_eq!(r.client(&h), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(r.client(&hit("10.1.2.3", None)), None);
        assert_eq!(r.client(&hit("10.1.2.3", Some("10.2.2.2"))), None);
        assert_eq!(r.client(&hit("10.1.2.3", Some("garbage"))), None);
        assert_eq!(
            r.client(&hit("10.1.2.3", Some("[2001:db8::5]:443"))),
            Some("2001:db8::5".parse().unwrap())
        );
    }

    #[test]
    fn keys_fold_ipv6_and_mapped_addresses() {
        let r = ClientResolver::new(vec![], 64);
        assert_eq!(
            r.key("2001:db8:1:2:aaaa::1".parse().unwrap()).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            r.key("192.0.2.1".parse().unwrap()).to_string(),
            "192.0.2.1/32"
        );
        let mapped = r.client(&hit("::ffff:192.0.2.1", None)).unwrap();
        assert_eq!(mapped, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            widen("192.0.2.77/32".parse().unwrap(), 24, 48).to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            widen("2001:db8:1:2::/64".parse().unwrap(), 24, 48).to_string(),
            "2001:db8:1::/48"
        );
    }
}
