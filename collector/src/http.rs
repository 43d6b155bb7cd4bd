//! Requests' URLs as routing reads them; responses: JSON bodies, the `{code, message, path}`
//! error shape, CORS headers.

use std::borrow::Cow;

use portrait_core::config::Config;
use serde::Serialize;
use worker::{Method, Request, Response};

/// A request's URL as the Worker reads it, split out of the runtime's serialized URL (scheme,
/// `://`, host, then a path that begins with `/`) without parsing it again: the `url` crate's
/// parse was ~1 % of the isolate's time per ingest request.
pub struct Target {
    url: String,
    /// Where the authority ends and the path begins, and where the query begins (after `?`).
    path_start: usize,
    query_start: Option<usize>,
}

impl Target {
    pub fn of(req: &Request) -> Target {
        Target::parse(req.inner().url())
    }

    fn parse(url: String) -> Target {
        let authority_start = url.find("://").map_or(0, |i| i + 3);
        let path_start = url[authority_start..].find('/').map_or(url.len(), |i| authority_start + i);
        let query_start = url[path_start..].find('?').map(|i| path_start + i + 1);
        Target { url, path_start, query_start }
    }

    /// The host without its port (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        let authority = &self.url[self.url.find("://").map_or(0, |i| i + 3)..self.path_start];
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        match host.strip_prefix('[') {
            Some(rest) => rest.find(']').map_or(host, |end| &host[..end + 2]),
            None => host.split(':').next().unwrap_or(host),
        }
    }

    /// The path, still percent-encoded, without the query or fragment.
    pub fn path(&self) -> &str {
        let end = self.query_start.map_or_else(|| self.url.find('#').unwrap_or(self.url.len()), |q| q - 1);
        &self.url[self.path_start..end]
    }

    /// The first value of the query parameter `name`, decoded as a form value (`+` is a space).
    pub fn param(&self, name: &str) -> Option<String> {
        let query = &self.url[self.query_start?..];
        let query = query.split('#').next().unwrap_or(query);
        let decode = |text: &str| {
            let text = text.replace('+', " ");
            percent_encoding::percent_decode_str(&text).decode_utf8_lossy().into_owned()
        };
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
    }

    /// The `limit` parameter of a listing: `default` when absent or empty, kept to 1–1,000
    /// (an integer too long for 64 bits too); anything but an integer is the caller's
    /// mistake, answered as such.
    pub fn limit(&self, default: u32) -> Result<u32, ApiError> {
        let Some(text) = self.param("limit").filter(|v| !v.is_empty()) else { return Ok(default) };
        let negative = text.starts_with('-');
        let digits = text.strip_prefix(['-', '+']).unwrap_or(&text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::new(400, "bad_parameter", "`limit` must be an integer").at("limit"));
        }
        let n = text.parse::<i64>().unwrap_or(if negative { i64::MIN } else { i64::MAX });
        Ok(n.clamp(1, 1000) as u32)
    }
}

/// The credentials of an `Authorization` header of `scheme` (`Bearer`, `Basic`), whose name
/// is case-insensitive (RFC 9110, 11.1).
pub fn credentials<'h>(header: &'h str, scheme: &str) -> Option<&'h str> {
    let (name, credentials) = header.trim_start().split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| credentials.trim())
}

/// An answer other than success. `code` is stable and machine-readable; `message` is for
/// people; `path` names the offending field when there is one.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: Cow<'static, str>,
    pub message: String,
    pub path: String,
    pub retry_after_seconds: Option<u64>,
    /// The methods a 405's path answers (its `Allow` header).
    pub allow: Option<&'static str>,
    /// Extra fields merged into the body (e.g. the rejected events of a batch).
    pub details: Option<Box<serde_json::Value>>,
}

/// Inside the objects an `ApiError` from an internal call is an internal failure.
impl From<ApiError> for worker::Error {
    fn from(error: ApiError) -> worker::Error {
        worker::Error::RustError(format!("{}: {}", error.code, error.message))
    }
}

