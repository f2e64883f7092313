//! Tests for config parsing, expansion, validation, URLs and the CLI parser.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::cli::{parse_args, Command, HELP};
use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn parse(text: &str) -> Config {
    match parse_str(text, &no_env) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    errors_with(text, &no_env)
}

fn errors_with(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigError> {
    match parse_str(text, env) {
        Ok(config) => panic!("expected errors, got a valid config: {config:?}"),
        Err(ConfigErrors(errors)) => errors,
    }
}

/// Asserts exactly one error, at `path`, whose message contains `needle`.
#[track_caller]
fn assert_single(text: &str, path: &str, needle: &str) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    assert_eq!(errors[0].path, path, "{errors:#?}");
    assert!(
        errors[0].message.contains(needle),
        "message {:?} lacks {needle:?}",
        errors[0].message
    );
}

const HTTP: &str =
    "[[server]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:9001/mcp\"\n";

const FULL: &str = r#"
[gateway]
listen = "0.0.0.0:9000"
admin_listen = "127.0.0.1:9001"
workers = 3
allowed_origins = ["https://App.Example.com"]
allowed_hosts = ["gateway.internal:9000"]
server_name = "edge"
shutdown_timeout_ms = 5000
call_timeout_ms = 20000
page_size = 50
unavailable = "error"

[gateway.limits]
max_header_bytes = 8192
max_headers = 32
max_body_bytes = 1048576
header_read_timeout_ms = 3000
idle_timeout_ms = 30000
stream_keepalive_ms = 15000
max_response_bytes = 2097152
max_sse_event_bytes = 65536
max_json_depth = 64
max_sessions = 500

[[server]]
name = "time"
transport = "stdio"
command = "${BIN_DIR}/mcp-server-time"
args = ["--tz", "${TZ:-UTC}", "cost$$5"]
env = { TZ = "UTC", HOME = "${HOME}" }
cwd = "/srv/time"
prefix = "t"
required = false
call_timeout_ms = 1500
stateless = false

[[server]]
name = "search"
transport = "http"
url = "https://search.example.com/mcp?v=1"
headers = { Authorization = "Bearer ${SEARCH_TOKEN}", X-Team = "core" }
pool_size = 8

[[server]]
name = "legacy"
transport = "sse"
url = "http://[::1]:8080/sse"
prefix = ""
"#;

const FULL_ENV: &[(&str, &str)] = &[
    ("BIN_DIR", "/opt/bin"),
    ("HOME", "/home/svc"),
    ("SEARCH_TOKEN", "s3cret"),
];

