//! The SSRF guard for every request that goes to an address a `/plan` body named: JSON-RPC
//! calls, agent cards, DID documents.
//!
//! Two tiers:
//! - always refused: cloud metadata endpoints (the instance's credentials live there), whatever
//!   the configuration;
//! - refused when `a2a.block_private_endpoints` is on: every special-purpose range of the IANA
//!   IPv4 and IPv6 registries (loopback, private, shared, link-local, documentation, multicast,
//!   reserved, and IPv6 forms that embed an IPv4 address, judged by that address).
//!
//! The check runs where the address is used: a `reqwest` DNS resolver refuses blocked results of
//! every resolution (so DNS rebinding between a check and the connect cannot slip through), and
//! literal IP hosts are checked before each request, redirects included. Peer JSON-RPC never
//! follows redirects; card fetches follow at most [`MAX_CARD_REDIRECTS`], each re-checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Redirects a card fetch follows at most.
pub const MAX_CARD_REDIRECTS: usize = 3;

/// Cloud instance-metadata addresses, refused in every configuration.
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, …
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(169, 254, 170, 23),  // AWS EKS pod identity
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
];
const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254), // AWS IMDS over IPv6
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023), // AWS EKS pod identity
];

/// IPv4 special-purpose ranges (IANA IPv4 Special-Purpose Address Registry, plus multicast and
/// the reserved 240/4), as (network, prefix length).
const SPECIAL_V4: [(u32, u8); 17] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10/8 private
    (0x6440_0000, 10), // 100.64/10 shared address space (CGN)
    (0x7f00_0000, 8),  // 127/8 loopback
    (0xa9fe_0000, 16), // 169.254/16 link-local
    (0xac10_0000, 12), // 172.16/12 private
    (0xc000_0000, 24), // 192.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2/24 TEST-NET-1
    (0xc058_6300, 24), // 192.88.99/24 6to4 relay anycast
    (0xc0a8_0000, 16), // 192.168/16 private
    (0xc612_0000, 15), // 198.18/15 benchmarking
    (0xc633_6400, 24), // 198.51.100/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113/24 TEST-NET-3
    (0xe000_0000, 4),  // 224/4 multicast
    (0xf000_0000, 4),  // 240/4 reserved, includes 255.255.255.255
    (0xffff_ffff, 32), // limited broadcast (inside 240/4; listed for clarity)
    (0x0000_0000, 32), // unspecified (inside 0/8; listed for clarity)
];

/// IPv6 special-purpose ranges (IANA IPv6 Special-Purpose Address Registry, plus multicast and
/// the deprecated site-local range). Ranges that embed an IPv4 address are handled separately.
const SPECIAL_V6: [(u128, u8); 11] = [
    (0, 128),                                        // :: unspecified
    (1, 128),                                        // ::1 loopback
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // 100::/64 discard-only
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // 2001::/23 IETF protocol assignments (Teredo, …)
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation
    (0x2002_0000_0000_0000_0000_0000_0000_0000, 16), // 2002::/16 6to4
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // 3fff::/20 documentation
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // fc00::/7 unique local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // fe80::/10 link-local
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // fec0::/10 site-local (deprecated)
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // ff00::/8 multicast
];

fn in_v4(ip: Ipv4Addr, (net, len): (u32, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == net & mask
}

fn in_v6(ip: Ipv6Addr, (net, len): (u128, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == net & mask
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`, deprecated) and NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48` with the address in the
/// last 32 bits).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let last32 = Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).unwrap_or(0));
    let mapped = bits >> 32 == 0xffff;
    let compatible = bits >> 32 == 0 && bits > 1;
    let nat64 = in_v6(ip, (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96))
        || in_v6(ip, (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48));
    (mapped || compatible || nat64).then_some(last32)
}

/// Why an address is refused, or `None` when it may be used.
#[must_use]
pub fn refusal(ip: IpAddr, block_private: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if METADATA_V4.contains(&v4) {
                Some("a cloud metadata address")
            } else if block_private && SPECIAL_V4.iter().any(|r| in_v4(v4, *r)) {
                Some("a blocked address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return refusal(IpAddr::V4(v4), block_private);
            }
            if METADATA_V6.contains(&v6) {
                Some("a cloud metadata address")
            } else if block_private && SPECIAL_V6.iter().any(|r| in_v6(v6, *r)) {
                Some("a blocked address")
            } else {
                None
            }
        }
    }
}

/// The guard: the policy plus the resolver that enforces it.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub block_private: bool,
}