impl ApiError {
    /// `message` cut to 1 KB: it may quote a request (a path, a header), which must not come
    /// back at length.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        let mut message = message.into();
        message.truncate(portrait_core::limits::cut_at_char(&message, 1024).len());
        ApiError {
            status,
            code: Cow::Borrowed(code),
            message,
            path: String::new(),
            retry_after_seconds: None,
            allow: None,
            details: None,
        }
    }

    /// 405 for `method` on a path that answers the methods `allow` (`GET, DELETE`).
    pub fn method_not_allowed(method: &Method, allow: &'static str) -> ApiError {
        let message = format!("{} is not supported here; {allow} is", method.as_ref());
        ApiError { allow: Some(allow), ..ApiError::new(405, "method_not_allowed", message) }
    }

    /// This error about the request's field `path` (a parameter, a path segment).
    pub fn at(self, path: &str) -> ApiError {
        ApiError { path: path.to_owned(), ..self }
    }

    /// A rejection decided by `core`: 413 for size limits, 400 otherwise.
    pub fn invalid(error: &portrait_core::Error) -> ApiError {
        let status = if error.kind.is_size_limit() { 413 } else { 400 };
        ApiError { path: error.path.clone(), ..ApiError::new(status, error.kind.code(), error.message()) }
    }

    /// A failure of ours or of the platform (never of the input): retryable, logged.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        worker::console_error!("internal error: {error}");
        ApiError {
            retry_after_seconds: Some(1),
            ..ApiError::new(503, "unavailable", "temporarily unavailable; retry")
        }
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let mut body = serde_json::json!({ "code": self.code, "message": self.message, "path": self.path });
        if let Some(serde_json::Value::Object(details)) = self.details.map(|d| *d) {
            body.as_object_mut().expect("an object").extend(details);
        }
        let mut response = Response::from_json(&body)?.with_status(self.status);
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().set("Retry-After", &seconds.to_string())?;
        }
        if let Some(allow) = self.allow {
            response.headers_mut().set("Allow", allow)?;
        }
        Ok(response)
    }
}

pub type ApiResult = Result<Response, ApiError>;

pub fn json_response(status: u16, body: &impl Serialize) -> ApiResult {
    Ok(Response::from_json(body).map_err(ApiError::internal)?.with_status(status))
}

/// The request's `Origin` header, if a browser sent one. `null` (a sandboxed frame, a `file:`
/// or `data:` page) is an origin like any other: a browser that cannot say which site it is
/// on is allowed only by a source that allows `*` or lists `null`.
pub fn origin(req: &Request) -> Option<String> {
    req.headers().get("Origin").ok().flatten().filter(|o| !o.is_empty())
}

/// Lets `origin` read the response (added only for origins a source allows).
pub fn allow_origin(response: &mut Response, origin: &str) -> worker::Result<()> {
    let headers = response.headers_mut();
    headers.set("Access-Control-Allow-Origin", origin)?;
    headers.set("Vary", "Origin")?;
    headers.set("Access-Control-Expose-Headers", "Retry-After")
}

/// `OPTIONS`: the JSON endpoints need a preflight (their content type and `Authorization`
/// are not CORS-safelisted). A preflight carries no key, so any source's origin qualifies;
/// the real request is then checked against its own source.
pub fn preflight(req: &Request, config: &Config) -> ApiResult {
    let Some(origin) = origin(req) else {
        return Err(ApiError::new(400, "not_a_preflight", "OPTIONS without an Origin header"));
    };
    if !config.any_source_allows(&origin) {
        return Err(ApiError::new(403, "origin_not_allowed", format!("origin {origin} is not allowed")));
    }
    let mut response = Response::empty().map_err(ApiError::internal)?.with_status(204);
    allow_origin(&mut response, &origin).map_err(ApiError::internal)?;
    let headers = response.headers_mut();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(ApiError::internal);
    set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")?;
    set("Access-Control-Allow-Headers", "Content-Type, Authorization")?;
    set("Access-Control-Max-Age", "86400")?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn a_target_reads_host_path_and_parameters_as_a_url_parser_does() {
        let cases = [
            ("http://127.0.0.1:8787/v1/b?k=demo%2Bkey&x=1", "127.0.0.1", "/v1/b", Some("demo+key")),
            ("https://collector.example/v1/b?x=1&k=a+b#frag", "collector.example", "/v1/b", Some("a b")),
            ("http://[::1]:8787/healthz", "[::1]", "/healthz", None),
            (
                "http://user:pw@localhost/v1/profiles/user_id/a%2Fb?k",
                "localhost",
                "/v1/profiles/user_id/a%2Fb",
                Some(""),
            ),
            ("https://collector.example", "collector.example", "", None),
            ("https://collector.example/p#k=frag", "collector.example", "/p", None),
        ];
        for (url, host, path, key) in cases {
            let target = Target::parse(url.to_owned());
            assert_eq!(
                (target.host(), target.path(), target.param("k").as_deref()),
                (host, path, key),
                "{url}"
            );
        }
    }
}