fn full_expected() -> Config {
    let limits = Limits {
        max_header_bytes: 8192,
        max_headers: 32,
        max_body_bytes: 1_048_576,
        header_read_timeout: Duration::from_millis(3000),
        idle_timeout: Duration::from_millis(30_000),
        stream_keepalive: Duration::from_millis(15_000),
        max_response_bytes: 2_097_152,
        max_sse_event_bytes: 65_536,
        max_json_depth: 64,
        max_sessions: 500,
    };
    let gateway = GatewayConfig {
        listen: "0.0.0.0:9000".parse().unwrap(),
        admin_listen: "127.0.0.1:9001".parse().unwrap(),
        workers: 3,
        allowed_origins: vec!["https://app.example.com".into()],
        allowed_hosts: vec!["gateway.internal:9000".into()],
        server_name: "edge".into(),
        shutdown_timeout: Duration::from_millis(5000),
        call_timeout: Duration::from_millis(20_000),
        input_timeout: Duration::from_millis(super::DEFAULT_INPUT_TIMEOUT_MS),
        page_size: 50,
        unavailable: Unavailable::Error,
        limits,
        tls: None,
    };
    let time = ServerConfig {
        name: "time".into(),
        prefix: "t".into(),
        transport: Transport::Stdio,
        url: None,
        tls: None,
        headers: vec![],
        command: Some("/opt/bin/mcp-server-time".into()),
        args: vec!["--tz".into(), "UTC".into(), "cost$5".into()],
        env: vec![
            ("HOME".into(), "/home/svc".into()),
            ("TZ".into(), "UTC".into()),
        ],
        cwd: Some(PathBuf::from("/srv/time")),
        required: false,
        call_timeout: Duration::from_millis(1500),
        pool_size: DEFAULT_POOL_SIZE,
        stateless: false,
    };
    let search = ServerConfig {
        name: "search".into(),
        prefix: "search".into(),
        transport: Transport::Http,
        url: Some(Url {
            scheme: Scheme::Https,
            host: "search.example.com".into(),
            port: 443,
            path_and_query: "/mcp?v=1".into(),
            authority: "search.example.com".into(),
        }),
        tls: Some(ClientTls::load("search.example.com", None).unwrap()),
        headers: vec![
            ("Authorization".into(), "Bearer s3cret".into()),
            ("X-Team".into(), "core".into()),
        ],
        command: None,
        args: vec![],
        env: vec![],
        cwd: None,
        required: true,
        call_timeout: Duration::from_millis(20_000),
        pool_size: 8,
        stateless: false,
    };
    let legacy = ServerConfig {
        name: "legacy".into(),
        prefix: String::new(),
        transport: Transport::Sse,
        url: Some(Url::parse("http://[::1]:8080/sse").unwrap()),
        tls: None,
        headers: vec![],
        pool_size: DEFAULT_POOL_SIZE,
        ..search.clone()
    };
    Config {
        gateway,
        servers: vec![time, search, legacy],
        source: None,
    }
}

#[test]
fn full_config_round_trips() {
    let config = parse_str(FULL, &env_of(FULL_ENV)).unwrap();
    assert_eq!(config, full_expected());
}

#[test]
fn empty_file_gets_every_default() {
    let config = parse("");
    let g = &config.gateway;
    assert_eq!(g.listen, DEFAULT_LISTEN.parse::<SocketAddr>().unwrap());
    assert_eq!(
        g.admin_listen,
        DEFAULT_ADMIN_LISTEN.parse::<SocketAddr>().unwrap()
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(g.workers, cores);
    assert!(g.allowed_origins.is_empty() && g.allowed_hosts.is_empty());
    assert_eq!(g.server_name, DEFAULT_SERVER_NAME);
    assert_eq!(
        g.shutdown_timeout,
        Duration::from_millis(DEFAULT_SHUTDOWN_TIMEOUT_MS)
    );
    assert_eq!(
        g.call_timeout,
        Duration::from_millis(DEFAULT_CALL_TIMEOUT_MS)
    );
    assert_eq!(g.page_size, DEFAULT_PAGE_SIZE);
    assert_eq!(g.unavailable, Unavailable::Omit);
    assert_eq!(g.limits, Limits::default());
    assert!(config.servers.is_empty());
    assert_eq!(config.source, None);
}

#[test]
fn server_defaults_apply() {
    let config = parse(&format!("[gateway]\ncall_timeout_ms = 777\n{HTTP}"));
    let server = &config.servers[0];
    assert_eq!(server.prefix, "a");
    assert!(server.required);
    assert_eq!(server.call_timeout, Duration::from_millis(777));
    assert_eq!(server.pool_size, DEFAULT_POOL_SIZE);
    assert!(!server.stateless);
    assert!(server.headers.is_empty());
    let stdio = parse("[[server]]\nname = \"s\"\ntransport = \"stdio\"\ncommand = \"x\"\n");
    let server = &stdio.servers[0];
    assert_eq!(
        (server.args.len(), server.env.len(), server.cwd.clone()),
        (0, 0, None)
    );
    assert!(!server.stateless);
}

#[test]
fn unknown_keys_are_reported_with_paths() {
    let text = format!(
        "top = 1\n[gateway]\nlistn = \"x\"\n[gateway.limits]\nmax_bodies = 1\n{HTTP}urll = \"y\"\n"
    );
    let errors = errors(&text);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "gateway.limits.max_bodies",
            "gateway.listn",
            "server[0].urll",
            "top"
        ]
    );
    assert!(errors.iter().all(|e| e.message.starts_with("unknown key")));
    assert!(errors[2].message.contains("`url`"), "lists valid keys");
}

