//! Server-side tests: keep-alive, pipelining, body framings, limits, timeouts, HTTP/1.0,
//! `Expect: 100-continue`, and response serialisation.

use bytes::Bytes;

use super::{test_util::*, *};

/// Reads one request from `input` delivered `max_read` bytes at a time.
async fn one(input: &[u8], max_read: usize) -> Result<Option<Request>, HttpError> {
    let mut conn = ServerConn::new(MemStream::new(input, max_read), test_limits());
    conn.read_request().await
}

fn text(output: &[u8]) -> String {
    String::from_utf8_lossy(output).into_owned()
}

#[monoio::test(enable_timer = true)]
async fn keep_alive_several_requests_over_tcp() {
    let (client, server) = tcp_pair().await;
    let srv = monoio::spawn(async move {
        let mut conn = ServerConn::new(server, HttpLimits::default());
        let mut seen = Vec::new();
        while let Some(req) = conn.read_request().await.expect("request") {
            seen.push((req.path.clone(), req.query.clone()));
            let body = [req.body.clone()];
            conn.write_response(200, &[("content-type", b"text/plain")], &body)
                .await
                .expect("write");
            if !conn.keep_alive() {
                break;
            }
        }
        seen
    });
    let mut c = ClientConn::new(client, HttpLimits::default());
    for i in 0..3 {
        let body = Bytes::from(format!("body-{i}"));
        let target = format!("/p{i}?x={i}");
        c.send_request(
            "POST",
            &target,
            "localhost",
            &[],
            std::slice::from_ref(&body),
        )
        .await
        .expect("send");
        let head = c.read_response_head().await.expect("head");
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, BodyFraming::Length(body.len() as u64));
        assert_eq!(head.header("Content-Type"), Some(&b"text/plain"[..]));
        assert_eq!(c.read_body(&head, 1024).await.expect("body"), body);
        assert!(c.is_reusable());
    }
    drop(c);
    let seen = srv.await;
    assert_eq!(seen.len(), 3);
    for (i, (path, query)) in seen.iter().enumerate() {
        assert_eq!(path, format!("/p{i}").as_bytes());
        assert_eq!(query.as_deref(), Some(format!("x={i}").as_bytes()));
    }
}

#[monoio::test(enable_timer = true)]
async fn pipelined_requests_are_kept_in_order() {
    let (mut client, server) = tcp_pair().await;
    send_raw(
        &mut client,
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
          \r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut conn = ServerConn::new(server, HttpLimits::default());
    let mut paths = Vec::new();
    while let Some(req) = conn.read_request().await.expect("request") {
        paths.push(text(&req.path));
        conn.write_response(200, &[], std::slice::from_ref(&req.body))
            .await
            .expect("write");
        if !conn.keep_alive() {
            break;
        }
    }
    drop(conn);
    assert_eq!(paths, ["/a", "/b", "/c"]);
    let out = text(&read_to_close(&mut client).await);
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 3);
    assert!(out.contains("content-length: 3\r\n\r\nabc"));
    assert!(out.ends_with("content-length: 0\r\nconnection: close\r\n\r\n"));
}

#[monoio::test(enable_timer = true)]
async fn content_length_body_split_byte_by_byte() {
    let input = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
    let req = one(input, 1).await.expect("ok").expect("some");
    assert_eq!(req.method, Method::Post);
    assert_eq!(&req.body[..], b"hello world");
    assert!(req.keep_alive);
    assert_eq!(req.version, 1);
}

#[monoio::test(enable_timer = true)]
async fn chunked_body_with_extensions_and_trailers_any_split() {
    let input = b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5;name=value\r\nhello\r\n1 ; x\r\n \r\nA\r\n0123456789\r\n\
                  0\r\nX-Trailer: yes\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
    for max_read in [1, 2, 3, 7, 64, 4096] {
        let mut conn = ServerConn::new(MemStream::new(input, max_read), test_limits());
        let req = conn.read_request().await.expect("ok").expect("some");
        assert_eq!(&req.body[..], b"hello 0123456789", "max_read {max_read}");
        let next = conn.read_request().await.expect("ok").expect("some");
        assert_eq!(&next.path[..], b"/next");
    }
}

#[monoio::test(enable_timer = true)]
async fn chunked_body_written_byte_by_byte_over_tcp() {
    let (mut client, server) = tcp_pair().await;
    let writer = monoio::spawn(async move {
        let msg = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
        for b in msg {
            send_raw(&mut client, &[*b]).await;
        }
        client
    });
    let mut conn = ServerConn::new(server, test_limits());
    let req = conn.read_request().await.expect("ok").expect("some");
    assert_eq!(&req.body[..], b"abcdefg");
    drop(writer.await);
}

