//! The parts of a URL the SDK reads. Not a full URL parser: the browser hands us URLs it has
//! already normalised (`location.href`, `a.href`, `document.referrer`); this only splits them.

use super::concat;

/// The host of an absolute URL, lower-cased, without user info or port; `None` for a
/// relative URL or one without a host (`mailto:`, `javascript:`).
pub fn host(url: &str) -> Option<String> {
    let rest = after_scheme(url)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The path of an absolute or root-relative URL: what `location.pathname` would be.
pub fn path(url: &str) -> &str {
    // The host ends at the first `/`, `?` or `#` (`https://a.example?q=/x` has the path `/`).
    let after_host =
        after_scheme(url).map_or(url, |rest| rest.find(['/', '?', '#']).map_or("", |i| &rest[i..]));
    let path = after_host.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() { "/" } else { path }
}

/// What follows `scheme://` in an absolute URL. (Split by hand: a string pattern would bring
/// the standard library's substring search into the SDK's wasm, ~1.7 KB.)
fn after_scheme(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once(':')?;
    let valid =
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    rest.strip_prefix("//").filter(|_| valid)
}

/// The query string without `?` and without the fragment; `""` when there is none.
pub fn query(url: &str) -> &str {
    let without_fragment = url.split('#').next().unwrap_or("");
    without_fragment.split_once('?').map_or("", |(_, query)| query)
}

/// The query's `key=value` pairs, percent-decoded (`+` is a space), in order.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.trim_start_matches('?').split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key), percent_decode(value))
    })
}

/// Decodes `%XX` escapes and `+`; an invalid escape is kept as it is, and invalid UTF-8 is
/// replaced, so any input gives a string.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            // Two hex digits, nothing else (`%-1` stays as written).
            b'%' => bytes.get(i + 1..i + 3).and_then(|hex| u8::try_from(super::digits(hex, 16)?).ok()),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    // As `String::from_utf8_lossy`, whose code the SDK would carry only for this.
    let mut text = String::with_capacity(out.len());
    let mut rest = out.as_slice();
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                return text;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                text.push('\u{FFFD}');
                rest = &after[error.error_len().unwrap_or(after.len())..];
            }
        }
    }
}

/// Percent-encodes every byte but the unreserved ones (`A-Z a-z 0-9 - _ . ~`): safe in a
/// cookie value or a query; [`percent_decode`] reverses it.
pub fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match is_unreserved(byte) {
            true => out.push(char::from(byte)),
            false => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    out
}

/// The length of [`percent_encode`]'s result, without making it.
pub fn percent_encoded_len(text: &str) -> usize {
    text.bytes().map(|byte| if is_unreserved(byte) { 1 } else { 3 }).sum()
}

fn is_unreserved(byte: u8) -> bool {
    matches!(byte, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~')
}

/// The lower-cased file extension of the URL's last path segment, if it has one.
pub fn extension(url: &str) -> Option<String> {
    let last = path(url).rsplit('/').next()?;
    let (stem, extension) = last.rsplit_once('.')?;
    let plausible = !stem.is_empty() && (1..=5).contains(&extension.len());
    plausible.then(|| extension.to_ascii_lowercase())
}

/// Whether `host` is `site` or one of its subdomains (`www.example.com` is within `example.com`).
/// (`as_bytes().contains`, not `str::contains(char)`: the latter links the standard library's
/// substring search into the SDK's wasm for its non-ASCII case.)
pub fn same_site(host: &str, site: &str) -> bool {
    let strip = |h: &str| h.strip_prefix("www.").unwrap_or(h).to_owned();
    let (host, site) = (strip(host), strip(site));
    host == site || is_subdomain(&host, &site) || is_subdomain(&site, &host)
}

/// The site a page on `host` is part of: its cookie domain (`acme.io` for `docs.acme.io`), in
/// any case and with or without a leading dot, when `host` is within it; else the host (no
/// cookie domain yet, or a configured one the page is not on: a staging copy of the site).
pub fn site(host: &str, cookie_domain: Option<&str>) -> String {
    let domain = cookie_domain.map(|d| d.trim_start_matches('.').to_ascii_lowercase());
    domain.filter(|d| host == d || is_subdomain(host, d)).unwrap_or_else(|| host.to_owned())
}

/// Whether `host` is a subdomain of `site` (`docs.example.com` of `example.com`; never of a
/// single label).
pub fn is_subdomain(host: &str, site: &str) -> bool {
    site.as_bytes().contains(&b'.') && host.strip_suffix(site).is_some_and(|rest| rest.ends_with('.'))
}

/// Whether `href` is a different page from `current` (an SPA navigation). A new fragment
/// alone makes one only to or from a hash route (`#/pricing`, `#!/pricing`): `#faq` is a place
/// on the same page.
pub fn is_new_page(current: &str, href: &str) -> bool {
    let ((page, fragment), (current_page, current_fragment)) =
        (split_fragment(href), split_fragment(current));
    href != current && (page != current_page || is_route(fragment) || is_route(current_fragment))
}

/// Whether `href` has another path or hash route than `current`: what makes a `replaceState`
/// a new page ([`is_new_page`] for the rest; a query rewritten in place is the same page).
pub fn is_new_path(current: &str, href: &str) -> bool {
    let route = |url| {
        let fragment = split_fragment(url).1;
        // A hash route's own query (`#/search?q=a`) is rewritten in place like the page's.
        let route = if is_route(fragment) { fragment.split('?').next().unwrap_or("") } else { "" };
        (path(url), route)
    };
    route(current) != route(href)
}

/// A page's URL and path as analytics.js reports them: its canonical link's when it has one
/// (the page's query added when the link has none), else the location's, in either case
/// without an anchor. A hash route (`#/pricing`) is part of the page ([`is_new_page`]): the
/// location is kept whole, whatever the canonical link says.
pub fn page_location<'a>(
    href: &'a str,
    path: &'a str,
    search: &str,
    canonical: Option<&'a str>,
) -> (String, &'a str) {
    let (page, fragment) = split_fragment(href);
    if is_route(fragment) {
        return (href.to_owned(), path);
    }
    match canonical.map(|c| split_fragment(c).0).filter(|c| host(c).is_some()) {
        Some(canonical) if canonical.as_bytes().contains(&b'?') => {
            (canonical.to_owned(), self::path(canonical))
        }
        Some(canonical) => (concat(&[canonical, search]), self::path(canonical)),
        None => (page.to_owned(), path),
    }
}

