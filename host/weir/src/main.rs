//! `weir`: the command-line entry point.

mod admin_client;
mod bundle_cmd;
#[cfg(feature = "demo")]
mod demo;
mod diff_cmd;
mod index_cmd;
mod logs;
mod new_cmd;
mod plugin_cmd;
mod run_cmd;
mod rust_sdk;
mod status_cmd;
mod worker_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Events are allocated by the source's thread and freed by the writer's;
// mimalloc handles that far better than glibc's malloc (decision 0017).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Weir: change-data-capture with sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline until SIGINT or SIGTERM.
    Run {
        /// The pipeline's TOML file.
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
    /// Run one instance of a worker group: read change topics from Kafka,
    /// run the plugins, write the results back, exactly once.
    Worker {
        /// The worker's TOML file (every instance of the group runs the same).
        #[arg(long, short)]
        config: std::path::PathBuf,
        /// This instance's name, unique within the group (default: the host
        /// name); its transactional id is `weir-<worker>-<instance>`.
        #[arg(long)]
        instance: Option<String>,
    },
    /// Print the status of a running pipeline, asked through its admin API
    /// (`[admin]` in the same file).
    Status {
        /// The pipeline's TOML file.
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Check a pipeline's TOML file and its plugins; every error is listed
    /// with its field path.
    Validate {
        /// The pipeline's TOML file.
        file: std::path::PathBuf,
    },
    /// Run a whole pipeline on a throwaway PostgreSQL: snapshot, streaming,
    /// masking, routing, files.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Inspect, test and build plugins.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `weir run` reports progress at info; the other commands print their
    // own output and log only problems.
    let default_filter = match cli.command {
        Command::Run { .. } | Command::Worker { .. } => "info,wasmtime=warn,cranelift=warn",
        _ => "warn",
    };
    let format = match logs::Format::from_env() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(|| logs::Stderr)
        // No colour codes in redirected logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        logs::Format::Text => subscriber.init(),
        logs::Format::Json => subscriber.event_format(logs::JsonLines).init(),
    }
    let result = match cli.command {
        Command::Plugin(cmd) => plugin_cmd::run(cmd),
        Command::Run { config } => run_cmd::run(&config),
        Command::Worker { config, instance } => worker_cmd::run(&config, instance.as_deref()),
        Command::Validate { file } => run_cmd::validate(&file),
        Command::Status { config } => status_cmd::run(&config),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
