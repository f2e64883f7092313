//! Protocol names as typed constants: MCP method names, JSON-RPC error codes, envelope keys.
//!
//! Role: the single place where protocol strings and numbers are spelled. Every other module
//! matches against these constants instead of scattering literals, so a typo is a compile
//! error and a grep for a constant finds every use.
//!
//! Invariants: method names are exactly the MCP spelling (case-sensitive, compared byte-wise);
//! error codes are unique, and the gateway-defined ones live in the JSON-RPC "server error"
//! range `-32000..=-32099` without colliding with codes MCP itself assigns there.
//!
//! Errors / perf: none; everything here is `const`.

/// The only `jsonrpc` member value JSON-RPC 2.0 allows.
pub const JSONRPC_VERSION: &str = "2.0";

/// MCP method names (requests and notifications), as sent in the `method` member.
pub mod method {
    /// Request: the first message of a session; negotiates version and capabilities.
    pub const INITIALIZE: &str = "initialize";
    /// Notification: the client finished initialization.
    pub const INITIALIZED: &str = "notifications/initialized";
    /// Request: liveness check, answered with an empty result.
    pub const PING: &str = "ping";
    /// Request: list tools (paginated by `cursor`).
    pub const TOOLS_LIST: &str = "tools/list";
    /// Request: invoke the tool `params.name` with `params.arguments`.
    pub const TOOLS_CALL: &str = "tools/call";
    /// Request: list prompts (paginated by `cursor`).
    pub const PROMPTS_LIST: &str = "prompts/list";
    /// Request: render the prompt `params.name`.
    pub const PROMPTS_GET: &str = "prompts/get";
    /// Request: list resources (paginated by `cursor`).
    pub const RESOURCES_LIST: &str = "resources/list";
    /// Request: list resource templates (paginated by `cursor`).
    pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
    /// Request: read the resource `params.uri`.
    pub const RESOURCES_READ: &str = "resources/read";
    /// Request: subscribe to updates of `params.uri`.
    pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
    /// Request: cancel a subscription to `params.uri`.
    pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
    /// Request: argument completion for the prompt or resource template in `params.ref`.
    pub const COMPLETION_COMPLETE: &str = "completion/complete";
    /// Request: set the minimum level of `notifications/message` log records.
    pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";
    /// Notification: the sender abandons the request `params.requestId`.
    pub const CANCELLED: &str = "notifications/cancelled";
    /// Notification: progress for the request whose `_meta.progressToken` is `params.progressToken`.
    pub const PROGRESS: &str = "notifications/progress";
    /// Notification: the server's tool list changed.
    pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
    /// Notification: the server's prompt list changed.
    pub const PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
    /// Notification: the server's resource list changed.
    pub const RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
    /// Notification: the subscribed resource `params.uri` changed.
    pub const RESOURCES_UPDATED: &str = "notifications/resources/updated";
    /// Notification: a log record from the server.
    pub const MESSAGE: &str = "notifications/message";
    /// Request (2026-07-28): server discovery; answered by the gateway itself.
    pub const SERVER_DISCOVER: &str = "server/discover";
    /// Request (2026-07-28): open a stream of change notifications (replaces the GET stream).
    pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";
    /// Notification (2026-07-28): first event on a `subscriptions/listen` stream.
    pub const SUBSCRIPTIONS_ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
    /// Server-to-client request: ask the client's model for a completion.
    pub const SAMPLING_CREATE_MESSAGE: &str = "sampling/createMessage";
    /// Server-to-client request: ask the user for input through the client.
    pub const ELICITATION_CREATE: &str = "elicitation/create";
    /// Server-to-client request: the client's filesystem roots.
    pub const ROOTS_LIST: &str = "roots/list";
    /// Client notification: its roots changed.
    pub const ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
    /// A task's state (experimental tasks, 2025-11-25).
    pub const TASKS_GET: &str = "tasks/get";
    /// A task's final result (blocks until the task ends).
    pub const TASKS_RESULT: &str = "tasks/result";
    /// The requestor's tasks.
    pub const TASKS_LIST: &str = "tasks/list";
    /// Cancels a task.
    pub const TASKS_CANCEL: &str = "tasks/cancel";
    /// A task's status changed.
    pub const TASKS_STATUS: &str = "notifications/tasks/status";
}

