//! Robustness tests: deterministic pseudo-random and mutated inputs must never panic, on
//! either side, under any read split; plus direct chunked-decoder checks.

use bytes::{Bytes, BytesMut};

use super::{
    body::{BodyState, Step},
    test_util::*,
    *,
};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const REQUEST_SEEDS: [&[u8]; 3] = [
    b"POST /mcp?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
];

const RESPONSE_SEEDS: [&[u8]; 3] = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
];

/// Either pure noise or a seed with a few random byte edits.
fn sample(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(300);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut v = seeds[rng.below(seeds.len())].to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len());
        match rng.below(3) {
            0 => v[at] = rng.next() as u8,
            1 => v.insert(at, b"\r\n:; 0f"[rng.below(7)]),
            _ => {
                v.remove(at);
            }
        }
    }
    v
}

#[monoio::test(enable_timer = true)]
async fn garbage_requests_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..400 {
        let input = sample(&mut rng, &REQUEST_SEEDS);
        let max_read = 1 + rng.below(64);
        let mut conn = ServerConn::new(MemStream::new(&input, max_read), test_limits());
        for _ in 0..4 {
            match conn.read_request().await {
                Ok(Some(_)) => {
                    let _ = conn
                        .write_response(200, &[], &[Bytes::from_static(b"x")])
                        .await;
                }
                Ok(None) => break,
                Err(e) => {
                    assert!((400..=501).contains(&e.status()));
                    let _ = conn.write_response(e.status(), &[], &[]).await;
                    break;
                }
            }
        }
    }
}

#[monoio::test(enable_timer = true)]
async fn garbage_responses_never_panic() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for i in 0..400 {
        let input = sample(&mut rng, &RESPONSE_SEEDS);
        let mut c = ClientConn::new(MemStream::new(&input, 1 + rng.below(64)), test_limits());
        c.send_request("GET", "/", "h", &[], &[])
            .await
            .expect("send");
        let Ok(head) = c.read_response_head().await else {
            continue;
        };
        if i % 2 == 0 {
            let _ = c.read_body(&head, 1024).await;
        } else {
            let mut state = c.body_state(&head);
            while let Ok(Some(_)) = c.read_body_chunk(&mut state).await {}
        }
        let _ = c.is_reusable();
    }
}

#[monoio::test(enable_timer = true)]
async fn garbage_over_tcp_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..25 {
        let input = sample(&mut rng, &REQUEST_SEEDS);
        let (mut client, server) = tcp_pair().await;
        send_raw(&mut client, &input).await;
        drop(client);
        let mut conn = ServerConn::new(server, test_limits());
        while let Ok(Some(_)) = conn.read_request().await {}
    }
}

/// Feeds `input` one byte at a time to a chunked decoder and collects the body.
fn decode_trickled(input: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut state = BodyState::new(BodyFraming::Chunked, 64);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        match state.step(&mut buf)? {
            Step::Data(d) => out.extend_from_slice(&d),
            Step::Done => return Ok(out),
            Step::NeedMore if fed < input.len() => {
                buf.extend_from_slice(&input[fed..fed + 1]);
                fed += 1;
            }
            Step::NeedMore => return Err(HttpError::Malformed("truncated")),
        }
    }
}

#[test]
fn chunked_decoder_byte_by_byte() {
    let body = decode_trickled(b"1\r\na\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
    assert_eq!(body.expect("ok"), b"a0123456789abcdef");
    let with_trailers = decode_trickled(b"2\r\nhi\r\n0\r\nA: 1\r\nB: 2\r\n\r\n");
    assert_eq!(with_trailers.expect("ok"), b"hi");
    let long_trailer = format!("0\r\nX: {}\r\n\r\n", "y".repeat(100));
    assert!(matches!(
        decode_trickled(long_trailer.as_bytes()),
        Err(HttpError::HeadersTooLarge)
    ));
    let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(5000));
    assert!(matches!(
        decode_trickled(long_ext.as_bytes()),
        Err(HttpError::Malformed(_))
    ));
    assert!(
        decode_trickled(b"11111111111111111\r\n").is_err(),
        "17 hex digits"
    );
}

#[test]
fn chunked_decoder_random_input_never_panics() {
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let len = rng.below(64);
        let alphabet = b"0123456789abcdefXx;= \t\r\n:";
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let _ = decode_trickled(&input);
    }
}
