//! The gateway's one error type and the ONE place it becomes a JSON-RPC error and an HTTP status.
//!
//! Every phase of the request path (see `proxy`) returns `Result<_, GatewayError>`. An error records
//! *what* went wrong ([`ErrorKind`]), *whose fault* it was ([`Side`]), and whether retrying the same
//! request is safe. Messages are static where possible (no allocation on the error path for the common
//! cases) and never blame the client for a downstream's fault.
//!
//! [`GatewayError::to_jsonrpc`] and [`GatewayError::http_status`] are the single mapping used by every
//! front transport; nothing else invents error codes.

use std::borrow::Cow;
use std::fmt;

use crate::wire::code;

/// Whose fault an error is: decides the wording, the HTTP status class and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller sent something wrong (bad JSON, unknown session, unknown tool).
    Client,
    /// A downstream server failed, timed out or answered garbage.
    Downstream,
    /// The gateway itself failed (a bug or resource exhaustion).
    Internal,
}

/// What went wrong. Each kind has exactly one JSON-RPC code and one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The body is not valid JSON (-32700, HTTP 400).
    Parse,
    /// Valid JSON but not a valid JSON-RPC message (-32600, HTTP 400).
    InvalidRequest,
    /// The method (or the named tool/prompt) does not exist (-32601 / -32602).
    MethodNotFound,
    /// Parameters are missing or of the wrong type (-32602).
    InvalidParams,
    /// A resource URI that no server owns (-32002).
    ResourceNotFound,
    /// The request body exceeds `gateway.limits.max_body_bytes` (HTTP 413).
    PayloadTooLarge,
    /// The `Mcp-Session-Id` is unknown, forged or ended (HTTP 404).
    SessionNotFound,
    /// A request other than `initialize` arrived without a session id (HTTP 400).
    SessionRequired,
    /// `MCP-Protocol-Version` names a version the gateway does not speak (HTTP 400).
    UnsupportedVersion,
    /// The `Origin` header is not allowed (HTTP 403).
    ForbiddenOrigin,
    /// The `Host` header is not allowed (HTTP 421).
    MisdirectedHost,
    /// The `Accept` header rules out every representation the gateway could send (HTTP 406).
    NotAcceptable,
    /// The policy phase refused the call.
    Forbidden,
    /// The owning downstream server is down or unreachable.
    DownstreamUnavailable,
    /// The downstream did not answer within the call timeout.
    DownstreamTimeout,
    /// The downstream answered something that is not a valid MCP reply.
    DownstreamProtocol,
    /// The downstream session expired during a call that is not safe to retry.
    DownstreamSessionExpired,
    /// The gateway is shutting down and takes no new work.
    ShuttingDown,
    /// A gateway bug or resource exhaustion.
    Internal,
}

/// An error on the request path. Cheap to build: the message is usually `&'static str`.
#[derive(Debug, Clone)]
pub struct GatewayError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Human-readable detail sent to the caller.
    pub message: Cow<'static, str>,
}

impl GatewayError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
        }
    }

    /// Whose fault the error is.
    pub fn side(&self) -> Side {
        use ErrorKind::*;
        match self.kind {
            DownstreamUnavailable
            | DownstreamTimeout
            | DownstreamProtocol
            | DownstreamSessionExpired => Side::Downstream,
            Internal | ShuttingDown => Side::Internal,
            _ => Side::Client,
        }
    }

    /// Whether sending the same request again could succeed without the caller changing it.
    pub fn retry_safe(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::DownstreamUnavailable | ErrorKind::ShuttingDown
        )
    }

    /// The JSON-RPC error code for this error.
    pub fn jsonrpc_code(&self) -> i32 {
        use ErrorKind::*;
        match self.kind {
            Parse => code::PARSE_ERROR,
            InvalidRequest | PayloadTooLarge => code::INVALID_REQUEST,
            MethodNotFound => code::METHOD_NOT_FOUND,
            InvalidParams => code::INVALID_PARAMS,
            ResourceNotFound => code::RESOURCE_NOT_FOUND,
            SessionNotFound | SessionRequired | UnsupportedVersion | ForbiddenOrigin
            | MisdirectedHost | NotAcceptable | Forbidden => code::INVALID_REQUEST,
            DownstreamUnavailable | ShuttingDown => code::DOWNSTREAM_UNAVAILABLE,
            DownstreamTimeout => code::DOWNSTREAM_TIMEOUT,
            DownstreamProtocol | DownstreamSessionExpired => code::DOWNSTREAM_PROTOCOL,
            Internal => code::INTERNAL_ERROR,
        }
    }

    /// The HTTP status a front transport answers with when this error ends the exchange.
    ///
    /// Errors about one call inside a valid exchange (unknown tool, downstream timeout) are JSON-RPC
    /// errors in a 200 reply: the HTTP exchange itself succeeded.
    pub fn http_status(&self) -> u16 {
        use ErrorKind::*;
        match self.kind {
            Parse | InvalidRequest | SessionRequired | UnsupportedVersion => 400,
            PayloadTooLarge => 413,
            SessionNotFound => 404,
            ForbiddenOrigin => 403,
            MisdirectedHost => 421,
            NotAcceptable => 406,
            ShuttingDown => 503,
            _ => 200,
        }
    }

    /// Encodes the JSON-RPC error response for a request whose raw id token is `id` (`None` = null).
    pub fn to_jsonrpc(&self, id: Option<&[u8]>) -> bytes::Bytes {
        crate::wire::encode::error_response(id, self.jsonrpc_code(), &self.message, None)
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for GatewayError {}

/// Shorthand for the request path's results.
pub type Result<T> = std::result::Result<T, GatewayError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downstream_faults_are_not_blamed_on_the_client() {
        let e = GatewayError::new(ErrorKind::DownstreamTimeout, "server 'a' timed out");
        assert_eq!(e.side(), Side::Downstream);
        assert_eq!(e.http_status(), 200);
        assert_eq!(e.jsonrpc_code(), code::DOWNSTREAM_TIMEOUT);
    }

    #[test]
    fn exchange_level_errors_map_to_http_statuses() {
        let cases = [
            (ErrorKind::Parse, 400, code::PARSE_ERROR),
            (ErrorKind::PayloadTooLarge, 413, code::INVALID_REQUEST),
            (ErrorKind::SessionNotFound, 404, code::INVALID_REQUEST),
            (ErrorKind::ForbiddenOrigin, 403, code::INVALID_REQUEST),
            (ErrorKind::MisdirectedHost, 421, code::INVALID_REQUEST),
        ];
        for (kind, status, rpc) in cases {
            let e = GatewayError::new(kind, "x");
            assert_eq!(
                (e.http_status(), e.jsonrpc_code()),
                (status, rpc),
                "{kind:?}"
            );
        }
    }
}