/// JSON-RPC error codes: the standard ones, MCP's, and the gateway's own.
///
/// Gateway-defined codes sit in `-32010..=-32013`, clear of the codes the MCP SDKs use in the
/// server-error range (`-32000` connection closed, `-32001` request timeout / session not
/// found, `-32002` resource not found), so clients can tell a gateway verdict from a
/// downstream's. `-32020..=-32099` belongs to the MCP specification (2026-07-28 defines
/// `-32020..=-32022`); the gateway uses those codes only with their specified meanings.
pub mod code {
    /// Invalid JSON was received (JSON-RPC 2.0).
    pub const PARSE_ERROR: i32 = -32700;
    /// The JSON is not a valid request object (JSON-RPC 2.0).
    pub const INVALID_REQUEST: i32 = -32600;
    /// The method does not exist or is not available (JSON-RPC 2.0).
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Invalid method parameters, e.g. an unknown tool name (JSON-RPC 2.0, MCP).
    pub const INVALID_PARAMS: i32 = -32602;
    /// Internal JSON-RPC error: a gateway bug or resource exhaustion (JSON-RPC 2.0).
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Generic server error; the MCP SDKs' "connection closed". Also used where no more
    /// specific code applies and the HTTP status carries the distinction (e.g. a session the
    /// gateway does not know is answered with HTTP 404 and this code).
    pub const SERVER_ERROR: i32 = -32000;
    /// The MCP SDKs' "request timeout", sent by clients; the gateway itself reports
    /// [`DOWNSTREAM_TIMEOUT`] instead, and never emits this code.
    pub const REQUEST_TIMEOUT: i32 = -32001;
    /// The resource URI is unknown (MCP `resources/read`).
    pub const RESOURCE_NOT_FOUND: i32 = -32002;
    /// Gateway: the downstream owning this call is down, unreachable or its pool is exhausted.
    /// Retrying later may succeed.
    pub const DOWNSTREAM_UNAVAILABLE: i32 = -32010;
    /// Gateway: the downstream did not answer within the configured call timeout.
    pub const DOWNSTREAM_TIMEOUT: i32 = -32011;
    /// Gateway: the downstream answered something that is not valid JSON-RPC/MCP (garbage,
    /// wrong id, broken framing, expired session mid-call).
    pub const DOWNSTREAM_PROTOCOL: i32 = -32012;
    /// Gateway: a message exceeds the configured size limit (body, SSE event or reply).
    pub const PAYLOAD_TOO_LARGE: i32 = -32013;
    /// MCP 2026-07-28 `HeaderMismatch`: a routing header (`MCP-Protocol-Version`, `Mcp-Method`,
    /// `Mcp-Name`, `Mcp-Param-*`) is missing, malformed or disagrees with the body (HTTP 400).
    pub const HEADER_MISMATCH: i32 = -32020;
    /// MCP 2026-07-28 `MissingRequiredClientCapability`: serving the request needs a client
    /// capability the request's `_meta` did not declare; `data.requiredCapabilities` (HTTP 400).
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 = -32021;
    /// MCP 2026-07-28 `UnsupportedProtocolVersion`: `data.supported` lists what the server
    /// speaks, `data.requested` echoes the request (HTTP 400).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
}

/// Member names of the JSON-RPC envelope and of the MCP params the envelope scan records.
///
/// Byte strings because the scanner compares raw key bytes without decoding.
pub mod key {
    /// Top level: protocol version, must be `"2.0"`.
    pub const JSONRPC: &[u8] = b"jsonrpc";
    /// Top level: request / response id.
    pub const ID: &[u8] = b"id";
    /// Top level: method name.
    pub const METHOD: &[u8] = b"method";
    /// Top level: request / notification parameters.
    pub const PARAMS: &[u8] = b"params";
    /// Top level: success payload of a response.
    pub const RESULT: &[u8] = b"result";
    /// Top level: error object of a response.
    pub const ERROR: &[u8] = b"error";
    /// `params.name`: tool or prompt name.
    pub const NAME: &[u8] = b"name";
    /// `params.uri`: resource URI.
    pub const URI: &[u8] = b"uri";
    /// `params.cursor`: pagination cursor.
    pub const CURSOR: &[u8] = b"cursor";
    /// `params._meta`: request metadata.
    pub const META: &[u8] = b"_meta";
    /// `params._meta.progressToken` / `params.progressToken` (in `notifications/progress`).
    pub const PROGRESS_TOKEN: &[u8] = b"progressToken";
    /// `params.ref`: completion reference.
    pub const REF: &[u8] = b"ref";
    /// `params.ref.type`: `"ref/prompt"` or `"ref/resource"`.
    pub const TYPE: &[u8] = b"type";
    /// `params.requestId`: the cancelled request (`notifications/cancelled`).
    pub const REQUEST_ID: &[u8] = b"requestId";
    /// `params.requestState`: a 2026-07-28 retry's opaque state (multi round-trip requests).
    pub const REQUEST_STATE: &[u8] = b"requestState";
    /// `params.inputResponses`: a 2026-07-28 retry's answers (multi round-trip requests).
    pub const INPUT_RESPONSES: &[u8] = b"inputResponses";
    /// `taskId`: a task (experimental tasks).
    pub const TASK_ID: &[u8] = b"taskId";
    /// `params.task` (a task-augmented request) / `result.task` (`CreateTaskResult`).
    pub const TASK: &[u8] = b"task";
    /// `result.tasks` (`tasks/list`).
    pub const TASKS: &[u8] = b"tasks";
    /// `result.nextCursor`.
    pub const NEXT_CURSOR: &[u8] = b"nextCursor";
}

/// Reserved `_meta` keys of the 2026-07-28 era (per-request protocol fields).
pub mod meta {
    /// Request `_meta`: the protocol version of this request (required).
    pub const PROTOCOL_VERSION: &[u8] = b"io.modelcontextprotocol/protocolVersion";
    /// Request `_meta`: the client's capabilities for this request (required).
    pub const CLIENT_CAPABILITIES: &[u8] = b"io.modelcontextprotocol/clientCapabilities";
    /// Request `_meta`: the client's `Implementation` (optional).
    pub const CLIENT_INFO: &[u8] = b"io.modelcontextprotocol/clientInfo";
    /// Request `_meta`: the minimum log level to send for this request (optional; absent = none).
    pub const LOG_LEVEL: &[u8] = b"io.modelcontextprotocol/logLevel";
    /// Result `_meta`: the server's `Implementation`.
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    /// The task a request, notification or result belongs to (`{"taskId": ...}`).
    pub const RELATED_TASK: &[u8] = b"io.modelcontextprotocol/related-task";
    /// Notification `_meta` on a listen stream: the subscription it belongs to.
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
}
