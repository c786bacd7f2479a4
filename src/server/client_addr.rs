//! Which address a request comes from, for the per-address limits (rooms and sign-ins per
//! hour, signaling sockets at once).
//!
//! Behind a reverse proxy every connection comes from the proxy, so without help every
//! visitor would share one address's limits: 64 sockets for the whole site. Proxies named in
//! `MESHDROP_TRUSTED_PROXIES` are believed about who they forward for (`X-Forwarded-For`);
//! nobody else is, so a client cannot pick its own address to escape a limit.
//!
//! Limits count IPv6 clients by their /64 network: one subscriber usually holds a whole /64
//! and could otherwise take a fresh address for every request.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The most `X-Forwarded-For` entries looked at, from the right: enough for any chain of
/// real proxies, and a bound on the work a long header can cause.
const MAX_HOPS: usize = 16;

/// Reverse proxies whose `X-Forwarded-For` is believed. Empty by default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses (`10.0.0.2`, `::1`) and ranges (`10.0.0.0/8`).
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("not an address or range (like 10.0.0.0/8): {s:?}"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The client's address: the connecting one, unless that is a trusted proxy; then the
/// rightmost `X-Forwarded-For` entry that is not a trusted proxy itself (entries further
/// left were written by the client and prove nothing). An entry that does not parse ends
/// the walk at the proxy that passed it on.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut current = canonical(peer);
    if !trusted.trusts(current) {
        return current;
    }
    // Several headers count as one list, in order.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for entry in entries.iter().rev().take(MAX_HOPS) {
        let Some(ip) = parse_entry(entry) else {
            return current;
        };
        current = canonical(ip);
        if !trusted.trusts(current) {
            return current;
        }
    }
    current
}

/// The key a client's limits are counted under: an IPv4 address as it is, an IPv6 address
/// as its /64 network.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// IPv4 clients reaching a dual-stack socket show up as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `203.0.113.7`, `2001:db8::1`, and the forms with a port some proxies write
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_connecting_address_counts() {
        let none = TrustedProxies::default();
        let spoofed = headers(&["198.51.100.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &spoofed, &none), ip("10.0.0.2"));
    }

    #[test]
    fn a_trusted_proxy_is_believed_about_its_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&["203.0.113.7"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
        // Not from the proxy: the header proves nothing.
        assert_eq!(
            client_ip(ip("192.0.2.9"), &h, &trusted),
            ip("192.0.2.9"),
            "an untrusted sender cannot choose its address"
        );
    }

    #[test]
    fn what_the_client_wrote_itself_is_ignored() {
        // The client sent "X-Forwarded-For: 198.51.100.1"; the proxy appended the real one.
        let trusted = TrustedProxies::parse("10.0.0.2").unwrap();
        let h = headers(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 2001:db8:1::/48").unwrap();
        let h = headers(&["203.0.113.7, 2001:db8:1::5", "10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &trusted), ip("203.0.113.7"));
        // Every hop trusted: the leftmost is the best there is.
        let inside = headers(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &inside, &trusted), ip("10.9.9.9"));
    }

    #[test]
    fn ports_and_missing_or_broken_headers() {
        let trusted = TrustedProxies::parse("127.0.0.1,::1").unwrap();
        let with_ports = headers(&["[2001:db8::7]:4711"]);
        assert_eq!(
            client_ip(ip("::1"), &with_ports, &trusted),
            ip("2001:db8::7")
        );
        let v4_port = headers(&["203.0.113.7:4711"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &v4_port, &trusted),
            ip("203.0.113.7")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        // Garbage stops the walk at the proxy that passed it on.
        let broken = headers(&["203.0.113.7, not-an-address"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &broken, &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_long_header_is_read_only_so_far() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let mut list = vec!["203.0.113.7".to_string()];
        list.extend((0..100).map(|i| format!("10.0.{}.{}", i / 250, i % 250)));
        let h = headers(&[&list.join(", ")]);
        // Past MAX_HOPS trusted hops the walk stops at the last one it read.
        let got = client_ip(ip("10.0.0.2"), &h, &trusted);
        assert!(trusted.trusts(got), "{got}");
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let trusted = TrustedProxies::parse("127.0.0.1").unwrap();
        let h = headers(&["::ffff:203.0.113.7"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            limit_key(ip("2001:db8:aa:bb:1:2:3:4")),
            ip("2001:db8:aa:bb::")
        );
        assert_eq!(
            limit_key(ip("2001:db8:aa:bb:ffff::1")),
            limit_key(ip("2001:db8:aa:bb::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:aa:bb::1")),
            limit_key(ip("2001:db8:aa:bc::1"))
        );
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn the_list_is_parsed_strictly() {
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
        assert!(TrustedProxies::parse("10.0.0.1, 10.0.0.0/8, ::1, fd00::/8").is_ok());
        let err = TrustedProxies::parse("10.0.0.1, proxy.local").unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