#[monoio::test(enable_timer = true)]
async fn body_over_limit_is_413() {
    let big = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n";
    let err = one(big, 4096).await.expect_err("too large");
    assert!(matches!(err, HttpError::BodyTooLarge));
    assert_eq!(err.status(), 413);

    let mut chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"64\r\n");
        chunked.extend_from_slice(&[b'a'; 100]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let err = one(&chunked, 16).await.expect_err("too large");
    assert!(matches!(err, HttpError::BodyTooLarge));

    // A huge announced chunk is refused before any of it is read.
    let huge = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n";
    assert!(matches!(
        one(huge, 4096).await,
        Err(HttpError::BodyTooLarge)
    ));
}

#[monoio::test(enable_timer = true)]
async fn error_response_closes_connection() {
    let big = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n";
    let mut conn = ServerConn::new(MemStream::new(big, 4096), test_limits());
    let err = conn.read_request().await.expect_err("too large");
    assert!(err.should_respond());
    conn.write_response(err.status(), &[], &[])
        .await
        .expect("write");
    assert!(!conn.keep_alive());
    let out = text(&conn.into_inner().output);
    assert!(out.starts_with("HTTP/1.1 413 Content Too Large\r\n"));
    assert!(out.contains("connection: close\r\n"));
}

#[monoio::test(enable_timer = true)]
async fn huge_or_too_many_headers_are_431() {
    let mut input = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    input.extend(std::iter::repeat_n(b'a', 2000));
    input.extend_from_slice(b"\r\n\r\n");
    let err = one(&input, 100).await.expect_err("too large");
    assert!(matches!(err, HttpError::HeadersTooLarge));
    assert_eq!(err.status(), 431);

    // Without any line end, the cap still applies.
    let endless = vec![b'G'; 5000];
    assert!(matches!(
        one(&endless, 512).await,
        Err(HttpError::HeadersTooLarge)
    ));

    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..20 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert!(matches!(
        one(&many, 4096).await,
        Err(HttpError::HeadersTooLarge)
    ));
}

#[monoio::test(enable_timer = true)]
async fn malformed_heads_are_400() {
    let cases: [&[u8]; 6] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET  HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"\x00\x01\x02 / HTTP/1.1\r\n\r\n",
    ];
    for case in cases {
        let err = one(case, 4096).await.expect_err("malformed");
        assert!(
            matches!(err, HttpError::Malformed(_)),
            "{case:?} gave {err:?}"
        );
        assert_eq!(err.status(), 400);
    }
}

#[monoio::test(enable_timer = true)]
async fn framing_conflicts_are_refused() {
    let both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(
        one(both, 4096).await,
        Err(HttpError::Malformed(_))
    ));
    let gzip = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    let err = one(gzip, 4096).await.expect_err("unsupported");
    assert!(matches!(err, HttpError::UnsupportedTransferEncoding));
    assert_eq!(err.status(), 501);
    for bad in ["abc", "-1", "+5", "1, 2", "", "99999999999999999999"] {
        let input = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
        let res = one(input.as_bytes(), 4096).await;
        assert!(matches!(res, Err(HttpError::Malformed(_))), "cl {bad:?}");
    }
    let dup = b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(
        &one(dup, 4096).await.expect("ok").expect("some").body[..],
        b"ok"
    );
    let conflict = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!";
    assert!(matches!(
        one(conflict, 4096).await,
        Err(HttpError::Malformed(_))
    ));
}

#[monoio::test(enable_timer = true)]
async fn bad_chunked_framing_is_malformed() {
    let prefix = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "5\r\nhelloX\r\n",
        "5\nhello\r\n",
        "zz\r\n",
        "\r\n",
        "5 x\r\n",
        "0\r\nbad\r\n\r\n",
    ] {
        let input = format!("{prefix}{body}");
        let res = one(input.as_bytes(), 4096).await;
        assert!(
            matches!(res, Err(HttpError::Malformed(_))),
            "{body:?} gave {res:?}"
        );
    }
    let truncated = format!("{prefix}5\r\nhel");
    assert!(matches!(
        one(truncated.as_bytes(), 4096).await,
        Err(HttpError::Io(_))
    ));
}

