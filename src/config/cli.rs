//! Command-line arguments → [`Command`].
//!
//! Hand-written: five commands and four flags do not justify an argument-parsing dependency,
//! and keeping it pure (strings in, enum out) makes it trivially testable. Printing help,
//! the version, and exit codes are the binary's job.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The `ringgate` version, for `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Default `demo-server --transport`.
pub const DEFAULT_DEMO_TRANSPORT: &str = "http";

/// The `--help` text.
pub const HELP: &str = "\
ringgate — an MCP gateway: many Model Context Protocol servers behind one endpoint

USAGE:
    ringgate                              Run the built-in demo
    ringgate serve --config FILE          Run the gateway
    ringgate stdio --config FILE          Serve MCP over stdin/stdout
    ringgate check --config FILE          Validate a config file
    ringgate demo-server [OPTIONS]        Run one demo MCP server
    ringgate --help | --version

COMMANDS:
    (none), demo
        Start three built-in demo MCP servers, one per transport (demo over
        Streamable HTTP, notes over HTTP+SSE, local as a stdio child), and front
        them as one catalog on 127.0.0.1:8787 (MCP at http://127.0.0.1:8787/mcp,
        HTTP+SSE clients at /sse; admin on 127.0.0.1:8788). No config needed; a
        quick way to try a client against ringgate.

    serve --config FILE
        Run the gateway with FILE (TOML; see docs/CONFIG.md). Clients connect
        to http://<gateway.listen>/mcp; metrics and health live on
        <gateway.admin_listen> (/metrics, /healthz, /readyz).

    stdio --config FILE
        Serve MCP over stdin/stdout instead of HTTP, for clients that launch
        their servers as subprocesses (one client, the whole catalog of FILE's
        servers).

    check --config FILE
        Validate FILE without starting anything. Prints every problem, one
        per line as `path: message`; exits 1 if there are any, 0 if valid.

    demo-server [--transport http] [--listen ADDR] [--name NAME]
        Run a single demo MCP server (the same one the demo uses), e.g. as a
        downstream for your own config. Over HTTP it serves Streamable HTTP at
        /mcp and legacy HTTP+SSE at /sse (messages to /messages) on one port.
            --transport T    http (same as sse), stdio or stdio-modern
                             (default: http)
            --listen ADDR    IP:PORT to listen on (http)
            --name NAME      serverInfo.name it reports

OPTIONS:
    -c, --config FILE    Config file (also --config=FILE)
    -h, --help           Print this help (accepted anywhere)
    -V, --version        Print the version

ENVIRONMENT:
    RINGGATE_LOG    Log level: error | warn | info | debug | trace
    Config values may reference ${VAR} / ${VAR:-default}; see docs/CONFIG.md.
";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No arguments (or `demo`): run the built-in demo.
    Demo,
    /// `serve --config FILE`: run the gateway over HTTP.
    Serve {
        /// The config file.
        config: PathBuf,
    },
    /// `stdio --config FILE`: serve MCP over stdin/stdout.
    Stdio {
        /// The config file.
        config: PathBuf,
    },
    /// `check --config FILE`: validate and report every problem.
    Check {
        /// The config file.
        config: PathBuf,
    },
    /// `demo-server`: run one demo MCP server.
    DemoServer {
        /// How to serve it (`--transport`, default [`DEFAULT_DEMO_TRANSPORT`]); interpreted by
        /// the demo server, which knows which transports it supports.
        transport: String,
        /// `--listen IP:PORT`, if given.
        listen: Option<SocketAddr>,
        /// `--name NAME`, if given.
        name: Option<String>,
    },
    /// `--help`, `-h` or `help`: print [`HELP`].
    Help,
    /// `--version` or `-V`: print [`VERSION`].
    Version,
}

/// A flag a command accepts; all flags take a value.
struct Flag {
    long: &'static str,
    short: Option<&'static str>,
    value: &'static str,
}

const CONFIG_FLAG: Flag = Flag {
    long: "--config",
    short: Some("-c"),
    value: "FILE",
};

