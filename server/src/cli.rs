//! The `fluxbase` command line. One subcommand per job: `serve` runs the server, `check`
//! runs the pre-production checks ([`crate::check`]) and exits non-zero on a failure.
use crate::{build_state, observability, serve_with_shutdown, Config};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "fluxbase",
    version,
    about = "Fluxbase: a security-first backend on PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the HTTP server.
    Serve {
        /// The configuration file.
        #[arg(long, short, default_value = "fluxbase.yaml")]
        config: PathBuf,
    },
    /// Check the configuration and the live database before production (the security
    /// report over the exposed schemas); exits 1 when any check fails.
    Check {
        /// The configuration file.
        #[arg(long, short, default_value = "fluxbase.yaml")]
        config: PathBuf,
    },
}

/// Parses the arguments and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fluxbase: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { config } => runtime.block_on(serve_command(config)),
        Command::Check { config } => {
            let code = runtime.block_on(check_command(config));
            crate::log_writer::flush();
            return code;
        }
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Logging may not be set up yet (a config that does not load).
            observability::init_logging();
            tracing::error!(error = %message, "fluxbase stopped");
            eprintln!("fluxbase: {message}");
            ExitCode::FAILURE
        }
    };
    // The log lines still waiting in memory (log_writer.rs).
    crate::log_writer::flush();
    code
}

/// Prints each check as `PASS`/`WARN`/`FAIL` on stdout; the exit code gates a deployment.
async fn check_command(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(config) => {
            observability::init_logging_at(&config.logging.level);
            config
        }
        Err(e) => {
            println!("FAIL  config  {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = crate::check::run(&config).await;
    for line in &outcome.lines {
        println!("{line}");
    }
    if outcome.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn serve_command(path: PathBuf) -> Result<(), String> {
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    observability::init_logging_at(&config.logging.level);
    if !config.overridden_keys.is_empty() {
        tracing::info!(keys = ?config.overridden_keys, "config keys set from the environment");
    }
    for key in &config.inline_secrets {
        tracing::warn!(key, "a secret is written literally in the config file; reference an environment variable or a _FILE instead");
    }
    let state = build_state(&config).await.map_err(|e| e.to_string())?;
    let addr = (config.server.host.as_str(), config.server.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!(
            "cannot listen on {}:{}: {e}",
            config.server.host, config.server.port
        )
    })?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if config.server.tls.enabled {
        "https"
    } else {
        "http"
    };
    tracing::info!(address = %local, scheme, "fluxbase listening");
    let monitoring = &config.monitoring;
    if monitoring.enabled {
        let metrics = tokio::net::TcpListener::bind((monitoring.host.as_str(), monitoring.port))
            .await
            .map_err(|e| {
                format!(
                    "monitoring: cannot listen on {}:{}: {e}",
                    monitoring.host, monitoring.port
                )
            })?;
        let metrics_addr = metrics.local_addr().map_err(|e| e.to_string())?;
        if metrics_addr.port() == local.port() {
            return Err("monitoring.port is the public port".to_owned());
        }
        tracing::info!(address = %metrics_addr, path = %monitoring.path, "metrics listening");
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(metrics, state).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    serve_with_shutdown(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Ctrl-C or SIGTERM (what container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_takes_a_config_path() {
        let cli = Cli::try_parse_from(["fluxbase", "serve", "--config", "x.yaml"]).unwrap();
        let Command::Serve { config } = cli.command else {
            panic!("serve parsed as {:?}", cli.command)
        };
        assert_eq!(config, PathBuf::from("x.yaml"));
        let cli = Cli::try_parse_from(["fluxbase", "serve"]).unwrap();
        let Command::Serve { config } = cli.command else {
            panic!("serve parsed as {:?}", cli.command)
        };
        assert_eq!(config, PathBuf::from("fluxbase.yaml"));
        let cli = Cli::try_parse_from(["fluxbase", "check", "-c", "prod.yaml"]).unwrap();
        let Command::Check { config } = cli.command else {
            panic!("check parsed as {:?}", cli.command)
        };
        assert_eq!(config, PathBuf::from("prod.yaml"));
        assert!(Cli::try_parse_from(["fluxbase", "bogus"]).is_err());
        assert!(Cli::try_parse_from(["fluxbase"]).is_err());
    }
}
