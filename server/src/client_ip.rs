//! Which address is the client: the TCP peer, or — only when the peer is one of
//! `server.trusted_proxies` — the address the proxies recorded.
//!
//! Why the right-most untrusted hop: each proxy appends the address it received the request
//! from, so the list reads `client, proxy1, proxy2` with the peer being the last proxy. Only
//! entries appended by proxies we trust are facts; anything to the left of the first
//! untrusted one could have been written by the client. So walk from the right, skipping
//! trusted proxies, and take the first address that is not one. A hop that cannot be parsed
//! (`unknown`, an obfuscated `_name`, garbage) ends the walk at the last trusted hop: a
//! client must not be able to pick its key by sending junk. Only the one header named by
//! `server.forwarded_header` is read (`X-Forwarded-For` by default, or RFC 7239 `Forwarded`):
//! a proxy writes one of them and passes the other through from the client.
use crate::config::{ForwardedHeader, TrustedProxies};
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The client address of a request whose TCP peer is `peer`.
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let hops = match header {
        ForwardedHeader::XForwardedFor => x_forwarded_for_hops(headers),
        ForwardedHeader::Forwarded => forwarded_hops(headers).unwrap_or_default(),
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = ip.to_canonical();
                if !trusted.contains(client) {
                    return client;
                }
            }
            None => return client,
        }
    }
    client
}

/// The `for=` values of every `Forwarded` header, in order; `None` when there is none.
/// Each entry is `None` when it is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    let mut seen = false;
    for value in headers.get_all("forwarded") {
        seen = true;
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in text.split(',') {
            let for_value = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            });
            hops.push(for_value.and_then(parse_node));
        }
    }
    seen.then_some(hops)
}

/// The entries of every `X-Forwarded-For` header, in order.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(text) => hops.extend(text.split(',').map(|h| parse_node(h.trim()))),
            Err(_) => hops.push(None),
        }
    }
    hops
}

/// `1.2.3.4`, `1.2.3.4:80`, `"[2001:db8::1]:4711"`, `2001:db8::1` → the address.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = text.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    let inner = text.strip_prefix('[')?;
    let end = inner.find(']')?;
    inner[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::proxies::parse_network;
    use axum::http::HeaderValue;

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const FWD: ForwardedHeader = ForwardedHeader::Forwarded;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(nets.iter().map(|n| parse_network(n).unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_sends() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        assert_eq!(
            resolve(ip("9.9.9.9"), &h, &trusted(&[]), XFF),
            ip("9.9.9.9")
        );
        assert_eq!(
            resolve(ip("9.9.9.9"), &h, &trusted(&["10.0.0.0/8"]), XFF),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn right_most_untrusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        // The client forged 6.6.6.6 on the left; the proxy appended the real 5.5.5.5.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 5.5.5.5, 10.0.0.2")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t, XFF), ip("5.5.5.5"));
        // Two headers are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "5.5.5.5"),
        ]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t, XFF), ip("5.5.5.5"));
        // Junk ends the walk at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "5.5.5.5, garbage, 10.0.0.3")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t, XFF), ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(
            resolve(ip("10.0.0.1"), &HeaderMap::new(), &t, XFF),
            ip("10.0.0.1")
        );
        // IPv4-mapped peers count as IPv4.
        let h = headers(&[("x-forwarded-for", "5.5.5.5")]);
        assert_eq!(resolve(ip("::ffff:10.0.0.1"), &h, &t, XFF), ip("5.5.5.5"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let t = trusted(&["10.0.0.0/8"]);
        // A proxy that appends X-Forwarded-For passes a client's own Forwarded through: with
        // the default, that Forwarded is ignored.
        let h = headers(&[("forwarded", "for=9.9.8.1"), ("x-forwarded-for", "5.5.5.5")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t, XFF), ip("5.5.5.5"));
        // With forwarded_header: forwarded, X-Forwarded-For is the one ignored.
        let h = headers(&[
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
            ),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t, FWD), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=unknown"), ("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t, FWD), ip("10.0.0.1"));
    }

    #[test]
    fn networks_wider_than_a_slash_8_are_refused() {
        for wide in ["0.0.0.0/0", "::/0", "10.0.0.0/7", "2001::/16"] {
            assert!(parse_network(wide).is_err(), "{wide}");
        }
        for fine in ["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32", "127.0.0.1"] {
            assert!(parse_network(fine).is_ok(), "{fine}");
        }
    }
}
