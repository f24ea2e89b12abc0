//! The `plangate` binary: parses the command line and wires the library together.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// mimalloc: less CPU per allocation than glibc malloc and no per-thread arena growth under
/// many short-lived plans (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long large payloads must have stopped before the allocator is asked to give memory back.
const TRIM_QUIET: Duration = Duration::from_secs(1);

/// The trimmer: once large payloads (files, big answers) have stopped for [`TRIM_QUIET`], it
/// asks mimalloc to return the pages freed meanwhile (`mi_collect`, from a thread with a heap of
/// its own). mimalloc would do it by itself only when the threads that freed them allocate
/// again, which an idle gateway's do not; purging at once on every free (`purge_delay=0`)
/// cost 5–15 % CPU per plan (`plangate-bench cpu`), this costs nothing between large payloads.
/// Measured with `plangate-bench files` (see BENCHMARKS.md).
fn start_trimmer() {
    let (doorbell, rings) = std::sync::mpsc::sync_channel::<()>(1);
    plangate::telemetry::memory::install(doorbell);
    let spawned = std::thread::Builder::new()
        .name("plangate-trim".to_owned())
        .spawn(move || {
            while rings.recv().is_ok() {
                // Wait for quiet: every ring meanwhile starts the wait over.
                while rings.recv_timeout(TRIM_QUIET).is_ok() {}
                // The heap of this thread must exist for the collection to run.
                drop(std::hint::black_box(vec![0u8; 64]));
                collect_freed_memory();
            }
        });
    if let Err(e) = spawned {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("plangate: no memory trimmer ({e})\n").as_bytes(),
        );
    }
}

