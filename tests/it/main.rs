//! The one integration-test binary: in-process gateways, harness servers on port 0.

mod harness;

mod bad_input;
mod bridge;
mod catalog;
mod demo;
mod layering;
mod modern;
mod modern_back;
mod reload;
mod resilience;
mod rmcp_peers;
mod server_requests;
mod sse;
mod stdio;
mod tasks;
mod tls;
