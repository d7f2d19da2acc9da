//! How an API call is answered: a refusal with its [`Failure`], a JSON or
//! text body, and the request body read within its limit and parsed.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::proxy::answers::failure::Failure;
use crate::proxy::shared::Shared;
use crate::proxy::store::StoreError;

/// A refused call: which [`Failure`] and a human explanation.
pub(super) struct Refusal(pub(super) Failure, pub(super) String);

impl Refusal {
    pub(super) fn new(failure: Failure, detail: impl Into<String>) -> Refusal {
        Refusal(failure, detail.into())
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Refusal {
        match error {
            StoreError::NotFound => Refusal::new(Failure::NotFound, "no such session"),
            // Logged once per outage by the store.
            StoreError::Unavailable(_) => Refusal::new(
                Failure::Unavailable,
                "the state database is unreachable; try again shortly",
            ),
            other => {
                tracing::error!(error = %other, "state database");
                Refusal::new(Failure::Internal, "the proxy could not save the change")
            }
        }
    }
}

/// The most of an oversized API body read just to answer 413 politely.
pub(super) const DRAIN_LIMIT: usize = 1024 * 1024;

pub(super) type ApiResult = Result<Response<Full<Bytes>>, Refusal>;

pub(super) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn text(
    status: StatusCode,
    body: String,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn no_content() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Reads at most `max_api_body_bytes`: 413 when larger.
pub(super) async fn read_body(
    shared: &Shared,
    head: &http::request::Parts,
    body: Incoming,
) -> Result<Bytes, Refusal> {
    let max = shared.config.limits.max_api_body_bytes;
    let too_large = || {
        Refusal::new(
            Failure::BodyTooLarge,
            format!("bodies are limited to {max} bytes"),
        )
    };
    let declared = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.parse::<usize>().ok());
    if let Some(length) = declared
        && length > max
    {
        // A client still sending gets a broken pipe instead of our answer
        // if we close on it; read (and drop) a moderate excess first so it
        // sees the 413. Anything bigger is cut off.
        if length <= DRAIN_LIMIT {
            let _ = Limited::new(body, DRAIN_LIMIT).collect().await;
        }
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(Refusal::new(
            Failure::BadRequest,
            "the body could not be read",
        )),
    }
}

/// The body as JSON: 400 when it is not JSON, 422 when JSON of the wrong
/// shape.
pub(super) fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|error| {
        let failure = match error.classify() {
            serde_json::error::Category::Data => Failure::InvalidField,
            _ => Failure::MalformedJson,
        };
        Refusal::new(failure, error.to_string())
    })
}

/// Rejects path segments that cannot be aliases before any lookup.
pub(super) fn known_alias(segment: &str) -> Result<String, Refusal> {
    let alias = segment.to_ascii_lowercase();
    if crate::api::looks_like_alias(&alias) {
        Ok(alias)
    } else {
        Err(Refusal::new(Failure::NotFound, "no such session"))
    }
}