#[test]
fn type_errors_are_reported_per_key() {
    let text = "[gateway]\nworkers = \"four\"\npage_size = -1\nunavailable = \"maybe\"\n[[server]]\nname = 5\ntransport = \"tcp\"\n";
    let errors = errors(text);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "gateway.page_size",
            "gateway.unavailable",
            "gateway.workers",
            "server[0].name",
            "server[0].transport",
        ]
    );
    assert!(errors[1].message.contains("omit"));
    assert!(errors[4].message.contains("stdio"));
}

#[test]
fn wrong_table_shapes_are_reported() {
    assert_single("gateway = 1\n", "gateway", "expected a table");
    assert_single("[server]\nname = \"a\"\n", "server", "[[server]]");
    assert_single(
        "[gateway]\nlimits = 3\n",
        "gateway.limits",
        "expected a table",
    );
}

#[test]
fn syntax_error_has_line_and_column() {
    let errors = errors("[gateway]\nlisten = \n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "line 2, column 10");
    assert!(!errors[0].message.contains('\n'), "{:?}", errors[0].message);
}

#[test]
fn gateway_values_are_checked() {
    assert_single(
        "[gateway]\nlisten = \"localhost\"\n",
        "gateway.listen",
        "invalid socket address",
    );
    assert_single(
        "[gateway]\nadmin_listen = \"127.0.0.1:8787\"\n",
        "gateway.admin_listen",
        "must differ",
    );
    assert_single(
        "[gateway]\nlisten = \"0.0.0.0:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n",
        "gateway.admin_listen",
        "must differ",
    );
    assert_single(
        "[gateway]\npage_size = 0\n",
        "gateway.page_size",
        "greater than 0",
    );
    assert_single(
        "[gateway]\nworkers = 100000\n",
        "gateway.workers",
        "at most",
    );
    assert_single(
        "[gateway]\ncall_timeout_ms = 0\n",
        "gateway.call_timeout_ms",
        "greater than 0",
    );
    assert_single(
        "[gateway]\nserver_name = \"\"\n",
        "gateway.server_name",
        "non-empty",
    );
    assert_single(
        "[gateway]\nallowed_origins = [\"https://ok.example\", \"https://x.example/\"]\n",
        "gateway.allowed_origins[1]",
        "no trailing",
    );
    assert_single(
        "[gateway]\nallowed_origins = [\"*\"]\n",
        "gateway.allowed_origins[0]",
        "wildcards",
    );
    assert_single(
        "[gateway]\nallowed_hosts = [\"http://h\"]\n",
        "gateway.allowed_hosts[0]",
        "Host",
    );
}

#[test]
fn ephemeral_ports_never_conflict() {
    let config = parse("[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n");
    assert_eq!(config.gateway.listen.port(), 0);
}

#[test]
fn limits_must_be_positive_and_sane() {
    for key in [
        "max_header_bytes",
        "max_headers",
        "max_body_bytes",
        "header_read_timeout_ms",
        "idle_timeout_ms",
        "max_response_bytes",
        "max_sse_event_bytes",
        "max_json_depth",
        "max_sessions",
    ] {
        let text = format!("[gateway.limits]\n{key} = 0\n");
        assert_single(&text, &format!("gateway.limits.{key}"), "greater than 0");
    }
    assert_single(
        "[gateway.limits]\nmax_json_depth = 100000\n",
        "gateway.limits.max_json_depth",
        "at most",
    );
    assert_single(
        "[gateway.limits]\nmax_headers = 5000\n",
        "gateway.limits.max_headers",
        "at most",
    );
}

#[test]
fn server_names_and_prefixes_are_checked() {
    let server = |name: &str, extra: &str| {
        format!("[[server]]\nname = \"{name}\"\ntransport = \"stdio\"\ncommand = \"x\"\n{extra}")
    };
    assert_single(&server("bad name", ""), "server[0].name", "[A-Za-z0-9_-]+");
    assert_single(
        &server("ok", "prefix = \"a.b\"\n"),
        "server[0].prefix",
        "[A-Za-z0-9_-]+",
    );
    assert_single(
        &server("ok", "prefix = \"a__b\"\n"),
        "server[0].prefix",
        "ambiguous",
    );
    assert_single(&server("tail_", ""), "server[0].name", "set a `prefix`");
    assert!(parse_str(&server("tail_", "prefix = \"tail\"\n"), &no_env).is_ok());
    assert_single(
        "[[server]]\ntransport = \"stdio\"\ncommand = \"x\"\n",
        "server[0].name",
        "missing",
    );
    assert_single(
        "[[server]]\nname = \"a\"\ncommand = \"x\"\n",
        "server[0].transport",
        "missing",
    );

    let dup_name = format!("{}{}", server("a", ""), server("a", "prefix = \"b\"\n"));
    assert_single(
        &dup_name,
        "server[1].name",
        "duplicate server name \"a\" (also server[0])",
    );
    let dup_prefix = format!("{}{}", server("a", ""), server("b", "prefix = \"a\"\n"));
    assert_single(&dup_prefix, "server[1].prefix", "share prefix \"a__\"");
    let two_empty = format!(
        "{}{}",
        server("a", "prefix = \"\"\n"),
        server("b", "prefix = \"\"\n")
    );
    assert_single(&two_empty, "server[1].prefix", "empty prefix");
    let one_empty = format!("{}{}", server("a", "prefix = \"\"\n"), server("b", ""));
    assert_eq!(parse(&one_empty).servers[0].prefix, "");
}

#[test]
fn transport_fields_are_required_and_exclusive() {
    assert_single(
        "[[server]]\nname = \"a\"\ntransport = \"http\"\n",
        "server[0].url",
        "required",
    );
    assert_single(
        "[[server]]\nname = \"a\"\ntransport = \"stdio\"\n",
        "server[0].command",
        "required",
    );
    let stdio_with_remote = "[[server]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\nurl = \"http://h:1/\"\nheaders = {}\npool_size = 2\n";
    let first = errors(stdio_with_remote);
    let paths: Vec<&str> = first.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["server[0].url", "server[0].headers", "server[0].pool_size"]
    );
    assert!(first
        .iter()
        .all(|e| e.message.contains("not applicable to transport \"stdio\"")));
    let http_with_stdio =
        format!("{HTTP}command = \"x\"\nargs = []\nenv = {{}}\ncwd = \"/\"\nstateless = true\n");
    let second = errors(&http_with_stdio);
    let paths: Vec<&str> = second.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "server[0].command",
            "server[0].args",
            "server[0].env",
            "server[0].cwd",
            "server[0].stateless"
        ]
    );
}