#[monoio::test(enable_timer = true)]
async fn clean_eof_and_eof_mid_head() {
    assert!(one(b"", 4096).await.expect("ok").is_none());
    assert!(one(b"\r\n\r\n", 4096).await.expect("ok").is_none());
    let err = one(b"GET / HTTP/1.1\r\nHost", 4096).await.expect_err("eof");
    assert!(matches!(err, HttpError::Io(_)));
    assert!(!err.should_respond());
}

#[monoio::test(enable_timer = true)]
async fn idle_timeout_returns_none() {
    let (client, server) = tcp_pair().await;
    let limits = HttpLimits {
        idle_timeout: std::time::Duration::from_millis(30),
        ..test_limits()
    };
    let mut conn = ServerConn::new(server, limits);
    assert!(conn.read_request().await.expect("ok").is_none());
    assert!(!conn.keep_alive());
    drop(client);
}

#[monoio::test(enable_timer = true)]
async fn slow_head_times_out_with_408() {
    let (mut client, server) = tcp_pair().await;
    send_raw(&mut client, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    let limits = HttpLimits {
        header_read_timeout: std::time::Duration::from_millis(30),
        idle_timeout: std::time::Duration::from_secs(30),
        ..test_limits()
    };
    let mut conn = ServerConn::new(server, limits);
    let err = conn.read_request().await.expect_err("timeout");
    assert!(matches!(err, HttpError::Timeout));
    assert_eq!(err.status(), 408);
}

#[monoio::test(enable_timer = true)]
async fn http10_keep_alive_rules() {
    let mut conn = ServerConn::new(
        MemStream::new(b"GET / HTTP/1.0\r\n\r\n", 4096),
        test_limits(),
    );
    let req = conn.read_request().await.expect("ok").expect("some");
    assert_eq!(req.version, 0);
    assert!(!req.keep_alive);
    conn.write_response(200, &[], &[Bytes::from_static(b"hi")])
        .await
        .expect("write");
    assert!(!conn.keep_alive());
    assert!(text(&conn.into_inner().output).contains("connection: close\r\n"));

    let ka = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n";
    let mut conn = ServerConn::new(MemStream::new(ka, 4096), test_limits());
    assert!(
        conn.read_request()
            .await
            .expect("ok")
            .expect("some")
            .keep_alive
    );
    conn.write_response(200, &[], &[]).await.expect("write");
    assert!(conn.keep_alive());
    let second = conn.read_request().await.expect("ok").expect("some");
    assert_eq!(&second.path[..], b"/2");
    assert!(text(&conn.into_inner().output).contains("connection: keep-alive\r\n"));

    let te = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(matches!(one(te, 4096).await, Err(HttpError::Malformed(_))));
}

#[monoio::test(enable_timer = true)]
async fn http10_stream_is_close_delimited() {
    let mut conn = ServerConn::new(
        MemStream::new(b"GET /sse HTTP/1.0\r\n\r\n", 4096),
        test_limits(),
    );
    conn.read_request().await.expect("ok").expect("some");
    conn.start_stream(200, &[("content-type", b"text/event-stream")])
        .await
        .expect("start");
    conn.write_chunk(&[Bytes::from_static(b"data: 1\n\n")])
        .await
        .expect("chunk");
    conn.finish_stream().await.expect("finish");
    assert!(!conn.keep_alive());
    let out = text(&conn.into_inner().output);
    assert!(!out.contains("transfer-encoding"));
    assert!(out.ends_with("connection: close\r\n\r\ndata: 1\n\n"));
}

#[monoio::test(enable_timer = true)]
async fn chunked_stream_keeps_connection_usable() {
    let input = b"GET /sse HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n";
    let mut conn = ServerConn::new(MemStream::new(input, 4096), test_limits());
    conn.read_request().await.expect("ok").expect("some");
    conn.start_stream(200, &[("content-type", b"text/event-stream")])
        .await
        .expect("start");
    assert!(!conn.keep_alive(), "not reusable while streaming");
    let parts = [Bytes::from_static(b"data: "), Bytes::from_static(b"x\n\n")];
    conn.write_chunk(&parts).await.expect("chunk");
    conn.write_chunk(&[]).await.expect("empty chunk is a no-op");
    conn.finish_stream().await.expect("finish");
    assert!(conn.keep_alive());
    let next = conn.read_request().await.expect("ok").expect("some");
    assert_eq!(&next.path[..], b"/after");
    let out = text(&conn.into_inner().output);
    assert!(out.contains("transfer-encoding: chunked\r\n\r\n9\r\ndata: x\n\n\r\n0\r\n\r\n"));
}

#[monoio::test(enable_timer = true)]
async fn expect_100_continue_is_answered_before_body() {
    let (mut client, server) = tcp_pair().await;
    let srv = monoio::spawn(async move {
        let mut conn = ServerConn::new(server, test_limits());
        conn.read_request().await.expect("ok").expect("some")
    });
    send_raw(
        &mut client,
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    let interim = read_until(&mut client, b"\r\n\r\n").await;
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    send_raw(&mut client, b"hello").await;
    assert_eq!(&srv.await.body[..], b"hello");
}

#[monoio::test(enable_timer = true)]
async fn head_and_bodyless_statuses() {
    let mut conn = ServerConn::new(
        MemStream::new(b"HEAD / HTTP/1.1\r\n\r\n", 4096),
        test_limits(),
    );
    assert_eq!(
        conn.read_request().await.expect("ok").expect("some").method,
        Method::Head
    );
    conn.write_response(200, &[], &[Bytes::from_static(b"hello")])
        .await
        .expect("write");
    let out = text(&conn.into_inner().output);
    assert!(out.ends_with("content-length: 5\r\n\r\n"), "{out}");

    let mut conn = ServerConn::new(
        MemStream::new(b"GET / HTTP/1.1\r\n\r\n", 4096),
        test_limits(),
    );
    conn.read_request().await.expect("ok").expect("some");
    conn.write_response(204, &[], &[Bytes::from_static(b"ignored")])
        .await
        .expect("write");
    assert_eq!(
        text(&conn.into_inner().output),
        "HTTP/1.1 204 No Content\r\n\r\n"
    );
}

#[monoio::test(enable_timer = true)]
async fn targets_and_headers() {
    let input = b"GET http://example.com:80/a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\n\
                  Accept: a/b\r\nACCEPT:  c/d \r\nConnection: foo, Close\r\n\r\n";
    let req = one(input, 4096).await.expect("ok").expect("some");
    assert_eq!(req.path_str(), "/a/b");
    assert_eq!(req.query.as_deref(), Some(&b"x=1&y"[..]));
    assert_eq!(req.headers.get("accept"), Some(&b"a/b"[..]));
    let all: Vec<&[u8]> = req.headers.get_all("Accept").collect();
    assert_eq!(all, [&b"a/b"[..], &b"c/d"[..]]);
    assert_eq!(req.headers.get_str("host"), Some("example.com"));
    assert_eq!(
        req.headers.get_bytes("HOST").as_deref(),
        Some(&b"example.com"[..])
    );
    assert!(req.headers.has_token("connection", "close"));
    assert!(!req.keep_alive);
    assert_eq!(req.headers.len(), 4);

    let bare = one(b"GET http://example.com HTTP/1.1\r\n\r\n", 4096).await;
    assert_eq!(bare.expect("ok").expect("some").path_str(), "/");
    let star = one(b"OPTIONS * HTTP/1.1\r\n\r\n", 4096)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!((star.method, star.path_str()), (Method::Options, "*"));
    let other = one(b"PATCH /p HTTP/1.1\r\n\r\n", 4096)
        .await
        .expect("ok")
        .expect("some");
    assert_eq!(other.method, Method::Other);
}

#[monoio::test(enable_timer = true)]
async fn response_serialisation_and_injection_guard() {
    let mut conn = ServerConn::new(
        MemStream::new(b"GET / HTTP/1.1\r\n\r\n", 4096),
        test_limits(),
    );
    conn.read_request().await.expect("ok").expect("some");
    let bad = conn
        .write_response(200, &[("x-evil", b"a\r\nSet-Cookie: y")], &[])
        .await;
    assert_eq!(
        bad.expect_err("rejected").kind(),
        std::io::ErrorKind::InvalidInput
    );
    let big = Bytes::from(vec![b'z'; 100_000]);
    let body = [
        Bytes::from_static(b"<"),
        big.clone(),
        Bytes::from_static(b">"),
    ];
    conn.write_response(200, &[("content-length", b"1"), ("x-a", b"b")], &body)
        .await
        .expect("write");
    assert!(conn.keep_alive());
    let out = conn.into_inner().output;
    let head = b"HTTP/1.1 200 OK\r\nx-a: b\r\ncontent-length: 100002\r\n\r\n<";
    assert!(out.starts_with(head));
    assert_eq!(out.len(), head.len() + 100_001);
    assert_eq!(out.last(), Some(&b'>'));
    assert_eq!(reason(431), "Request Header Fields Too Large");
    assert_eq!(reason(799), "");
}