/// Whether a fragment is a hash route (`#/pricing`, `#!/pricing`), not an anchor (`#faq`).
/// The root route (`#/`, `#!/`) is the page itself: a hash router writes it on landing
/// (`/` → `/#/`), and that is no second page.
fn is_route(fragment: &str) -> bool {
    (fragment.starts_with("#/") || fragment.starts_with("#!")) && !matches!(fragment, "#/" | "#!" | "#!/")
}

/// `url` before its fragment, and the fragment with its `#` (empty if none).
fn split_fragment(url: &str) -> (&str, &str) {
    url.split_at(url.as_bytes().iter().position(|&b| b == b'#').unwrap_or(url.len()))
}

/// The domains a cookie of a page on `host` could be set on, broadest first: `co.uk`,
/// `example.co.uk`, … up to the host itself (the browser refuses public suffixes; trying is
/// how a page tells). None for IP addresses and single-label hosts.
pub fn cookie_domains(host: &str) -> impl Iterator<Item = String> + '_ {
    let is_ip = host.as_bytes().contains(&b':') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let dots: Vec<usize> = match is_ip {
        true => Vec::new(),
        false => host.bytes().enumerate().filter(|&(_, b)| b == b'.').map(|(i, _)| i).collect(),
    };
    // Each domain is what follows a dot, the last one's excepted (a top-level domain alone).
    let whole = (!dots.is_empty()).then(|| host.to_owned());
    dots.into_iter().rev().skip(1).map(move |dot| host[dot + 1..].to_owned()).chain(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls_the_way_location_does() {
        let url = "https://user:pw@Shop.Example.com:8443/a/b.PDF?x=1&y=%C3%A9+z#frag";
        assert_eq!(host(url).as_deref(), Some("shop.example.com"));
        assert_eq!(path(url), "/a/b.PDF");
        assert_eq!(query(url), "x=1&y=%C3%A9+z");
        assert_eq!(extension(url).as_deref(), Some("pdf"));
        let pairs: Vec<_> = query_pairs(query(url)).collect();
        assert_eq!(pairs, [("x".into(), "1".into()), ("y".into(), "é z".into())]);
        assert_eq!(host("http://[::1]:8080/"), Some("::1".into()));
        assert_eq!(host("/relative"), None);
        assert_eq!(host("mailto:a@b.c"), None);
        assert_eq!(path("https://example.com"), "/");
        assert_eq!(path("/docs?q=1"), "/docs");
        assert_eq!(path("https://example.com?q=/cars/used"), "/", "a query right after the host");
        assert_eq!(path("https://example.com#/cars"), "/");
        assert_eq!(extension("https://example.com/blog/post"), None);
        assert_eq!(extension("https://example.com/.hidden"), None);
    }

    #[test]
    fn percent_encoding_round_trips() {
        for text in ["plain-id_1.2~", "a b;c=d,é😀%", ""] {
            let encoded = percent_encode(text);
            assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)), "{encoded}");
            assert_eq!(percent_decode(&encoded), text);
            assert_eq!(percent_encoded_len(text), encoded.len());
        }
    }

    #[test]
    fn percent_decoding_never_fails() {
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        // Not two hex digits: kept as written (the `+` is a space, as everywhere in a query).
        assert_eq!(percent_decode("%-1%+1"), "%-1% 1");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
        // Invalid UTF-8 is replaced as `String::from_utf8_lossy` replaces it.
        let invalid: [&[u8]; 5] =
            [b"a\xffb\xe2\x82", b"\xf0\x9f\x98", b"\xc3\xa9\xc3", b"\xed\xa0\x80x", b"\x80\x80"];
        for bytes in invalid {
            let escaped: String = bytes.iter().map(|b| concat(&["%", &format!("{b:02X}")])).collect();
            assert_eq!(percent_decode(&escaped), String::from_utf8_lossy(bytes), "{bytes:?}");
        }
        assert_eq!(percent_decode("a%20b"), "a b");
    }

    #[test]
    fn new_pages_are_new_paths_queries_and_hash_routes_not_anchors() {
        let base = "https://example.com/docs?tab=2";
        for (current, href, new) in [
            (base, base, false),
            (base, "https://example.com/docs?tab=3", true),
            (base, "https://example.com/pricing", true),
            (base, "https://example.com/docs?tab=2#faq", false),
            ("https://example.com/docs?tab=2#faq", "https://example.com/docs?tab=2#setup", false),
            ("https://example.com/docs?tab=2#faq", base, false),
            (base, "https://example.com/docs?tab=2#/billing", true),
            (base, "https://example.com/docs?tab=2#!/billing", true),
            ("https://example.com/docs?tab=2#/billing", base, true),
            ("https://example.com/docs?tab=2#/billing", "https://example.com/docs?tab=2#faq", true),
            ("https://example.com/a#faq", "https://example.com/b#faq", true),
            // A hash router's root route, written on landing, is the page itself.
            ("https://example.com/", "https://example.com/#/", false),
            ("https://example.com/", "https://example.com/#!/", false),
            ("https://example.com/#/", "https://example.com/#/pricing", true),
        ] {
            assert_eq!(is_new_page(current, href), new, "{current} → {href}");
        }
    }

    #[test]
    fn page_locations_are_canonical_and_without_anchors() {
        let (href, path, search) = ("https://example.com/docs?tab=2#faq", "/docs", "?tab=2");
        for (canonical, url, want_path) in [
            (None, "https://example.com/docs?tab=2", "/docs"),
            (Some("https://example.com/guide"), "https://example.com/guide?tab=2", "/guide"),
            (Some("https://example.com/guide#top"), "https://example.com/guide?tab=2", "/guide"),
            (Some("https://example.com/guide?v=1"), "https://example.com/guide?v=1", "/guide"),
            (Some("https://example.com/docs?tab=2#faq"), "https://example.com/docs?tab=2", "/docs"),
            (Some("https://example.com"), "https://example.com?tab=2", "/"),
            // Not an absolute URL (the browser resolves a link's `href`; a broken one is ignored).
            (Some(""), "https://example.com/docs?tab=2", "/docs"),
        ] {
            assert_eq!(
                page_location(href, path, search, canonical),
                (url.to_owned(), want_path),
                "{canonical:?}"
            );
        }
        let route = "https://example.com/app#/billing";
        for canonical in [None, Some("https://example.com/app")] {
            assert_eq!(page_location(route, "/app", "", canonical), (route.to_owned(), "/app"));
        }
    }

    #[test]
    fn a_query_rewritten_in_place_keeps_the_page() {
        let landing = "https://acme.io/pricing?utm_source=google&gclid=X";
        assert!(!is_new_path(landing, "https://acme.io/pricing"));
        assert!(!is_new_path("https://acme.io/search?q=s", "https://acme.io/search?q=sh#results"));
        assert!(is_new_path("https://acme.io/pricing/", "https://acme.io/pricing"));
        assert!(is_new_path("https://acme.io/app#/a?x=1", "https://acme.io/app#/b?x=1"));
        assert!(!is_new_path("https://acme.io/app#/a", "https://acme.io/app?x=1#/a"));
        assert!(!is_new_path("https://acme.io/#/search?q=a", "https://acme.io/#/search?q=ab"));
    }

    #[test]
    fn cookie_domains_run_from_the_broadest_to_the_host() {
        let domains = |host| cookie_domains(host).collect::<Vec<_>>();
        assert_eq!(
            domains("www.shop.example.co.uk"),
            ["co.uk", "example.co.uk", "shop.example.co.uk", "www.shop.example.co.uk"]
        );
        assert_eq!(domains("example.com"), ["example.com"]);
        for host in ["localhost", "127.0.0.1", "::1", ""] {
            assert!(domains(host).is_empty(), "{host}");
        }
    }

    #[test]
    fn a_site_is_the_cookie_domain_the_page_is_on() {
        assert_eq!(site("docs.acme.io", Some("acme.io")), "acme.io");
        assert_eq!(site("docs.acme.io", Some(".Acme.IO")), "acme.io");
        assert_eq!(site("acme.io", Some("acme.io")), "acme.io");
        assert_eq!(site("docs.acme.io", None), "docs.acme.io");
        assert_eq!(site("docs.acme.io", Some("acme.example")), "docs.acme.io", "not the page's");
        assert_eq!(site("notacme.io", Some("acme.io")), "notacme.io");
    }

    #[test]
    fn same_site_ignores_www_and_accepts_subdomains() {
        assert!(same_site("www.example.com", "example.com"));
        assert!(same_site("docs.example.com", "example.com"));
        assert!(!same_site("example.com.evil.net", "example.com"));
        assert!(!same_site("notexample.com", "example.com"));
    }
}
