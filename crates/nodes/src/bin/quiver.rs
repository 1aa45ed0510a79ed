//! The `quiver` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quiver_core::wal::FsyncPolicy;
use quiver_nodes::ops::{self, DataDir};
use quiver_nodes::standalone::{Standalone, StandaloneConfig};
use serde::Deserialize;

/// Quiver: a Milvus-compatible vector database.
///
/// Settings come from flags, then environment variables, then a TOML file
/// (`--config`), then built-in defaults — in that order of precedence.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every role in one process with embedded storage (no other services needed).
    Standalone(StandaloneArgs),
    /// Check a stopped server's data directory: every collection's WALs, manifests and
    /// segment objects. Exits with status 1 if anything is damaged.
    Inspect(InspectArgs),
    /// Report what is damaged in one collection and what each repair would give up;
    /// with a flag, carry that repair out. Run on a stopped server.
    Repair(RepairArgs),
}

#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "QUIVER_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
struct RepairArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "QUIVER_DATA_DIR")]
    data_dir: PathBuf,
    /// The damaged collection.
    #[arg(long)]
    collection: String,
    /// Its database.
    #[arg(long, default_value = "default")]
    db: String,
    /// Rebuild a damaged WAL: records before the flush checkpoint are in segments and
    /// cost nothing; damage after it cuts the log there, losing every later record.
    #[arg(long)]
    truncate_wal: bool,
    /// Remove segments whose objects are missing or damaged from the manifest, losing
    /// their rows.
    #[arg(long)]
    drop_damaged_segments: bool,
}

#[derive(clap::Args, Debug)]
struct StandaloneArgs {
    /// TOML file with any of the settings below (keys: data_dir, host, port,
    /// auth_token, wal, wal_fsync, seal_rows, idle_flush_secs, pchannels,
    /// time_tick_ms).
    #[arg(long, env = "QUIVER_CONFIG")]
    config: Option<PathBuf>,
    /// Where the meta store, WALs and segment objects live [default: ./quiver-data].
    #[arg(long, env = "QUIVER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "QUIVER_HOST")]
    host: Option<String>,
    /// Port of the Milvus gRPC API [default: 19530].
    #[arg(long, env = "QUIVER_PORT")]
    port: Option<u16>,
    /// Require clients to send this token (e.g. "root:Milvus"); off when unset.
    #[arg(long, env = "QUIVER_AUTH_TOKEN")]
    auth_token: Option<String>,
    /// WAL durability: "always" (fsync before every acknowledgement; nothing
    /// acknowledged is lost on power loss), "interval:<ms>" or "never"
    /// [default: always].
    #[arg(long, env = "QUIVER_WAL_FSYNC")]
    wal_fsync: Option<String>,
    /// Where the WAL lives: "local" (files under <data_dir>/wal) or "object" (block
    /// objects in the object store, <data_dir>/objects/wal: the zero-disk WAL a cluster
    /// runs on; every acknowledged write is a durable object, so wal_fsync does not
    /// apply). Cannot change over existing data [default: local].
    #[arg(long, env = "QUIVER_WAL")]
    wal: Option<String>,
    /// Rows after which a growing segment is sealed and flushed [default: 100000].
    #[arg(long, env = "QUIVER_SEAL_ROWS")]
    seal_rows: Option<usize>,
    /// Seconds without writes after which growing data is flushed [default: 10].
    #[arg(long, env = "QUIVER_IDLE_FLUSH_SECS")]
    idle_flush_secs: Option<u64>,
    /// How many pchannels (shared WAL logs) a new data directory gets; every shard of
    /// every collection rides on one of them. Fixed when the data directory is
    /// created: a different value later is reported and ignored [default: 16].
    #[arg(long, env = "QUIVER_PCHANNELS")]
    pchannels: Option<u32>,
    /// Milliseconds between time ticks of each pchannel; a Strong read asks for one
    /// at once [default: 200].
    #[arg(long, env = "QUIVER_TIME_TICK_MS")]
    time_tick_ms: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    auth_token: Option<String>,
    wal: Option<String>,
    wal_fsync: Option<String>,
    seal_rows: Option<usize>,
    idle_flush_secs: Option<u64>,
    pchannels: Option<u32>,
    time_tick_ms: Option<u64>,
}