#[test]
fn server_values_are_checked() {
    assert_single(
        &format!("{HTTP}call_timeout_ms = 0\n"),
        "server[0].call_timeout_ms",
        "greater than 0",
    );
    assert_single(
        &format!("{HTTP}pool_size = 0\n"),
        "server[0].pool_size",
        "greater than 0",
    );
    assert_single(
        &format!("{HTTP}pool_size = 5000\n"),
        "server[0].pool_size",
        "at most",
    );
    let bad_url = "[[server]]\nname = \"a\"\ntransport = \"sse\"\nurl = \"ftp://h/\"\n";
    assert_single(bad_url, "server[0].url", "unsupported scheme");
    let empty_command = "[[server]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"\"\n";
    assert_single(empty_command, "server[0].command", "non-empty");
    let bad_env = "[[server]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\nenv = { \"A=B\" = \"1\" }\n";
    assert_single(
        bad_env,
        "server[0].env.\"A=B\"",
        "invalid environment variable name",
    );
}

#[test]
fn headers_are_checked() {
    let with = |headers: &str| format!("{HTTP}headers = {{ {headers} }}\n");
    assert!(parse_str(&with("Authorization = \"Bearer x\""), &no_env).is_ok());
    assert_single(
        &with("\"Bad Name\" = \"v\""),
        "server[0].headers.\"Bad Name\"",
        "invalid header name",
    );
    assert_single(
        &with("X-A = \"a\\r\\nInjected: 1\""),
        "server[0].headers.X-A",
        "CR, LF",
    );
    assert_single(
        &with("Host = \"evil\""),
        "server[0].headers.Host",
        "set by the gateway",
    );
    assert_single(
        &with("X-A = \"1\", x-a = \"2\""),
        "server[0].headers.x-a",
        "duplicate header",
    );
}

