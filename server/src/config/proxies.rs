//! `server.trusted_proxies`: the networks whose `X-Forwarded-For` (or, with
//! `server.forwarded_header: forwarded`, `Forwarded`) header is believed (see
//! [`crate::client_ip`]). Empty by default: the TCP peer is the client.
use serde::{Deserialize, Deserializer};

/// `server.forwarded_header`: the one header the trusted proxies write. Only that one is read:
/// a proxy that appends to `X-Forwarded-For` usually passes a client's own `Forwarded` through
/// untouched (and the other way round), so believing both would let a client pick its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}
use std::net::IpAddr;

/// A list of networks (`10.0.0.0/8`, `2001:db8::/32`, or a bare address for one host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Whether `ip` is inside one of the networks (IPv4-mapped IPv6 counts as its IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses one entry; the message names the entry.
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        // `10.1.2.3/8` is almost always a typo for `10.0.0.0/8`: refuse host bits.
        if net.trunc() != net {
            return Err(format!(
                "\"{text}\" has host bits set (did you mean {}?)",
                net.trunc()
            ));
        }
        // A proxy network as wide as 0.0.0.0/0 would let every client name its own address
        // (and so pick its rate-limit and lockout key): no proxy fleet is wider than a /8.
        let widest = if net.addr().is_ipv4() { 8 } else { 32 };
        if net.prefix_len() < widest {
            return Err(format!(
                "\"{text}\" is wider than /{widest}: every client would be trusted to name its own address"
            ));
        }
        return Ok(net);
    }
    text.parse::<IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("\"{text}\" is not an IP network (e.g. 10.0.0.0/8) or address"))
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(deserializer)?;
        entries
            .iter()
            .map(|e| parse_network(e))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
            .map_err(|m| serde::de::Error::custom(format!("server.trusted_proxies: {m}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let t = TrustedProxies(vec![
            parse_network("10.0.0.0/8").unwrap(),
            parse_network("::1").unwrap(),
        ]);
        assert!(t.contains("10.9.8.7".parse().unwrap()));
        assert!(t.contains("::ffff:10.9.8.7".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert!(parse_network("10.1.2.3/8")
            .unwrap_err()
            .contains("10.0.0.0/8"));
        assert!(parse_network("nope").is_err());
        assert!(parse_network("127.0.0.1").is_ok());
    }
}