/// `mi_collect(true)`: frees what this thread's heap holds and purges the arenas' freed pages.
#[expect(
    unsafe_code,
    reason = "one FFI call into the allocator in use; it takes no pointers and may be called at any time from any thread"
)]
fn collect_freed_memory() {
    // SAFETY: `mi_collect` only walks mimalloc's own structures; it is thread-safe.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
use plangate::boot::BootError;
use plangate::config::{
    Config, ConfigError, ENV_HOSTNAME, ENV_LOG_FORMAT, ENV_PORT, ENV_WORKER_THREADS,
};
use plangate::telemetry::LogFormat;

#[derive(Parser)]
#[command(
    name = "plangate",
    version,
    about = "An A2A planner gateway: POST a question and an agent catalog to /plan, get SSE back"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve {
        /// TOML configuration file.
        #[arg(long, env = "GATEWAY_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on [default: 0.0.0.0].
        #[arg(long, env = "GATEWAY_HOSTNAME")]
        host: Option<String>,
        /// Port to listen on [default: 3774].
        #[arg(long, env = "GATEWAY_PORT")]
        port: Option<String>,
    },
    /// Start the example agent and the gateway on loopback and stream one plan to the terminal.
    Demo {
        /// The question to ask.
        #[arg(long, default_value = "What can plangate do?")]
        question: String,
    },
    /// Ask a running gateway a question and watch the plan (exit 0 final, 1 error, 2 usage or
    /// 4xx, 3 unreachable or cut short).
    Ask {
        /// The gateway's URL.
        #[arg(long, env = "PLANGATE_URL", default_value = "http://127.0.0.1:3774")]
        gateway: String,
        /// Bearer token for the gateway.
        #[arg(long, env = "PLANGATE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// An agent, NAME=URL[:SKILL,…] (repeatable; without skills, its agent card's).
        #[arg(long = "agent", value_name = "NAME=URL[:SKILL,…]")]
        agent: Vec<String>,
        /// A JSON file holding the `/plan` `agents` array.
        #[arg(long = "agents", value_name = "FILE", conflicts_with = "agent")]
        agents_file: Option<PathBuf>,
        /// Print every frame as one JSON object per line (`{"event":…,"data":…}`).
        #[arg(long)]
        json: bool,
        /// Continue this conversation (its `session_id`; kept by a gateway with
        /// GATEWAY_SESSIONS=on).
        #[arg(long, value_name = "ID")]
        session: Option<String>,
        /// Approve every call that waits for a yes (`task.confirm`) without asking.
        #[arg(long, conflicts_with = "decline_all")]
        approve_all: bool,
        /// Decline every call that waits for a yes without asking. Without either flag a
        /// terminal is asked `[y/N]`; without a terminal the call is declined.
        #[arg(long)]
        decline_all: bool,
        /// Write the files the agents return into DIR (it must exist).
        #[arg(long, value_name = "DIR")]
        save_files: Option<PathBuf>,
        /// The question.
        question: String,
    },
    /// A conversation with a running gateway: each line read is a plan of the same session;
    /// Ctrl-D ends it (exit 0; 3 when the gateway cannot be reached).
    Chat {
        /// The gateway's URL.
        #[arg(long, env = "PLANGATE_URL", default_value = "http://127.0.0.1:3774")]
        gateway: String,
        /// Bearer token for the gateway.
        #[arg(long, env = "PLANGATE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// An agent, NAME=URL[:SKILL,…] (repeatable; without skills, its agent card's).
        #[arg(long = "agent", value_name = "NAME=URL[:SKILL,…]")]
        agent: Vec<String>,
        /// A JSON file holding the `/plan` `agents` array.
        #[arg(long = "agents", value_name = "FILE", conflicts_with = "agent")]
        agents_file: Option<PathBuf>,
        /// The conversation to continue (default: a new one).
        #[arg(long, value_name = "ID")]
        session: Option<String>,
    },
    /// Keys of the keys file (GATEWAY_KEYS_FILE).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Gateway DID identity helpers.
    Did {
        #[command(subcommand)]
        command: DidCommand,
    },
    /// Work with recipe folders.
    Recipes {
        #[command(subcommand)]
        command: RecipesCommand,
    },
    /// Run the built-in example A2A agent (v0.3, skills `echo` and `shout`).
    ExampleAgent {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on.
        #[arg(long, default_value_t = 3773)]
        port: u16,
        /// How long each task stays `working`, in milliseconds.
        #[arg(long, default_value_t = 50)]
        work_ms: u64,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh random token (once, alone on its first line) and the keys-file block with
    /// its SHA-256 to paste.
    New {
        /// The key's name (letters, digits, '-' and '_'): its owner id and metrics label.
        name: String,
    },
}

#[derive(Subcommand)]
enum DidCommand {
    /// Print a fresh random seed for BINDU_GATEWAY_DID_SEED (and, with --author and --name,
    /// the DID, did:key and public key it gives).
    New {
        /// The identity's author (an e-mail address or handle; no `:` or whitespace).
        #[arg(long)]
        author: Option<String>,
        /// The gateway's name (no `:` or whitespace).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print the configured identity: DID, did:key, public key and DID document.
    Show {
        /// TOML configuration file.
        #[arg(long, env = "GATEWAY_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Whether stdout is a terminal that can redraw a status line (not a pipe, not `TERM=dumb`).
fn stdout_is_live_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn out(text: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
}

fn did_command(env: &HashMap<String, String>, command: DidCommand) -> ExitCode {
    match command {
        DidCommand::New { author, name } => {
            let mut seed = [0u8; 32];
            if let Err(e) = getrandom::fill(&mut seed) {
                return fail(&format!("cannot read random bytes: {e}"));
            }
            let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, seed);
            let mut text = format!("BINDU_GATEWAY_DID_SEED={encoded}\n");
            if let (Some(author), Some(name)) = (author, name) {
                match plangate::identity::Identity::new(&encoded, &author, &name) {
                    Ok(id) => text.push_str(&format!(
                        "BINDU_GATEWAY_AUTHOR={author}\nBINDU_GATEWAY_NAME={name}\n# DID:        {}\n# did:key:    {}\n# public key: {}\n",
                        id.did(),
                        id.did_key(),
                        id.public_key_base58()
                    )),
                    Err(e) => return fail(&e.to_string()),
                }
            }
            out(&text);
            ExitCode::SUCCESS
        }
        DidCommand::Show { config } => match Config::load(env, config.as_deref())
            .map_err(plangate::boot::BootError::from)
            .and_then(|c| plangate::boot::identity(&c).map_err(plangate::boot::BootError::from))
        {
            Ok(identity) => match identity {
                Some(id) => {
                    out(&format!(
                        "DID:        {}\ndid:key:    {}\npublic key: {}\ndocument:   {}\n",
                        id.did(),
                        id.did_key(),
                        id.public_key_base58(),
                        id.document()
                    ));
                    ExitCode::SUCCESS
                }
                None => fail(
                    "no gateway identity configured: set BINDU_GATEWAY_DID_SEED, BINDU_GATEWAY_AUTHOR and BINDU_GATEWAY_NAME",
                ),
            },
            Err(e) => fail(&e.to_string()),
        },
    }
}

#[derive(Subcommand)]
enum RecipesCommand {
    /// Lint a recipes folder (default: GATEWAY_RECIPES_DIR, else `recipes`).
    Check { dir: Option<PathBuf> },
}

fn recipes_check(env: &HashMap<String, String>, dir: Option<PathBuf>) -> ExitCode {
    let from_env = env
        .get(plangate::config::ENV_RECIPES_DIR)
        .filter(|d| !d.is_empty());
    // Where the folder came from, for the hint when it is missing.
    let (dir, source) = match (dir, from_env) {
        (Some(dir), _) => (dir, None),
        (None, Some(d)) => (
            PathBuf::from(d),
            Some(format!(
                "no DIR given, so looked for {}={d}",
                plangate::config::ENV_RECIPES_DIR
            )),
        ),
        (None, None) => {
            let default = PathBuf::from(plangate::config::DEFAULT_RECIPES_DIR);
            let shown = std::env::current_dir().map_or_else(
                |_| default.display().to_string(),
                |cwd| cwd.join(&default).display().to_string(),
            );
            (
                default,
                Some(format!(
                    "no DIR given and {} is unset, so looked for {shown}",
                    plangate::config::ENV_RECIPES_DIR
                )),
            )
        }
    };
    match plangate::recipe::check::check(&dir) {
        Ok(report) => {
            let mut text: String = report.findings.iter().map(|f| format!("{f}\n")).collect();
            text.push_str(&report.summary());
            text.push('\n');
            out(&text);
            if report.count(plangate::recipe::check::Severity::Error) > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            let mut text = format!("{message}\n");
            if let Some(source) = source {
                text.push_str(&format!(
                    "hint: {source}; name another folder with `plangate recipes check <DIR>` or set {}\n",
                    plangate::config::ENV_RECIPES_DIR
                ));
            }
            let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
            ExitCode::from(2)
        }
    }
}

/// Where a client command asks, and what it brings.
struct Target {
    gateway: String,
    token: Option<String>,
    agent: Vec<String>,
    agents_file: Option<PathBuf>,
}

/// The HTTP client and the `agents` of a client command; a usage error names the flag.
async fn client_and_agents(
    command: &str,
    target: &Target,
) -> Result<(reqwest::Client, serde_json::Value), ExitCode> {
    use plangate::cli::ask;
    let usage = |message: &str| {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("plangate {command}: {message}\n").as_bytes(),
        );
        ExitCode::from(ask::EXIT_USAGE)
    };
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Err(usage(&format!("cannot build an HTTP client: {e}"))),
    };
    let agents = agents_of(&target.agent, target.agents_file.as_ref(), &http)
        .await
        .map_err(|e| usage(&e))?;
    Ok((http, agents))
}

async fn agents_of(
    agent: &[String],
    agents_file: Option<&PathBuf>,
    http: &reqwest::Client,
) -> Result<serde_json::Value, String> {
    use plangate::cli::ask;
    let usage = |m: &str| Err(m.to_owned());
    let agents = match (&agents_file, agent.is_empty()) {
        (Some(path), _) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
            }) {
            Ok(v) if v.is_array() => v,
            Ok(_) => {
                return usage(&format!(
                    "--agents {}: must hold a JSON array",
                    path.display()
                ));
            }
            Err(e) => return usage(&format!("--agents {}: {e}", path.display())),
        },
        (None, false) => match ask::agents_from_flags(agent, http).await {
            Ok(v) => v,
            Err(e) => return usage(&e.to_string()),
        },
        (None, true) => {
            return usage("name the agents to ask: --agent NAME=URL[:SKILL,…] or --agents FILE");
        }
    };
    Ok(agents)
}

