//! Client-side tests: incremental (SSE-style) bodies, framings, reuse rules, interim
//! responses, request serialisation, cancellation safety.

use bytes::Bytes;

use super::{test_util::*, *};

/// A client whose "server" replays `input` in reads of `max_read` bytes, with a request
/// already sent (so a response is awaited).
async fn client_with(input: &[u8], max_read: usize, method: &str) -> ClientConn<MemStream> {
    let mut c = ClientConn::new(MemStream::new(input, max_read), test_limits());
    c.send_request(method, "/", "h", &[], &[])
        .await
        .expect("send");
    c
}

#[monoio::test(enable_timer = true)]
async fn sse_stream_is_read_incrementally() {
    let (client, server) = tcp_pair().await;
    let (first_seen_tx, first_seen_rx) = local_sync::oneshot::channel::<()>();
    let srv = monoio::spawn(async move {
        let mut conn = ServerConn::new(server, HttpLimits::default());
        conn.read_request().await.expect("ok").expect("some");
        conn.start_stream(200, &[("content-type", b"text/event-stream")])
            .await
            .expect("start");
        conn.write_chunk(&[Bytes::from_static(b"data: 1\n\n")])
            .await
            .expect("chunk");
        // The second event is only written once the client has seen the first.
        first_seen_rx.await.expect("client saw first event");
        conn.write_chunk(&[Bytes::from_static(b"data: 2\n\n")])
            .await
            .expect("chunk");
        conn.finish_stream().await.expect("finish");
        let next = conn.read_request().await.expect("ok").expect("some");
        conn.write_response(200, &[], &[next.body])
            .await
            .expect("write");
    });
    let mut c = ClientConn::new(client, HttpLimits::default());
    c.send_request("GET", "/sse", "h", &[("accept", b"text/event-stream")], &[])
        .await
        .expect("send");
    let head = c.read_response_head().await.expect("head");
    assert_eq!(head.framing, BodyFraming::Chunked);
    let mut state = c.body_state(&head);
    let first = c
        .read_body_chunk(&mut state)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!(&first[..], b"data: 1\n\n");
    assert!(!c.is_reusable(), "body still pending");
    first_seen_tx.send(()).expect("server waiting");
    let mut rest = Vec::new();
    while let Some(piece) = c.read_body_chunk(&mut state).await.expect("ok") {
        rest.extend_from_slice(&piece);
    }
    assert_eq!(rest, b"data: 2\n\n");
    assert!(c.is_reusable());
    c.send_request("POST", "/again", "h", &[], &[Bytes::from_static(b"ping")])
        .await
        .expect("send");
    let head = c.read_response_head().await.expect("head");
    assert_eq!(&c.read_body(&head, 100).await.expect("body")[..], b"ping");
    srv.await;
}

#[monoio::test(enable_timer = true)]
async fn close_delimited_body_is_read_to_eof() {
    let (client, mut server) = tcp_pair().await;
    let srv = monoio::spawn(async move {
        read_until(&mut server, b"\r\n\r\n").await;
        send_raw(
            &mut server,
            b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nabc",
        )
        .await;
    });
    let mut c = ClientConn::new(client, HttpLimits::default());
    c.send_request("GET", "/", "h", &[], &[])
        .await
        .expect("send");
    let head = c.read_response_head().await.expect("head");
    assert_eq!(head.framing, BodyFraming::UntilClose);
    assert!(!head.keep_alive);
    srv.await;
    assert_eq!(&c.read_body(&head, 100).await.expect("body")[..], b"abc");
    assert!(!c.is_reusable());
}

#[monoio::test(enable_timer = true)]
async fn stale_connection_is_flagged() {
    let mut c = client_with(b"", 4096, "GET").await;
    let err = c.read_response_head().await.expect_err("closed");
    assert!(err.is_closed_before_response());
    assert!(!c.is_reusable());

    let mut c = client_with(b"HTTP/1.1 200", 4096, "GET").await;
    let err = c.read_response_head().await.expect_err("closed");
    assert!(matches!(err, HttpError::Io(_)));
    assert!(!err.is_closed_before_response());
}

#[monoio::test(enable_timer = true)]
async fn reuse_rules() {
    let close = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let mut c = client_with(close, 4096, "GET").await;
    let head = c.read_response_head().await.expect("head");
    assert_eq!(&c.read_body(&head, 10).await.expect("body")[..], b"ok");
    assert!(!c.is_reusable());

    let v10 = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nA";
    let mut c = client_with(v10, 4096, "GET").await;
    let head = c.read_response_head().await.expect("head");
    c.read_body(&head, 10).await.expect("body");
    assert!(!c.is_reusable());

    let junk = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAjunk";
    let mut c = client_with(junk, 4096, "GET").await;
    let head = c.read_response_head().await.expect("head");
    c.read_body(&head, 10).await.expect("body");
    assert!(!c.is_reusable(), "unsolicited bytes");

    let big = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n";
    let mut c = client_with(big, 4096, "GET").await;
    let head = c.read_response_head().await.expect("head");
    let err = c.read_body(&head, 10).await.expect_err("too large");
    assert!(matches!(err, HttpError::BodyTooLarge));
    assert!(!c.is_reusable());

    let unread = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA";
    let mut c = client_with(unread, 4096, "GET").await;
    c.read_response_head().await.expect("head");
    assert!(!c.is_reusable(), "body not read");
    let again = c.send_request("GET", "/", "h", &[], &[]).await;
    assert!(again.is_err());
}

