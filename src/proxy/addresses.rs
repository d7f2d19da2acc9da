//! Client and backend addresses as the allow-lists and budgets compare them.

use std::net::IpAddr;

use ipnet::IpNet;

/// Whether `ip` (in its canonical form) is in one of `list`'s networks.
pub fn cidrs_contain(list: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical_ip(ip);
    list.iter().any(|net| net.contains(&ip))
}

/// An IPv4 peer on a dual-stack socket shows up as `::ffff:a.b.c.d`; the
/// allow-lists are written with IPv4 CIDRs, so compare the IPv4 form.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