#[test]
fn five_problems_yield_five_errors() {
    let text = r#"
[gateway]
listen = "nope"
[gateway.limits]
max_headers = 0
[[server]]
name = "bad name"
transport = "http"
url = "http://h:99999/"
[[server]]
name = "b"
transport = "stdio"
"#;
    let errors = errors(text);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "gateway.listen",
            "gateway.limits.max_headers",
            "server[0].name",
            "server[0].url",
            "server[1].command",
        ]
    );
    let display = ConfigErrors(errors).to_string();
    assert_eq!(display.lines().count(), 5);
    assert!(display.starts_with("gateway.listen: invalid socket address"));
}

#[test]
fn key_errors_and_semantic_errors_are_reported_together() {
    let text = format!(
        "[gateway]\nlistn = \"x\"\npage_size = 0\n{HTTP}pool_size = \"big\"\ncall_timeout_ms = 0\n"
    );
    let errors = errors(&text);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "gateway.listn",
            "server[0].pool_size",
            "gateway.page_size",
            "server[0].call_timeout_ms"
        ]
    );
}

#[test]
fn env_expansion() {
    let env = env_of(&[("TOKEN", "abc"), ("EMPTY", ""), ("HOST", "h.example")]);
    let config = parse_str(
        "[[server]]\nname = \"a\"\ntransport = \"http\"\nurl = \"https://${HOST}:${PORT:-8443}/mcp\"\nheaders = { X-K = \"$$${TOKEN}$x${EMPTY:-dflt}${EMPTY}\" }\n",
        &env,
    )
    .unwrap();
    let server = &config.servers[0];
    let url = server.url.as_ref().unwrap();
    assert_eq!((url.host.as_str(), url.port), ("h.example", 8443));
    assert_eq!(server.headers[0].1, "$abc$xdflt");
}

#[test]
fn unset_variables_are_collected_with_paths() {
    let text = "[[server]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"${BIN}\"\nargs = [\"${ONE}${TWO}\"]\ncwd = \"${DIR}\"\nenv = { K = \"${V}\" }\n";
    let errors = errors(text);
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "server[0].command",
            "server[0].args[0]",
            "server[0].env.K",
            "server[0].cwd"
        ]
    );
    assert!(errors[0].message.contains("`BIN` is not set"));
    assert!(errors[1].message.contains("`ONE`") && errors[1].message.contains("`TWO`"));
}

#[test]
fn malformed_references_are_errors() {
    let with = |arg: &str| {
        format!("[[server]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\nargs = [\"{arg}\"]\n")
    };
    assert_single(&with("${A"), "server[0].args[0]", "unterminated");
    assert_single(
        &with("${1A}"),
        "server[0].args[0]",
        "invalid variable reference",
    );
    assert_single(
        &with("${}"),
        "server[0].args[0]",
        "invalid variable reference",
    );
    // Only the braced form expands: a bare `$NAME` is literal.
    assert_eq!(parse(&with("$HOME x$")).servers[0].args, ["$HOME x$"]);
}