#[monoio::test(enable_timer = true)]
async fn interim_responses_are_skipped() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n\
                  HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nA";
    let mut c = client_with(input, 5, "POST").await;
    let head = c.read_response_head().await.expect("head");
    assert_eq!(head.status, 201);
    assert_eq!(&c.read_body(&head, 10).await.expect("body")[..], b"A");
    assert!(c.is_reusable());
}

#[monoio::test(enable_timer = true)]
async fn bodyless_responses() {
    let head_resp = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
    let mut c = client_with(head_resp, 4096, "HEAD").await;
    let head = c.read_response_head().await.expect("head");
    assert_eq!(head.framing, BodyFraming::None);
    assert!(c.is_reusable());
    assert!(c.read_body(&head, 10).await.expect("empty").is_empty());

    let mut c = client_with(b"HTTP/1.1 204 No Content\r\n\r\n", 4096, "DELETE").await;
    let head = c.read_response_head().await.expect("head");
    assert_eq!(head.framing, BodyFraming::None);
    let mut state = c.body_state(&head);
    assert!(c.read_body_chunk(&mut state).await.expect("ok").is_none());
    assert!(c.is_reusable());
}

#[monoio::test(enable_timer = true)]
async fn chunked_and_length_bodies_under_split_reads() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\n";
    for max_read in [1, 2, 5, 4096] {
        let mut c = client_with(chunked, max_read, "GET").await;
        let head = c.read_response_head().await.expect("head");
        assert_eq!(
            &c.read_body(&head, 100).await.expect("body")[..],
            b"Wikipedia"
        );
        assert!(c.is_reusable());
    }
    let length = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    let mut c = client_with(length, 3, "GET").await;
    let head = c.read_response_head().await.expect("head");
    let mut state = c.body_state(&head);
    let mut got = Vec::new();
    while let Some(piece) = c.read_body_chunk(&mut state).await.expect("ok") {
        assert!(piece.len() <= 3 && !piece.is_empty());
        got.extend_from_slice(&piece);
    }
    assert_eq!(got, b"0123456789");
    assert!(c.is_reusable());

    let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
    let mut c = client_with(gzip, 4096, "GET").await;
    let err = c.read_response_head().await.expect_err("unsupported");
    assert!(matches!(err, HttpError::UnsupportedTransferEncoding));
}

#[monoio::test(enable_timer = true)]
async fn request_serialisation_and_validation() {
    let mut c = ClientConn::new(MemStream::new(b"", 1), test_limits());
    let headers: [(&str, &[u8]); 3] = [
        ("x-a", b"b"),
        ("Host", b"ignored"),
        ("Content-Length", b"9"),
    ];
    c.send_request(
        "POST",
        "/p?q=1",
        "h:8080",
        &headers,
        &[Bytes::from_static(b"abc")],
    )
    .await
    .expect("send");
    let out = String::from_utf8(c.into_inner().output).expect("utf8");
    assert_eq!(
        out,
        "POST /p?q=1 HTTP/1.1\r\nhost: h:8080\r\ncontent-length: 3\r\nx-a: b\r\n\r\nabc"
    );
    let mut c = ClientConn::new(MemStream::new(b"", 1), test_limits());
    let kind = |r: std::io::Result<()>| r.expect_err("invalid").kind();
    assert_eq!(
        kind(c.send_request("GE T", "/", "h", &[], &[]).await),
        std::io::ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(c.send_request("GET", "/a b", "h", &[], &[]).await),
        std::io::ErrorKind::InvalidInput
    );
    let evil: [(&str, &[u8]); 1] = [("x", b"1\r\nx-injected: 2")];
    assert_eq!(
        kind(c.send_request("GET", "/", "h", &evil, &[]).await),
        std::io::ErrorKind::InvalidInput
    );
    assert!(c.is_reusable(), "nothing was written");
}

#[monoio::test(enable_timer = true)]
async fn abandoned_read_poisons_connection() {
    let (client, _server) = tcp_pair().await;
    let mut c = ClientConn::new(client, HttpLimits::default());
    c.send_request("GET", "/", "h", &[], &[])
        .await
        .expect("send");
    let waited =
        monoio::time::timeout(std::time::Duration::from_millis(10), c.read_response_head()).await;
    assert!(waited.is_err(), "no response was sent");
    assert!(!c.is_reusable());
}