impl Guard {
    /// Checks a URL before a request: its scheme, and its host when that is an IP literal
    /// (names are checked by the resolver at connect time).
    ///
    /// # Errors
    /// The transport error text (`endpoint resolves to a blocked address`, …).
    pub fn check_url(self, url: &url::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("unsupported URL scheme \"{}\"", url.scheme()));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(d)) => {
                if self.block_private
                    && (d.eq_ignore_ascii_case("localhost")
                        || d.to_ascii_lowercase().ends_with(".localhost"))
                {
                    return Err(blocked_text("a blocked address"));
                }
                return Ok(());
            }
            None => return Err("URL has no host".to_owned()),
        };
        match refusal(ip, self.block_private) {
            Some(why) => Err(blocked_text(why)),
            None => Ok(()),
        }
    }

    /// The `reqwest` resolver that applies this guard to every resolution.
    #[must_use]
    pub fn resolver(self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { guard: self })
    }
}

fn blocked_text(why: &str) -> String {
    format!("endpoint resolves to {why}")
}

/// Resolves names with the system resolver and refuses the whole answer when any address in it is
/// refused (an attacker's name that resolves to a public and a blocked address is not tried).
#[derive(Debug)]
pub struct GuardedResolver {
    guard: Guard,
}

/// The resolver's refusal, as a `std::error::Error` for reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::task::spawn_blocking(move || {
                (host.as_str(), 0).to_socket_addrs().map(Iterator::collect)
            })
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
            .map_err(|e: std::io::Error| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            if let Some(why) = addrs
                .iter()
                .find_map(|a| refusal(a.ip(), guard.block_private))
            {
                return Err(Box::new(Refused(blocked_text(why)))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(ip: &str, private: bool) -> bool {
        refusal(ip.parse().unwrap(), private).is_some()
    }

    #[test]
    fn metadata_is_refused_in_every_configuration() {
        for ip in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(blocked(ip, false), "{ip}");
            assert_eq!(
                refusal(ip.parse().unwrap(), false),
                Some("a cloud metadata address")
            );
        }
        for ip in ["127.0.0.1", "10.0.0.5", "192.168.1.2", "::1", "fd12::1"] {
            assert!(!blocked(ip, false), "{ip} stays reachable by default");
        }
    }

    #[test]
    fn every_special_purpose_range_is_refused_when_private_endpoints_are_blocked() {
        for ip in [
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(blocked(ip, true), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!blocked(ip, true), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_by_literal_host_and_scheme() {
        let open = Guard {
            block_private: false,
        };
        let strict = Guard {
            block_private: true,
        };
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(open.check_url(&url("http://127.0.0.1:3773/")).is_ok());
        assert_eq!(
            open.check_url(&url("http://169.254.169.254/latest/")),
            Err("endpoint resolves to a cloud metadata address".to_owned())
        );
        assert_eq!(
            strict.check_url(&url("http://[::ffff:10.0.0.1]/")),
            Err("endpoint resolves to a blocked address".to_owned())
        );
        assert!(strict.check_url(&url("http://localhost/")).is_err());
        assert!(strict.check_url(&url("https://example.com/a2a")).is_ok());
        assert!(open.check_url(&url("file:///etc/passwd")).is_err());
    }
}
