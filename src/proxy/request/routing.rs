//! Which part of the proxy a request is for: the API on `manage.<domain>`,
//! a session on `<alias>.<domain>`, or nothing of ours. Routing allocates
//! nothing and gives every request exactly one host.

use http::Request;
use http::header::HOST;

/// Which part of the proxy a Host belongs to.
pub(super) enum Target<'a> {
    Api,
    Alias(&'a str),
    Other,
    NoHost,
    /// [`AmbiguousHost`].
    Ambiguous,
}

/// A request that names its host more than once, differently, or in bytes
/// that are no host: it gets 400, since the proxy and the backend could
/// read it as meant for two different sites.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AmbiguousHost;

/// The one host a request names: the `Host` header, or the URI authority
/// (HTTP/2 `:authority`, an HTTP/1.1 absolute-form target); where both are
/// there they must agree. `Ok(None)`: no host at all.
pub(super) fn request_host<B>(req: &Request<B>) -> Result<Option<&str>, AmbiguousHost> {
    let mut fields = req.headers().get_all(HOST).iter();
    let header = match (fields.next(), fields.next()) {
        (Some(_), Some(_)) => return Err(AmbiguousHost),
        (Some(value), None) => Some(value.to_str().map_err(|_| AmbiguousHost)?),
        (None, _) => None,
    };
    let authority = req.uri().authority().map(|a| a.as_str());
    match (header, authority) {
        (Some(header), Some(authority)) if !header.eq_ignore_ascii_case(authority) => {
            Err(AmbiguousHost)
        }
        (Some(host), _) | (None, Some(host)) => Ok(Some(host)),
        (None, None) => Ok(None),
    }
}

/// Classifies `host` (any case, optional port, optional trailing dot) against
/// `domain` (lower case). The alias is lower-cased into `buf`, so the lookup
/// allocates nothing.
pub(super) fn classify<'b>(domain: &str, host: &str, buf: &'b mut [u8; 64]) -> Target<'b> {
    let host = if host.starts_with('[') {
        return Target::Other;
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() <= domain.len() + 1 {
        return Target::Other;
    }
    let split = host.len() - domain.len();
    if !host.is_char_boundary(split) {
        return Target::Other;
    }
    let (label, rest) = host.split_at(split);
    if !rest.eq_ignore_ascii_case(domain) || !label.ends_with('.') {
        return Target::Other;
    }
    let label = &label[..label.len() - 1];
    if label.is_empty()
        || label.len() > buf.len()
        || !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Target::Other;
    }
    if label.eq_ignore_ascii_case(crate::api::MANAGE_SUBDOMAIN) {
        return Target::Api;
    }
    let out = &mut buf[..label.len()];
    out.copy_from_slice(label.as_bytes());
    out.make_ascii_lowercase();
    match std::str::from_utf8(out) {
        Ok(alias) => Target::Alias(alias),
        Err(_) => Target::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias_of(host: &str) -> Option<String> {
        let mut buf = [0u8; 64];
        match classify("jrps.localhost", host, &mut buf) {
            Target::Alias(a) => Some(a.to_owned()),
            Target::Api => Some("<api>".into()),
            Target::Other | Target::NoHost | Target::Ambiguous => None,
        }
    }

    #[test]
    fn host_forms() {
        for host in [
            "amber-otter-lagoon.jrps.localhost",
            "AMBER-Otter-lagoon.JRPS.localhost",
            "amber-otter-lagoon.jrps.localhost:8443",
            "amber-otter-lagoon.jrps.localhost.",
            "amber-otter-lagoon.jrps.localhost.:443",
        ] {
            assert_eq!(
                alias_of(host).as_deref(),
                Some("amber-otter-lagoon"),
                "{host}"
            );
        }
        assert_eq!(
            alias_of("Manage.jrps.localhost:1").as_deref(),
            Some("<api>")
        );
        for host in [
            "jrps.localhost",
            ".jrps.localhost",
            "a.b.jrps.localhost",
            "xjrps.localhost",
            "evil.com",
            "[::1]:80",
            "amber.jrps.localhost.evil.com",
            "ééé.jrps.localhost",
            "xxéjrps.localhost",
        ] {
            assert_eq!(alias_of(host), None, "{host}");
        }
    }

    fn host_of(uri: &str, hosts: &[&str]) -> Result<Option<String>, AmbiguousHost> {
        let mut builder = Request::builder().uri(uri);
        for host in hosts {
            builder = builder.header(HOST, *host);
        }
        let req = builder.body(()).unwrap();
        request_host(&req).map(|h| h.map(str::to_owned))
    }

    #[test]
    fn one_host_per_request() {
        let alias = "a-b-c.jrps.localhost";
        assert_eq!(host_of("/", &[alias]), Ok(Some(alias.into())));
        assert_eq!(
            host_of(&format!("https://{alias}/x"), &[]),
            Ok(Some(alias.into()))
        );
        assert_eq!(
            host_of(&format!("https://{alias}/x"), &["A-B-C.jrps.localhost"]),
            Ok(Some("A-B-C.jrps.localhost".into()))
        );
        assert_eq!(host_of("/", &[]), Ok(None));
        assert_eq!(host_of("/", &[alias, "evil.example"]), Err(AmbiguousHost));
        assert_eq!(host_of("/", &[alias, alias]), Err(AmbiguousHost));
        assert_eq!(
            host_of("https://evil.example/x", &[alias]),
            Err(AmbiguousHost)
        );
    }
}
