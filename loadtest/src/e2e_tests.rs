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

#[test]
fn idle_sessions_open_stay_quiet_and_answer_ping_later() {
    crate::block_on(async {
        let cfg = BenchConfig {
            name: "bench".into(),
            tools: 1,
            payload_bytes: 5,
            sse: false,
        };
        let (addr, bench) =
            downstream::start(([127, 0, 0, 1], 0).into(), cfg).expect("bench server listens");
        let target = Rc::new(Target::local("gateway", addr));
        let (conns, tally) = crate::idle::open(target, 300).await;
        assert_eq!(
            (tally.ok, tally.failed),
            (300, 0),
            "{:?}",
            tally.first_error
        );
        assert_eq!(conns.len(), 300);
        let (accepted, requests, sessions) = bench.counters();
        assert_eq!((accepted, sessions), (300, 300));
        assert_eq!(requests, 600, "initialize + notifications/initialized each");
        monoio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(bench.counters().1, 600, "held sessions send nothing");
        let (conns, pinged) = crate::idle::ping_all(conns).await;
        assert_eq!(
            (pinged.ok, pinged.failed),
            (300, 0),
            "{:?}",
            pinged.first_error
        );
        assert_eq!(conns.len(), 300);
        assert_eq!(bench.counters().1, 900);
    })
    .expect("runtime");
}

/// Marker argument: the test binary re-run as a stdio bench server (see `stdio_child`).
const STDIO_CHILD: &str = "loadtest-stdio-child";

/// Not a test of its own: when the test binary is started with `STDIO_CHILD` among its arguments
/// (by `stdio_link_carries_an_open_loop`), this serves the bench server on stdin/stdout and exits.
#[test]
fn stdio_child() {
    if std::env::args().any(|a| a == STDIO_CHILD) {
        // End the harness's "test e2e_tests::stdio_child ... " line, so replies start a line.
        use std::io::Write as _;
        let _ = std::io::stdout().lock().write_all(b"\n");
        let code = crate::stdio::serve(BenchConfig {
            name: "bench".into(),
            tools: 2,
            payload_bytes: 300,
            sse: false,
        });
        std::process::exit(code);
    }
}

#[test]
fn stdio_link_carries_an_open_loop() {
    crate::block_on(async {
        let exe = std::env::current_exe().expect("test binary");
        // The harness's own lines ("running 1 test") on stdout are not JSON: the link skips them.
        // Replies must be told apart from them by line, and the link does exactly that.
        let args: Vec<String> = [
            "e2e_tests::stdio_child",
            STDIO_CHILD,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let link = crate::stdio::StdioLink::spawn(&exe, &args)
            .await
            .expect("stdio child answers initialize");
        let pid = link.pid;
        let target = Rc::new(Target::stdio("direct", "stdio:test", link.clone()));
        let mut c = McpConn::open(target.clone()).await.expect("slot");
        let n = c
            .call(&RequestTemplate::tools_call("echo"))
            .await
            .expect("call");
        assert!(n > 300, "reply carries the payload ({n} bytes)");
        let unknown = c.call(&RequestTemplate::tools_call("nope")).await;
        assert!(matches!(unknown, Err(Failure::Rpc(_))), "{unknown:?}");

        let path = PathRun::new(
            target,
            RequestTemplate::tools_call("echo"),
            Duration::from_secs(2),
            Duration::ZERO,
        );
        path.connect(8).await.expect("slots");
        path.probe().await.expect("probe");
        let ms = Duration::from_millis;
        let plan = Plan::new(1, ms(20), ms(20), ms(100));
        load::run_open(std::slice::from_ref(&path), 4000.0, &plan, ms(500)).await;
        {
            let s = path.stats.borrow();
            assert_eq!(s.failed + s.warm_failed, 0, "{:?}", s.first_failure);
            assert!(s.ok >= 350, "{} ok", s.ok);
            assert_eq!(s.ok, s.offered);
        }
        drop(c);
        drop(path);
        drop(link);
        // The last handle gone, the child is stopped and reaped.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    })
    .expect("runtime");
}
