//! In-process checks: bench server ⇄ client (JSON and SSE), through the relay, and a short open
//! loop and saturation over two paths. No gateway here (its process is the load test's job).

use std::rc::Rc;
use std::time::Duration;

use crate::client::{Failure, McpConn, RequestTemplate, Target};
use crate::downstream::{self, BenchConfig};
use crate::load::{self, PathRun, Plan};

fn bench(tools: usize, payload_bytes: usize, sse: bool) -> std::net::SocketAddr {
    let cfg = BenchConfig {
        name: "bench".into(),
        tools,
        payload_bytes,
        sse,
    };
    downstream::start(([127, 0, 0, 1], 0).into(), cfg)
        .expect("bench server listens")
        .0
}

#[test]
fn client_and_bench_server_agree() {
    crate::block_on(async {
        for sse in [false, true] {
            let addr = bench(3, 1000, sse);
            let target = Rc::new(Target::local("direct", addr));
            let mut c = McpConn::open(target.clone()).await.expect("handshake");
            let n = c
                .call(&RequestTemplate::tools_call("echo"))
                .await
                .expect("call");
            assert!(n > 1000, "reply carries the payload ({n} bytes, sse {sse})");
            let list = c
                .call(&RequestTemplate::new("tools/list", None))
                .await
                .expect("list");
            assert!(list > 300);
            let unknown = c.call(&RequestTemplate::tools_call("nope")).await;
            assert!(matches!(unknown, Err(Failure::Rpc(_))), "{unknown:?}");
            assert!(c.is_reusable());
        }
    })
    .expect("runtime");
}

#[test]
fn relay_forwards_and_load_runs_clean() {
    crate::block_on(async {
        let addr = bench(1, 5, false);
        let relayed = crate::relay::start(addr, Vec::new()).expect("relay");
        let timeout = Duration::from_secs(2);
        let paths = vec![
            PathRun::new(
                Rc::new(Target::local("direct", addr)),
                RequestTemplate::tools_call("echo"),
                timeout,
                Duration::ZERO,
            ),
            PathRun::new(
                Rc::new(Target::local("relay", relayed)),
                RequestTemplate::tools_call("echo"),
                timeout,
                Duration::ZERO,
            ),
        ];
        for p in &paths {
            p.connect(2).await.expect("sessions");
            p.probe().await.expect("probe");
        }
        let ms = Duration::from_millis;
        let plan = Plan::new(paths.len(), ms(20), ms(20), ms(80));
        load::run_open(&paths, 2000.0, &plan, ms(500)).await;
        for p in &paths {
            let s = p.stats.borrow();
            assert_eq!(s.failed + s.warm_failed, 0, "{:?}", s.first_failure);
            assert!(s.ok >= 70, "{} ok on {}", s.ok, p.target.name);
            assert_eq!(s.ok, s.offered);
            assert_eq!(s.hist.len(), s.ok);
        }
        load::run_saturate(&paths, &plan).await;
        for p in &paths {
            let s = p.stats.borrow();
            assert_eq!(s.failed, 0, "{:?}", s.first_failure);
            assert!(
                s.ok > s.offered,
                "saturation added requests on {}",
                p.target.name
            );
        }
    })
    .expect("runtime");
}

#[test]
fn a_wrong_session_is_refused() {
    crate::block_on(async {
        let addr = bench(1, 5, false);
        let mut conn = ringgate::transport::http::connect(addr)
            .await
            .expect("connect");
        let body = bytes::Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        conn.send_request(
            "POST",
            "/mcp",
            &addr.to_string(),
            &[("content-type", b"application/json")],
            &[body],
        )
        .await
        .expect("send");
        let head = conn.read_response_head().await.expect("head");
        assert_eq!(head.status, 400);
    })
    .expect("runtime");
}