const DEMO_SERVER_FLAGS: &[Flag] = &[
    Flag {
        long: "--transport",
        short: None,
        value: "TRANSPORT",
    },
    Flag {
        long: "--listen",
        short: None,
        value: "ADDR",
    },
    Flag {
        long: "--name",
        short: None,
        value: "NAME",
    },
];

/// Parses the arguments *after* the program name (`std::env::args().skip(1)`).
///
/// `--help`/`-h` win over everything else wherever they appear (so a half-typed command line
/// plus `-h` still gets help), then `--version`/`-V`.
///
/// # Errors
///
/// A one-line message (unknown command or flag, missing or repeated value, bad address),
/// meant to be printed followed by a hint to run `ringgate --help`.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let args: Vec<String> = args.into_iter().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Ok(Command::Version);
    }
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Demo);
    };
    match command.as_str() {
        "demo" => no_arguments("demo", rest).map(|()| Command::Demo),
        "help" => Ok(Command::Help),
        "serve" => config_only("serve", rest).map(|config| Command::Serve { config }),
        "stdio" => config_only("stdio", rest).map(|config| Command::Stdio { config }),
        "check" => config_only("check", rest).map(|config| Command::Check { config }),
        "demo-server" => demo_server(rest),
        flag if flag.starts_with('-') => Err(format!(
            "`{flag}` needs a command first, e.g. `ringgate serve {flag} ...`"
        )),
        other => Err(format!(
            "unknown command `{other}` (expected serve, stdio, check, demo-server or demo)"
        )),
    }
}

fn no_arguments(command: &str, rest: &[String]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(format!(
            "`ringgate {command}` takes no arguments (got `{arg}`)"
        )),
    }
}

fn config_only(command: &str, rest: &[String]) -> Result<PathBuf, String> {
    let mut flags = parse_flags(command, rest, std::slice::from_ref(&CONFIG_FLAG))?;
    match flags.pop() {
        Some((_, config)) => Ok(PathBuf::from(config)),
        None => Err(format!("`ringgate {command}` needs --config FILE")),
    }
}

fn demo_server(rest: &[String]) -> Result<Command, String> {
    let mut transport = DEFAULT_DEMO_TRANSPORT.to_owned();
    let mut listen = None;
    let mut name = None;
    for (flag, value) in parse_flags("demo-server", rest, DEMO_SERVER_FLAGS)? {
        match flag {
            "--transport" => transport = value,
            "--listen" => {
                let addr = value.parse().map_err(|_| {
                    format!("--listen: invalid address `{value}` (expected IP:PORT, e.g. 127.0.0.1:9001)")
                })?;
                listen = Some(addr);
            }
            _ => name = Some(value),
        }
    }
    Ok(Command::DemoServer {
        transport,
        listen,
        name,
    })
}

/// Parses `--long VALUE`, `--long=VALUE` and `-s VALUE` for the given flags; each at most once.
fn parse_flags(
    command: &str,
    args: &[String],
    known: &[Flag],
) -> Result<Vec<(&'static str, String)>, String> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (arg.as_str(), None),
        };
        let Some(flag) = known
            .iter()
            .find(|f| f.long == name || f.short == Some(name))
        else {
            return Err(if arg.starts_with('-') {
                format!("`ringgate {command}` does not accept `{name}`")
            } else {
                format!("unexpected argument `{arg}` for `ringgate {command}`")
            });
        };
        let value = match inline {
            Some(value) => value.to_owned(),
            // A following flag is almost certainly a forgotten value, not a file named `-x`.
            None => match iter.next() {
                Some(value) if !value.starts_with('-') => value.clone(),
                _ => return Err(format!("`{}` needs a value ({})", flag.long, flag.value)),
            },
        };
        if value.is_empty() {
            return Err(format!(
                "`{}` needs a non-empty value ({})",
                flag.long, flag.value
            ));
        }
        if out.iter().any(|(long, _)| *long == flag.long) {
            return Err(format!("`{}` given more than once", flag.long));
        }
        out.push((flag.long, value));
    }
    Ok(out)
}
