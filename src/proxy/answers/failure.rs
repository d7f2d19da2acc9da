//! The one table from "what went wrong" to an HTTP status. Every answer the
//! proxy gives itself (instead of the backend's) names a [`Failure`]; pages
//! and API error bodies are built from it elsewhere, the status only here.

use http::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    // Public traffic (HTML pages).
    /// No session with this alias, or a Host that is not ours.
    UnknownAlias,
    /// Known session, Jupyter not registered yet.
    Starting,
    /// The session ended or expired.
    Ended,
    /// No valid `?token=` and no valid cookie.
    NoCredentials,
    /// An unsafe request or a WebSocket handshake sent by a page of
    /// another origin (another alias, say) with this session's cookie.
    CrossOrigin,
    /// The backend refused, reset or timed out.
    BackendUnreachable,
    /// The request could not be understood (bad Host, bad path).
    BadRequest,
    /// The proxy is shutting down or out of some resource.
    Unavailable,

    // API (JSON `{"error", "detail"}`).
    MalformedJson,
    InvalidField,
    Forbidden,
    NotFound,
    Conflict,
    BodyTooLarge,
    MethodNotAllowed,
    /// A quota of live sessions is full.
    TooManySessions,
    /// `identity = "munge"` and no credential, or one munge refuses.
    Unauthenticated,
    Internal,
}

impl Failure {
    pub fn status(self) -> StatusCode {
        use Failure::*;
        match self {
            // An ended session's route is gone like any unknown one (the
            // contract: after `jrps down` the URL answers 404); its page
            // still says it ended, which is what the user needs to know.
            UnknownAlias | NotFound | Ended => StatusCode::NOT_FOUND,
            Starting | Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            NoCredentials | CrossOrigin | Forbidden => StatusCode::FORBIDDEN,
            Unauthenticated => StatusCode::UNAUTHORIZED,
            BackendUnreachable => StatusCode::BAD_GATEWAY,
            BadRequest | MalformedJson => StatusCode::BAD_REQUEST,
            InvalidField => StatusCode::UNPROCESSABLE_ENTITY,
            Conflict => StatusCode::CONFLICT,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            TooManySessions => StatusCode::TOO_MANY_REQUESTS,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds a client should wait before asking again (`Retry-After`),
    /// for the failures that pass by themselves.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            // Sessions end when their jobs do; a minute is a fair guess.
            Failure::TooManySessions => Some(60),
            _ => None,
        }
    }

    /// The machine-readable `error` field of an API error body.
    pub fn code(self) -> &'static str {
        use Failure::*;
        match self {
            UnknownAlias | NotFound => "not_found",
            Starting => "starting",
            Ended => "ended",
            NoCredentials | CrossOrigin | Forbidden => "forbidden",
            BackendUnreachable => "bad_gateway",
            BadRequest => "bad_request",
            Unavailable => "unavailable",
            MalformedJson => "malformed_json",
            InvalidField => "invalid_field",
            Conflict => "conflict",
            BodyTooLarge => "body_too_large",
            MethodNotAllowed => "method_not_allowed",
            TooManySessions => "too_many_sessions",
            Unauthenticated => "unauthenticated",
            Internal => "internal",
        }
    }
}