fn parse_fsync(s: &str) -> Result<FsyncPolicy, String> {
    match s {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        other => match other
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            Some(ms) => Ok(FsyncPolicy::Interval(Duration::from_millis(ms))),
            None => Err(format!(
                "wal_fsync must be always, never or interval:<ms>, not {other:?}"
            )),
        },
    }
}

fn resolve(args: StandaloneArgs) -> Result<StandaloneConfig, String> {
    let file: FileConfig = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let host = args.host.or(file.host).unwrap_or_else(|| "0.0.0.0".into());
    let port = args.port.or(file.port).unwrap_or(19530);
    let listen: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("listen address {host}:{port}: {e}"))?;
    Ok(StandaloneConfig {
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("quiver-data")),
        listen,
        auth_token: args
            .auth_token
            .or(file.auth_token)
            .filter(|t| !t.is_empty()),
        fsync: parse_fsync(
            &args
                .wal_fsync
                .or(file.wal_fsync)
                .unwrap_or_else(|| "always".into()),
        )?,
        seal_rows: args.seal_rows.or(file.seal_rows).unwrap_or(100_000).max(1),
        idle_flush: Duration::from_secs(
            args.idle_flush_secs.or(file.idle_flush_secs).unwrap_or(10),
        ),
        wal: args
            .wal
            .or(file.wal)
            .unwrap_or_else(|| "local".into())
            .parse()?,
        pchannels: match args.pchannels.or(file.pchannels).unwrap_or(16) {
            0 => return Err("pchannels must be at least 1".into()),
            n => n,
        },
        tick_interval: Duration::from_millis(
            args.time_tick_ms
                .or(file.time_tick_ms)
                .unwrap_or(200)
                .max(1),
        ),
    })
}

async fn shutdown_signal() {
    #[cfg(all(unix, not(madsim)))]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(all(unix, not(madsim))))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().command;
    let default_log = match command {
        Command::Standalone(_) => "info",
        Command::Inspect(_) | Command::Repair(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match command {
        Command::Standalone(args) => standalone(args).await,
        Command::Inspect(args) => inspect(args).await,
        Command::Repair(args) => repair(args).await,
    }
}

/// Opens a stopped server's data directory with its lock held.
fn open_data_dir(dir: &std::path::Path) -> Result<DataDir, ExitCode> {
    match DataDir::open(dir) {
        Ok(d) => {
            println!(
                "data directory {}: lock taken (its meta store; no server can start meanwhile)",
                dir.display()
            );
            Ok(d)
        }
        Err(e) => {
            eprintln!("quiver: {e}");
            Err(ExitCode::from(1))
        }
    }
}

async fn inspect(args: InspectArgs) -> ExitCode {
    let dir = match open_data_dir(&args.data_dir) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let found = ops::inspect(&dir).await;
    report(found.map(|f| (f.to_string(), f.is_damaged())))
}

/// Prints an offline command's report; exits 1 when damage is left, 2 on failure.
fn report<E: std::fmt::Display>(done: Result<(String, bool), E>) -> ExitCode {
    match done {
        Ok((text, damaged)) => {
            print!("{text}");
            if damaged {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("quiver: {e}");
            ExitCode::from(2)
        }
    }
}

async fn repair(args: RepairArgs) -> ExitCode {
    let dir = match open_data_dir(&args.data_dir) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let opts = ops::RepairOptions {
        truncate_wal: args.truncate_wal,
        drop_damaged_segments: args.drop_damaged_segments,
    };
    let done = ops::repair(&dir, &args.db, &args.collection, opts).await;
    report(done.map(|d| (d.text, d.damage_left)))
}

async fn standalone(args: StandaloneArgs) -> ExitCode {
    let cfg = match resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quiver: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(data_dir = %cfg.data_dir.display(), listen = %cfg.listen, "starting Quiver standalone");
    let node = match Standalone::start(&cfg).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("quiver: cannot start: {}", e.reason);
            return ExitCode::from(1);
        }
    };
    match node.serve(cfg.listen, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quiver: {}", e.reason);
            ExitCode::from(1)
        }
    }
}