async fn ask(
    target: Target,
    json: bool,
    session: Option<String>,
    answering: plangate::cli::ask::Answering,
    save_files: Option<PathBuf>,
    question: String,
) -> ExitCode {
    use plangate::cli::ask;
    let (http, agents) = match client_and_agents("ask", &target).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let request = ask::Ask {
        gateway: target.gateway,
        token: target.token,
        agents,
        question,
        session,
        json,
        live: !json && stdout_is_live_terminal(),
        answering,
        save_files,
    };
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let input: Option<&mut (dyn tokio::io::AsyncBufRead + Unpin + Send)> =
        (answering == ask::Answering::Prompt).then_some(&mut stdin);
    let code = ask::run_answering(
        &request,
        &http,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        input,
    )
    .await;
    ExitCode::from(code)
}

/// How `plangate ask` answers a plan's questions: the flags, else the terminal, else declines.
fn answering(approve_all: bool, decline_all: bool) -> plangate::cli::ask::Answering {
    use plangate::cli::ask::Answering;
    match (approve_all, decline_all) {
        (true, _) => Answering::ApproveAll,
        (_, true) => Answering::DeclineAll,
        _ if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Answering::Prompt,
        _ => Answering::CannotAsk,
    }
}

async fn chat(target: Target, session: Option<String>) -> ExitCode {
    use plangate::cli::{ask, chat};
    let (http, agents) = match client_and_agents("chat", &target).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let live = stdout_is_live_terminal();
    let prompt = live && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let template = ask::Ask {
        gateway: target.gateway,
        token: target.token,
        agents,
        question: String::new(),
        session,
        json: false,
        live,
        // Chat reads its questions from the same input: a terminal is asked there too.
        answering: if prompt {
            ask::Answering::Prompt
        } else {
            ask::Answering::CannotAsk
        },
        save_files: None,
    };
    let mut input = tokio::io::BufReader::new(tokio::io::stdin());
    let code = chat::run(
        &template,
        &http,
        &mut input,
        prompt,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    ExitCode::from(code)
}

fn fail(message: &str) -> ExitCode {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{message}\n").as_bytes());
    ExitCode::from(1)
}

/// Reports a boot failure and exits with its code (README, "Exit codes").
fn boot_failed(e: &plangate::boot::BootError) -> ExitCode {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{e}\n").as_bytes());
    ExitCode::from(e.exit_code())
}

fn main() -> ExitCode {
    start_trimmer();
    // `GATEWAY_WORKER_THREADS`: 1 runs everything on one thread (least CPU per plan), unset or 0
    // uses one worker per core (best throughput and tail latency).
    let workers = match std::env::var(ENV_WORKER_THREADS) {
        Ok(raw) if !raw.trim().is_empty() => match raw.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return boot_failed(&BootError::Config(ConfigError::Env {
                    var: ENV_WORKER_THREADS.to_owned(),
                    problem: format!(
                        "must be a non-negative integer (1 = single-threaded, 0 = one worker per core) (got \"{raw}\")"
                    ),
                }));
            }
        },
        _ => 0,
    };
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if workers > 1 {
            b.worker_threads(workers);
        }
        b.enable_all().build()
    };
    let code = match runtime {
        Ok(rt) => rt.block_on(run()),
        Err(e) => fail(&format!("cannot start the async runtime: {e}")),
    };
    plangate::telemetry::shutdown();
    code
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    let mut env: HashMap<String, String> = std::env::vars().collect();
    let format = LogFormat::parse(env.get(ENV_LOG_FORMAT).map(String::as_str));
    // The demo renders a plan on the terminal: its embedded gateway's INFO lines would land in
    // the middle of it.
    let default_filter = match cli.command {
        Some(Command::Demo { .. }) => "warn",
        _ => "info",
    };
    plangate::telemetry::init_with(format.clone().unwrap_or_default(), default_filter);
    if let Err(problem) = format {
        return boot_failed(&BootError::Config(ConfigError::Env {
            var: ENV_LOG_FORMAT.to_owned(),
            problem,
        }));
    }
    let command = cli.command.unwrap_or(Command::Serve {
        config: None,
        host: None,
        port: None,
    });
    match command {
        Command::Serve { config, host, port } => {
            // A flag wins over its variable (clap reads the variable when the flag is absent).
            for (var, value) in [(ENV_HOSTNAME, host), (ENV_PORT, port)] {
                if let Some(v) = value {
                    env.insert(var.to_owned(), v);
                }
            }
            serve(&env, config).await
        }
        Command::Demo { question } => {
            let mut out = std::io::stdout();
            match plangate::demo::run(&env, &question, stdout_is_live_terminal(), &mut out).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Recipes {
            command: RecipesCommand::Check { dir },
        } => recipes_check(&env, dir),
        Command::Ask {
            gateway,
            token,
            agent,
            agents_file,
            json,
            session,
            approve_all,
            decline_all,
            save_files,
            question,
        } => {
            if let Some(dir) = save_files.as_ref().filter(|d| !d.is_dir()) {
                let message = format!(
                    "plangate ask: --save-files {}: not a directory\n",
                    dir.display()
                );
                let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
                return ExitCode::from(plangate::cli::ask::EXIT_USAGE);
            }
            let target = Target {
                gateway,
                token,
                agent,
                agents_file,
            };
            let answering = answering(approve_all, decline_all);
            ask(target, json, session, answering, save_files, question).await
        }
        Command::Chat {
            gateway,
            token,
            agent,
            agents_file,
            session,
        } => {
            let target = Target {
                gateway,
                token,
                agent,
                agents_file,
            };
            chat(target, session).await
        }
        Command::Did { command } => did_command(&env, command),
        Command::Keys {
            command: KeysCommand::New { name },
        } => match plangate::access::keys::new_key(&name) {
            Ok((token, block)) => {
                out(&format!(
                    "{token}\n\n# The token above is shown only now: give it to the caller. Paste this into the keys file\n# (GATEWAY_KEYS_FILE); it holds the token's SHA-256, never the token:\n{block}"
                ));
                ExitCode::SUCCESS
            }
            Err(e) => {
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("plangate keys new: {e}\n").as_bytes(),
                );
                ExitCode::from(2)
            }
        },
        Command::ExampleAgent {
            host,
            port,
            work_ms,
        } => {
            let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
                Ok(l) => l,
                Err(e) => return fail(&format!("cannot listen on {host}:{port}: {e}")),
            };
            tracing::info!("example agent listening on http://{host}:{port}");
            match plangate::example_agent::serve(
                listener,
                Duration::from_millis(work_ms),
                plangate::shutdown_signal(),
            )
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}

async fn serve(env: &HashMap<String, String>, config_path: Option<PathBuf>) -> ExitCode {
    let config = match Config::load(env, config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => return boot_failed(&e.into()),
    };
    for name in Config::unsupported_vars(env) {
        tracing::warn!("{name} is set but not supported by plangate; ignoring it");
    }
    let mode = if config.is_llm_mode() {
        format!("LLM planner ({})", config.planner.model)
    } else {
        "fan-out (no LLM key configured)".to_owned()
    };
    let state = match plangate::boot::start(config).await {
        Ok(s) => s,
        Err(e) => return boot_failed(&e),
    };
    if let Some(identity) = state.identity() {
        tracing::info!(did = %identity.did(), "gateway identity loaded");
    }
    if state.rejects_everyone() {
        tracing::warn!(
            "bearer auth is on but no token is configured (GATEWAY_API_KEY): every /plan request will get 401"
        );
    }
    let listener = match plangate::boot::bind(&state).await {
        Ok(l) => l,
        Err(e) => return boot_failed(&e),
    };
    let open_files = plangate::server::raise_fd_limit();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, %mode, open_files, max_connections = state.config().server.max_connections, "plangate listening");
    }
    match plangate::serve_on(listener, state, plangate::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}
