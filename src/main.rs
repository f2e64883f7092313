//! `ringgate`: CLI → config → runtime. Nothing else lives here.

use std::process::ExitCode;

use ringgate::config::{self, cli, cli::Command};
use ringgate::{demo, runtime, telemetry};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    telemetry::logger::init();
    let command = match cli::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringgate: {e}\n\n{}", cli::HELP);
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{}", cli::HELP);
            Ok(())
        }
        Command::Version => {
            println!("ringgate {}", cli::VERSION);
            Ok(())
        }
        Command::Check { config } => return check(&config),
        Command::Serve { config } => {
            load(&config).and_then(|c| runtime::run(c).map_err(|e| e.to_string()))
        }
        Command::Stdio { config } => {
            load(&config).and_then(|c| runtime::run_stdio(c).map_err(|e| e.to_string()))
        }
        Command::Demo => run_demo(),
        Command::DemoServer {
            transport,
            listen,
            name,
        } => run_demo_server(&transport, listen, name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> Result<config::Config, String> {
    config::load(path).map_err(|e| format!("invalid config {}:\n{e}", path.display()))
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(c) => {
            println!(
                "{}: OK ({} servers, listen {}, admin {})",
                path.display(),
                c.servers.len(),
                c.gateway.listen,
                c.gateway.admin_listen
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: {} problem(s):", path.display(), errors.0.len());
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run_demo() -> Result<(), String> {
    let a = demo::spawn(demo::DemoOptions::new("demo")).map_err(|e| e.to_string())?;
    let b = demo::spawn(demo::DemoOptions::new("notes")).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let text = demo::demo_config_toml(&a.url(), &b.sse_url(), &exe.to_string_lossy());
    let config = config::parse_str(&text, &|k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    let (mcp, admin) = (demo::DEMO_LISTEN, demo::DEMO_ADMIN_LISTEN);
    eprintln!(
        "ringgate demo: servers demo (Streamable HTTP), notes (HTTP+SSE), local (stdio) in one catalog\n\
         MCP endpoint http://{mcp}/mcp (HTTP+SSE clients: http://{mcp}/sse), admin http://{admin} (Ctrl-C to stop)"
    );
    let result = runtime::run(config).map_err(|e| e.to_string());
    drop((a, b));
    result
}

fn run_demo_server(
    transport: &str,
    listen: Option<std::net::SocketAddr>,
    name: Option<String>,
) -> Result<(), String> {
    let mut opts = demo::DemoOptions::new(name.as_deref().unwrap_or("demo"));
    if let Some(l) = listen {
        opts.listen = l;
    }
    match transport {
        // One listener speaks both: Streamable HTTP at /mcp, HTTP+SSE at /sse + /messages.
        "http" | "sse" => demo::run_foreground(opts),
        "stdio" => demo::run_stdio(opts),
        "stdio-modern" => demo::run_stdio_modern(opts),
        other => {
            return Err(format!(
                "demo-server transport '{other}' is not available (use http, sse, stdio or stdio-modern)"
            ))
        }
    }
    .map_err(|e| e.to_string())
}