#[test]
fn names_and_ports_are_not_expanded() {
    let config = parse("[[server]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\nenv = { \"${K}\" = \"v\" }\n");
    assert_eq!(config.servers[0].env, [("${K}".to_owned(), "v".to_owned())]);
}

#[test]
fn url_parsing() {
    let url = Url::parse("HTTP://Example.COM:8080").unwrap();
    assert_eq!(url.scheme, Scheme::Http);
    assert_eq!((url.host.as_str(), url.port), ("example.com", 8080));
    assert_eq!(
        (url.path_and_query.as_str(), url.authority.as_str()),
        ("/", "example.com:8080")
    );
    assert_eq!(url.to_string(), "http://example.com:8080/");
    let url = Url::parse("https://h?x=1").unwrap();
    assert_eq!(
        (
            url.port,
            url.path_and_query.as_str(),
            url.authority.as_str()
        ),
        (443, "/?x=1", "h")
    );
    let url = Url::parse("http://[::1]/mcp").unwrap();
    assert_eq!(
        (url.host.as_str(), url.authority.as_str()),
        ("::1", "[::1]")
    );
    let url = Url::parse("http://[::1]:9001/mcp").unwrap();
    assert_eq!(url.authority, "[::1]:9001");
    for (bad, why) in [
        ("h:80/", "http://"),
        ("ws://h/", "unsupported scheme"),
        ("http:///x", "missing host"),
        ("http://h:0/", "out of range"),
        ("http://h:70000/", "out of range"),
        ("http://h:+80/", "invalid port"),
        ("http://h:/", "invalid port"),
        ("http://u:p@h/", "credentials"),
        ("http://h/#frag", "fragments"),
        ("http://h/a b", "whitespace"),
        ("http://[::1/", "unterminated"),
        ("http://[zz]/", "invalid IPv6"),
        ("http://h%41/", "invalid host"),
    ] {
        let err = Url::parse(bad).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn stateless_stdio_servers_are_accepted_and_the_flag_is_part_of_the_hash() {
    let shared = "[[server]]\nname = \"t\"\ntransport = \"stdio\"\ncommand = \"x\"\n";
    let per_worker = format!("{shared}stateless = true\n");
    let config = parse_str(&per_worker, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.servers[0].stateless);
    let plain = parse_str(shared, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    assert!(!plain.servers[0].stateless);
    // Turning it on or off restarts the server on reload (one child versus one per worker).
    assert_ne!(
        config.servers[0].config_hash(),
        plain.servers[0].config_hash()
    );
    // Still only for stdio: a remote server has no children.
    let remote = "[[server]]\nname = \"h\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:1/mcp\"\nstateless = true\n";
    let errors = parse_str(remote, &|_| None).unwrap_err();
    assert!(
        errors.0.iter().any(|e| e.path == "server[0].stateless"),
        "{errors}"
    );
}

#[test]
fn namespacing_and_hash() {
    let config = parse_str(FULL, &env_of(FULL_ENV)).unwrap();
    let [time, search, legacy] = &config.servers[..] else {
        panic!("three servers")
    };
    assert_eq!(time.namespaced("now"), "t__now");
    assert_eq!(legacy.namespaced("now"), "now");
    assert_eq!(search.config_hash(), search.clone().config_hash());
    let mut changed = search.clone();
    changed.headers[0].1 = "Bearer other".into();
    assert_ne!(search.config_hash(), changed.config_hash());
    assert_ne!(time.config_hash(), search.config_hash());
    // Pinned: the hash must not depend on std's unstable DefaultHasher.
    let again = parse_str(FULL, &env_of(FULL_ENV)).unwrap();
    assert_eq!(again.servers[1].config_hash(), search.config_hash());
}

#[test]
fn load_reads_files_and_reports_io_errors() {
    let missing = std::env::temp_dir().join("ringgate-config-test-does-not-exist.toml");
    let errors = load(&missing).unwrap_err().0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "<file>");
    let path =
        std::env::temp_dir().join(format!("ringgate-config-test-{}.toml", std::process::id()));
    std::fs::write(&path, HTTP).unwrap();
    let config = load(&path);
    std::fs::remove_file(&path).unwrap();
    let config = config.unwrap();
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(config.servers[0].name, "a");
}

#[test]
fn config_errors_display_one_per_line() {
    let errors = ConfigErrors(vec![
        ConfigError::new("a.b", "bad"),
        ConfigError::new("c", "worse"),
    ]);
    assert_eq!(errors.to_string(), "a.b: bad\nc: worse");
}

fn args(list: &[&str]) -> Result<Command, String> {
    parse_args(list.iter().map(|s| (*s).to_owned()))
}

#[test]
fn cli_commands() {
    let file = || PathBuf::from("g.toml");
    assert_eq!(args(&[]), Ok(Command::Demo));
    assert_eq!(args(&["demo"]), Ok(Command::Demo));
    assert_eq!(
        args(&["serve", "--config", "g.toml"]),
        Ok(Command::Serve { config: file() })
    );
    assert_eq!(
        args(&["serve", "--config=g.toml"]),
        Ok(Command::Serve { config: file() })
    );
    assert_eq!(
        args(&["stdio", "-c", "g.toml"]),
        Ok(Command::Stdio { config: file() })
    );
    assert_eq!(
        args(&["check", "--config", "g.toml"]),
        Ok(Command::Check { config: file() })
    );
    assert_eq!(
        args(&["demo-server"]),
        Ok(Command::DemoServer {
            transport: "http".into(),
            listen: None,
            name: None
        })
    );
    assert_eq!(
        args(&[
            "demo-server",
            "--listen",
            "127.0.0.1:9001",
            "--name=clock",
            "--transport",
            "sse"
        ]),
        Ok(Command::DemoServer {
            transport: "sse".into(),
            listen: Some("127.0.0.1:9001".parse().unwrap()),
            name: Some("clock".into()),
        })
    );
}

#[test]
fn cli_help_and_version_anywhere() {
    assert_eq!(args(&["--help"]), Ok(Command::Help));
    assert_eq!(args(&["serve", "--config", "x", "-h"]), Ok(Command::Help));
    assert_eq!(args(&["bogus", "--help"]), Ok(Command::Help));
    assert_eq!(args(&["help"]), Ok(Command::Help));
    assert_eq!(args(&["-V"]), Ok(Command::Version));
    assert_eq!(args(&["check", "--version"]), Ok(Command::Version));
    for needle in [
        "serve --config FILE",
        "stdio",
        "check",
        "demo-server",
        "127.0.0.1:8787",
        "RINGGATE_LOG",
    ] {
        assert!(HELP.contains(needle), "HELP lacks {needle}");
    }
}

#[test]
fn cli_errors() {
    for (list, needle) in [
        (&["serve"][..], "needs --config"),
        (&["serve", "--config"], "needs a value"),
        (&["serve", "--config", "--other"], "needs a value"),
        (&["serve", "--config="], "non-empty"),
        (&["serve", "-c", "a", "--config", "b"], "more than once"),
        (&["serve", "--listen", "x"], "does not accept `--listen`"),
        (&["check", "file.toml"], "unexpected argument"),
        (&["demo", "x"], "takes no arguments"),
        (&["launch"], "unknown command"),
        (&["--config", "x"], "needs a command"),
        (&["demo-server", "--listen", "nope"], "invalid address"),
        (&["demo-server", "--config", "x"], "does not accept"),
    ] {
        let err = args(list).unwrap_err();
        assert!(err.contains(needle), "{list:?}: {err}");
    }
}
