//! The commands. Exit codes: 0 success, 1 a check failed, 2 usage or input error (or a
//! campaign that failed: see its closing record's reason), 130 stopped by Ctrl-C.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::archive;
use crate::error::InputError;
use crate::protocol::{Protocol, Target};
use crate::report;
use crate::runner::RunControl;
use crate::session::{resume_session, run_session, SessionSpec};

pub const EXIT_OK: i32 = 0;
pub const EXIT_CHECK_FAILED: i32 = 1;
pub const EXIT_INPUT: i32 = 2;
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "reprise",
    version,
    about = "Does a model give the same answer twice — and what exactly ran?",
    long_about = "reprise sends one prompt to one or more models many times, measures how often \
                  the answers agree and where they split, and saves every campaign as a \
                  tamper-evident, identity-tagged session archive.",
    after_help = "Examples:\n  \
        reprise                      # the dashboard: pick a protocol, Enter runs it\n  \
        reprise run sample-protocols/biography.toml --repeats 200 --concurrency 8"
)]
pub struct Cli {
    /// Without a command: the dashboard's protocol picker.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Dashboard colours: dark, light, high-contrast, colour-blind, or a theme of your own.
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a campaign headless: progress on stderr, archive written, summary on stdout.
    #[command(after_help = "Examples:\n  \
        reprise run sample-protocols/biography.toml\n  \
        reprise run sample-protocols/battery.toml --target local --repeats 50 --json\n  \
        reprise run my.toml --fail-under 1.0   # determinism gate for CI: exit 1 if any item varies")]
    Run(RunArgs),
    /// The live dashboard: with a protocol, launch it at once; without, pick and edit one first.
    #[command(after_help = "Examples:\n  \
        reprise tui\n  \
        reprise tui sample-protocols/multiple-choice.toml --repeats 500\n\n\
        Keys: ? lists them all · q quit · p pause · s stop · 1-4 views")]
    Tui(TuiArgs),
    /// The dashboard on a saved session: every view as it was live, optionally played back.
    #[command(after_help = "Examples:\n  \
        reprise open ~/.local/share/reprise/sessions/20261122-101500-biography-3fa2c1d09b7e.jsonl\n  \
        reprise open session.jsonl --replay 10    # as it ran, ten times faster\n  \
        reprise open session.jsonl --replay 0.5   # half speed\n\n\
        Keys: ? lists them all · p pause/resume · ←/→ or [/] seek 10 s · End the end · q quit\n\
        An unfinished (killed) session opens too. Exit 2 when the archive cannot be read.")]
    Open(OpenArgs),
    /// Check an archive's hash chain, identity and counts; names the first bad record.
    #[command(
        after_help = "Example:\n  reprise verify ~/.local/share/reprise/sessions/20261122-101500-biography-3fa2c1d09b7e.jsonl"
    )]
    Verify {
        /// The session archive (.jsonl).
        archive: PathBuf,
    },
    /// Serve the built-in model over the OpenAI chat-completions API, for any client to measure.
    #[command(after_help = "Examples:\n  \
        reprise serve\n  \
        reprise serve --mode batched            # temperature 0 varies when requests share a batch\n  \
        reprise serve --drift-after 100         # a silent model update after 100 completions\n  \
        reprise serve --faults 429=0.05,500=0.02,stall=0.01,cut=0.01,malformed=0.01\n\n\
        Then: curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \\\n    \
        -d '{\"model\":\"reprise-local-1\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'")]
    Serve(ServeArgs),
    /// Check the providers in config.toml: key present, endpoint reachable, model listed.
    #[command(after_help = "Examples:\n  \
        reprise providers            # nothing billable is sent\n  \
        reprise providers --probe    # also one one-token chat call per provider\n\n\
        Exit 0 when every check passes, 1 when one fails, 2 when config.toml is invalid.")]
    Providers {
        /// Also send one minimal chat call (one output token) to each provider: billable.
        #[arg(long)]
        probe: bool,
    },
    /// What differs between two sessions: conditions field by field, served identities, and
    /// the output distributions, with tests of whether the difference is more than chance.
    #[command(after_help = "Examples:\n  \
        reprise compare before.jsonl after.jsonl\n  \
        reprise compare before.jsonl after.jsonl --json | jq .verdict\n\n\
        Consistency: Fisher's exact test (two-sided) on modal vs other calls. Distributions: \
        chi-square test of homogeneity, rare outputs pooled. Over several items: Holm-adjusted.\n\
        Exit 0 whenever both archives read (a difference is a finding), 2 when one cannot be read.")]
    Compare {
        /// The first session archive (.jsonl): the baseline.
        a: PathBuf,
        /// The second session archive (.jsonl).
        b: PathBuf,
        /// Print the comparison as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Write a session archive as CSV (one row per call attempt), a Markdown report, or the
    /// summary JSON of `reprise run --json`.
    #[command(after_help = "Examples:\n  \
        reprise export session.jsonl --format md --out report.md\n  \
        reprise export session.jsonl --format csv > calls.csv\n  \
        reprise export session.jsonl --format json | jq '.targets[0].items[0].modal_share'\n\n\
        CSV: RFC 4180, every record (warm-up and retries included), text exact — except that a \
        cell starting with = + - @ (or tab or carriage return) gets a leading ' so spreadsheets \
        do not run it as a formula. Markdown: control characters in archive text are made visible.\n\
        An unfinished archive exports too (noted on stderr and in the report). Exit 2 when the \
        archive cannot be read.")]
    Export(ExportArgs),
    /// Turn outputs gathered by other tools into a session archive, so every measure and view
    /// applies.
    #[command(after_help = "Examples:\n  \
        reprise import outputs.jsonl --out imported.jsonl\n  \
        reprise import out.json --format promptfoo          # promptfoo eval -o out.json\n  \
        reprise import samples_gsm8k_2025.jsonl --format lm-eval   # lm_eval --log_samples\n\n\
        jsonl: one object per line, {\"item\": \"q1\", \"output\": \"Paris.\"} and optionally \
        \"target\" (default imported), \"latency_ms\", \"model\". Calls are numbered per target \
        and item in file order. The whole file is checked first: bad input names the file, line \
        and field, writes nothing, and exits 2.")]
    Import(ImportArgs),
    /// List saved sessions: time, protocol, identity, calls, consistency.
    #[command(after_help = "Example:\n  reprise sessions")]
    Sessions {
        /// Directory to list instead of the platform data directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The session archive (.jsonl).
    pub archive: PathBuf,
    /// csv, md or json.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: crate::export::ExportFormat,
    /// Write here instead of stdout (never over an existing file).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file of outputs.
    pub file: PathBuf,
    /// jsonl, promptfoo or lm-eval.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "jsonl")]
    pub format: crate::import::ImportFormat,
    /// Archive path (default: the platform data directory, named after the identity).
    #[arg(long, value_name = "ARCHIVE")]
    pub out: Option<PathBuf>,
    /// The session's protocol name (default: the file's name without extension).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct OpenArgs {
    /// The session archive (.jsonl).
    pub archive: PathBuf,
    /// Play the records back at their recorded pace times SPEED (1, 10, 0.5, …); without it,
    /// the final state shows at once.
    #[arg(long, value_name = "SPEED", value_parser = parse_speed)]
    pub replay: Option<f64>,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let range = crate::tui::replay::SPEEDS;
    s.parse::<f64>()
        .ok()
        .filter(|x| range.contains(x))
        .ok_or_else(|| {
            format!(
                "expected a speed from {} to {}, got `{s}`",
                range.start(),
                range.end()
            )
        })
}

/// What to run: shared by `run` and `tui`.
#[derive(Debug, clap::Args)]
pub struct CampaignArgs {
    /// The protocol file (TOML); see sample-protocols/.
    pub protocol: PathBuf,
    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Default, clap::Args)]
pub struct TuiArgs {
    /// The protocol file (TOML) to launch at once; without it, the protocol picker opens.
    pub protocol: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Command-line changes to the protocol's campaign.
#[derive(Debug, Default, clap::Args)]
pub struct Overrides {
    /// Run only this target (a target name from the protocol, or `local`); repeatable.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Measured calls per item and target (overrides campaign.repeats).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub repeats: Option<u32>,
    /// Calls in flight at once (overrides campaign.concurrency).
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: Option<u32>,
    /// Send a target no more calls once its first N all fail alike with a failure no retry
    /// mends, such as a refused parameter (overrides campaign.breaker, default 5; 0 never).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub breaker: Option<u32>,
    /// Archive path (default: the platform data directory, named after the identity).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; loopback unless you give another (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// How requests in flight at the same time are decoded: batch-invariant or batched.
    #[arg(long, value_name = "MODE", default_value = "batch-invariant", value_parser = parse_mode)]
    pub mode: crate::protocol::DecodeMode,
    /// Faults to inject per request, e.g. 429=0.05,500=0.02,stall=0.01,cut=0.01,malformed=0.01.
    #[arg(long, value_name = "SPEC", default_value = "none")]
    pub faults: crate::serve::Faults,
    /// Silently update the model (another weights revision) after N completions.
    #[arg(long, value_name = "N")]
    pub drift_after: Option<u64>,
    /// Seed for fault draws and response ids, to replay the same fault sequence.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// How long a `stall` fault holds a response back, in seconds.
    #[arg(long, value_name = "S", default_value_t = 30.0, value_parser = parse_seconds)]
    pub stall_secs: f64,
    /// The Retry-After of a simulated 429, in seconds.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub retry_after: u64,
}

fn parse_mode(s: &str) -> Result<crate::protocol::DecodeMode, String> {
    use crate::protocol::DecodeMode;
    [DecodeMode::BatchInvariant, DecodeMode::Batched]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| format!("expected batch-invariant or batched, got `{s}`"))
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && (0.0..=86_400.0).contains(x))
        .ok_or_else(|| format!("expected seconds from 0 to 86400, got `{s}`"))
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The protocol file (TOML); see sample-protocols/.
    #[arg(required_unless_present = "resume")]
    pub protocol: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Continue an unfinished (killed) session to its planned count, appending to its
    /// archive under the same identity; its protocol file must be unchanged.
    #[arg(long, value_name = "ARCHIVE", conflicts_with_all = ["protocol", "targets", "repeats", "concurrency", "breaker", "out"])]
    pub resume: Option<PathBuf>,
    /// Print the JSON summary instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when any item's modal share is below R (0..=1).
    #[arg(long, value_name = "R", value_parser = parse_ratio)]
    pub fail_under: Option<f64>,
    /// Skip the check of each target's endpoint, key and model before the campaign (for a
    /// compatible server whose model lookup misleads; `preflight = false` in a provider's
    /// table does the same for that provider).
    #[arg(long)]
    pub no_preflight: bool,
}

impl Overrides {
    fn is_empty(&self) -> bool {
        self.targets.is_empty()
            && self.repeats.is_none()
            && self.concurrency.is_none()
            && self.breaker.is_none()
            && self.out.is_none()
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .parse()
        .map_err(|_| format!("expected a number between 0 and 1, got `{s}`"))?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("must be between 0 and 1, got {r}"))
    }
}

/// Parses arguments, runs the command, returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_INPUT } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        None => tui(TuiArgs::default(), cli.theme.as_deref()),
        Some(Command::Tui(args)) => tui(args, cli.theme.as_deref()),
        Some(Command::Run(args)) => run(args),
        Some(Command::Open(args)) => open(args, cli.theme.as_deref()),
        Some(Command::Verify { archive }) => verify(&archive),
        Some(Command::Sessions { dir }) => sessions(dir),
        Some(Command::Compare { a, b, json }) => compare(&a, &b, json),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Providers { probe }) => providers(probe),
        Some(Command::Export(args)) => export(args),
        Some(Command::Import(args)) => import(args),
    }
}

fn providers(probe: bool) -> i32 {
    let config = match crate::config::Config::load_user() {
        Ok(c) => c,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let reports = runtime.block_on(crate::providers::check::check_configured(
        &config.providers,
        probe,
    ));
    let model = crate::local::LocalModel::builtin();
    println!(
        "local (built in) in-process · model {} · revision {}",
        model.name(),
        model.revision()
    );
    print!("{}", crate::providers::check::render(&reports));
    if reports.iter().all(crate::providers::check::Report::ok) {
        EXIT_OK
    } else {
        EXIT_CHECK_FAILED
    }
}

fn serve(args: ServeArgs) -> i32 {
    use crate::serve::{ServeConfig, Server};
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let config = ServeConfig {
        mode: args.mode,
        faults: args.faults.clone(),
        drift_after: args.drift_after,
        seed: args.seed,
        stall: std::time::Duration::from_secs_f64(args.stall_secs),
        retry_after: args.retry_after,
    };
    runtime.block_on(async {
        let server = match Server::bind(args.addr, config).await {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot listen on {}: {e}", args.addr), EXIT_INPUT),
        };
        let addr = match server.local_addr() {
            Ok(a) => a,
            Err(e) => return fail(format!("cannot read the bound address: {e}"), EXIT_INPUT),
        };
        if !addr.ip().is_loopback() {
            eprintln!("warning: listening on {addr}, reachable from other machines; the API has no authentication");
        }
        let model = crate::local::LocalModel::builtin();
        println!("reprise serve: http://{addr}/v1 (OpenAI chat completions)");
        println!(
            "model {} · revision {} · mode {} · build {}",
            model.name(),
            model.revision(),
            args.mode.as_str(),
            crate::serve::build()
        );
        if let Some(n) = args.drift_after {
            println!(
                "drift: after {n} completions, revision {}",
                crate::local::LocalModel::updated().revision()
            );
        }
        println!("faults: {} · Ctrl-C stops", args.faults);
        let stats = server.stats();
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let result = server.run(stop).await;
        eprintln!("\nreprise serve stopped: {}", stats.summary());
        match result {
            Ok(()) => EXIT_OK,
            Err(e) => fail(format!("the server failed: {e}"), EXIT_INPUT),
        }
    })
}

fn fail(message: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("error: {message}");
    code
}

/// Applies `--target`: keep the named protocol targets; `local` is always available.
pub fn select_targets(protocol: &mut Protocol, names: &[String]) -> Result<(), InputError> {
    if names.is_empty() {
        return Ok(());
    }
    let mut chosen = Vec::new();
    for name in names {
        if chosen.iter().any(|t: &Target| &t.name == name) {
            continue;
        }
        match protocol.targets.iter().find(|t| &t.name == name) {
            Some(t) => chosen.push(t.clone()),
            None if name == "local" => chosen.push(Target::local()),
            None => {
                let known: Vec<&str> = protocol.targets.iter().map(|t| t.name.as_str()).collect();
                return Err(InputError::new(
                    &protocol.path,
                    format!(
                        "--target `{name}` is neither a target of this protocol ({}) nor built in (local)",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    protocol.targets = chosen;
    Ok(())
}

impl CampaignArgs {
    /// Loads the protocol, applies the command-line overrides and finds a backend per target.
    /// Provider names come from the user's config.toml as well as the built-in kinds.
    pub fn prepare(self) -> Result<SessionSpec, InputError> {
        let config = crate::config::Config::load_user()?;
        let providers = config.providers;
        let mut protocol = Protocol::load_with_providers(&self.protocol, &providers.names())?;
        let o = self.overrides;
        select_targets(&mut protocol, &o.targets)?;
        if let Some(n) = o.repeats {
            protocol.campaign.repeats = n;
        }
        if let Some(c) = o.concurrency {
            protocol.campaign.concurrency = c;
        }
        if let Some(n) = o.breaker {
            protocol.campaign.breaker = n;
        }
        SessionSpec::with_providers(protocol, o.out, &providers)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn tui(args: TuiArgs, theme: Option<&str>) -> i32 {
    use crate::tui::{picker::PickerState, state::App, Outcome};
    let theme =
        match crate::tui::theme::resolve(theme, &crate::tui::theme::ThemeEnv::from_process()) {
            Ok(theme) => theme,
            Err(e) => return fail(e, EXIT_INPUT),
        };
    let config = match crate::config::Config::load_user() {
        Ok(c) => c,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let mut picker = PickerState::discover(config.providers);
    let start = match args.protocol {
        Some(protocol) => match (CampaignArgs {
            protocol: {
                picker.select_file(&protocol);
                protocol
            },
            overrides: args.overrides,
        })
        .prepare()
        {
            Ok(spec) => Some(spec),
            Err(e) => return fail(e, EXIT_INPUT),
        },
        None if args.overrides.is_empty() => None,
        None => {
            return fail(
                "--target, --repeats, --concurrency, --breaker and --out need a PROTOCOL; in the picker, edit them in the editor pane",
                EXIT_INPUT,
            )
        }
    };
    if !std::io::stdout().is_terminal() {
        return fail(
            "the dashboard needs a terminal; use `reprise run` for headless runs",
            EXIT_INPUT,
        );
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let mut app = App::picker(picker);
    app.theme = theme;
    match runtime.block_on(crate::tui::run_live(app, start)) {
        Ok(Outcome::Closed(result)) => {
            print!(
                "{}",
                report::table(
                    &result.snapshot,
                    &result.archive,
                    &result.identity,
                    &result.protocol
                )
            );
            if result.interrupted() {
                return stopped_early(&result);
            }
            EXIT_OK
        }
        Ok(Outcome::NothingRun) => EXIT_OK,
        Ok(Outcome::Failed(e)) => fail(e, EXIT_INPUT),
        Err(e) => fail(e, EXIT_INPUT),
    }
}

fn open(args: OpenArgs, theme: Option<&str>) -> i32 {
    // Everything that can fail on input is checked before the terminal is touched.
    let opened = match crate::tui::replay::open(&args.archive) {
        Ok(opened) => opened,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let theme =
        match crate::tui::theme::resolve(theme, &crate::tui::theme::ThemeEnv::from_process()) {
            Ok(theme) => theme,
            Err(e) => return fail(e, EXIT_INPUT),
        };
    if !std::io::stdout().is_terminal() {
        return fail(
            "the dashboard needs a terminal; `reprise compare` and `reprise verify` read archives headless",
            EXIT_INPUT,
        );
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let mut app = opened.app(args.replay);
    app.theme = theme;
    match runtime.block_on(async move {
        let playback = opened.play(args.replay);
        crate::tui::run_open(app, playback).await
    }) {
        Ok(_) => EXIT_OK,
        Err(e) => fail(e, EXIT_INPUT),
    }
}

/// The session to continue and the spec that reproduces its conditions: the protocol file
/// the header names, with the targets, repeats, concurrency and breaker the conditions record.
fn resume_spec(path: &Path) -> Result<(SessionSpec, archive::Reopened), InputError> {
    let reopened = archive::reopen(path)?;
    let header = &reopened.archive.header;
    let Some(protocol) = header.protocol_path.clone() else {
        return Err(InputError::new(
            path,
            "the session names no protocol file (it was imported), so it cannot be resumed",
        ));
    };
    let conditions = &header.conditions;
    let number = |key: &str| {
        conditions["campaign"][key]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
    };
    let targets = conditions["targets"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let spec = CampaignArgs {
        protocol: PathBuf::from(protocol),
        overrides: Overrides {
            targets,
            repeats: number("repeats"),
            concurrency: number("concurrency"),
            // Left out of the conditions at its default.
            breaker: Some(number("breaker").unwrap_or(crate::protocol::DEFAULT_BREAKER)),
            out: None,
        },
    }
    .prepare()?;
    Ok((spec, reopened))
}

fn run(args: RunArgs) -> i32 {
    let (spec, reopened) = match (&args.resume, args.protocol) {
        (Some(archive), _) => match resume_spec(archive) {
            Ok((spec, reopened)) => (spec, Some(reopened)),
            Err(e) => return fail(e, EXIT_INPUT),
        },
        (None, Some(protocol)) => match (CampaignArgs {
            protocol,
            overrides: args.overrides,
        })
        .prepare()
        {
            Ok(spec) => (spec, None),
            Err(e) => return fail(e, EXIT_INPUT),
        },
        (None, None) => return fail("give a PROTOCOL or --resume ARCHIVE", EXIT_INPUT),
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    let protocol = &spec.protocol;
    let name = protocol.meta.name.clone();
    let total = protocol.targets.len() as u64
        * protocol.items.len() as u64
        * u64::from(protocol.campaign.warmup + protocol.campaign.repeats);
    // Unreachable, key refused, model unknown: said once, before the campaign, not per call.
    let targets: Vec<_> = protocol
        .targets
        .iter()
        .map(|t| t.name.clone())
        .zip(spec.backends.iter().cloned())
        .collect();
    let preflight = async {
        match args.no_preflight {
            true => None,
            false => crate::providers::check::preflight(&targets).await,
        }
    };
    if let Some(problem) = runtime.block_on(preflight) {
        return fail(problem, EXIT_INPUT);
    }
    let result = runtime.block_on(async {
        let control = RunControl::default();
        let ctrl_c = control.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nstopping: no new calls; waiting for the calls in flight (Ctrl-C again cancels them)");
                ctrl_c.stop.cancel();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                ctrl_c.abort.cancel();
            }
        });
        let progress = Progress::new(total);
        let result = match reopened {
            Some(reopened) => {
                progress.resumed(&reopened.archive.calls);
                let observe = |record: Option<&crate::record::CallRecord>, _: &_| {
                    if let Some(record) = record {
                        progress.record(record);
                    }
                };
                resume_session(spec, reopened, control, observe).await
            }
            None => run_session(spec, control, |record, _| progress.record(record)).await,
        };
        progress.finish();
        result
    });
    let result = match result {
        Ok(r) => r,
        Err(e) => return fail(e, EXIT_INPUT),
    };
    if args.json {
        let summary = report::summary_json(&result.snapshot, &result.archive, &result.identity);
        let summary = report::with_stop(summary, &result.close);
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        print!(
            "{}",
            report::table(&result.snapshot, &result.archive, &result.identity, &name)
        );
    }
    if result.interrupted() {
        return stopped_early(&result);
    }
    if let Some(r) = args.fail_under {
        let mut failed = false;
        for target in &result.snapshot.targets {
            for item in &target.items {
                match item.modal_share {
                    Some(m) if m >= r => {}
                    share => {
                        failed = true;
                        eprintln!(
                            "fail-under {r}: item `{}` on target `{}` has modal share {}",
                            item.item,
                            target.target,
                            share.map_or("undefined (no successful call)".into(), |m| format!(
                                "{m:.3}"
                            ))
                        );
                    }
                }
            }
        }
        if failed {
            return EXIT_CHECK_FAILED;
        }
    }
    EXIT_OK
}

/// Says why a campaign did not complete, or how far a stopped one got; its exit code: 2 when
/// it failed (its closing record says why), 130 when the user stopped it.
fn stopped_early(result: &crate::session::SessionResult) -> i32 {
    if result.close.outcome == archive::SessionOutcome::Failed {
        let reason = result
            .close
            .reason
            .as_deref()
            .unwrap_or("the session failed");
        return fail(crate::text::inert(reason), EXIT_INPUT);
    }
    eprintln!(
        "stopped early: {} of {} planned calls recorded; the archive is closed and verifiable",
        result.close.records, result.close.planned_calls
    );
    EXIT_INTERRUPTED
}

/// Progress on stderr, only when stderr is a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(total: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} calls · {rate} · eta {eta} {msg}",
        ) {
            bar.set_style(style.with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} calls/s", state.per_sec());
                },
            ));
        }
        Progress { bar: Some(bar) }
    }

    fn record(&self, record: &crate::record::CallRecord) {
        if let Some(bar) = &self.bar {
            if record.retried {
                bar.set_message("· retrying");
                return;
            }
            if record.status != crate::record::CallStatus::Ok {
                bar.set_message("· errors seen");
            }
            bar.inc(1);
        }
    }

    /// A resumed session: the outcomes already archived count as done.
    fn resumed(&self, calls: &[crate::record::CallRecord]) {
        if let Some(bar) = &self.bar {
            let done = calls
                .iter()
                .filter(|c| !c.retried && c.status != crate::record::CallStatus::Cancelled)
                .count();
            bar.set_position(done as u64);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn verify(path: &Path) -> i32 {
    match archive::verify(path) {
        Ok(report) => {
            println!("{report}");
            EXIT_OK
        }
        Err(e @ archive::VerifyError::Unreadable { .. }) => fail(e, EXIT_INPUT),
        Err(e) => {
            eprintln!("FAILED {e}");
            EXIT_CHECK_FAILED
        }
    }
}

fn sessions(dir: Option<PathBuf>) -> i32 {
    let Some(dir) = dir.or_else(archive::default_dir) else {
        return fail(
            "no data directory for sessions on this platform; give --dir",
            EXIT_INPUT,
        );
    };
    match archive::list_sessions(&dir) {
        Ok(listing) => {
            print!("{}", report::sessions_table(&dir, &listing));
            EXIT_OK
        }
        Err(e) => fail(
            format!("{}: cannot list sessions: {e}", dir.display()),
            EXIT_INPUT,
        ),
    }
}

fn compare(path_a: &Path, path_b: &Path, json: bool) -> i32 {
    let read = |path: &Path| crate::session::analyse_archive(path);
    let (a, b) = match (read(path_a), read(path_b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return fail(e, EXIT_INPUT),
    };
    let verified = |path: &Path| archive::verify(path).map(|_| ());
    let comparison = crate::compare::compare((&a.0, &a.1), (&b.0, &b.1))
        .with_integrity(verified(path_a), verified(path_b));
    if json {
        let doc = crate::compare::json(&comparison, path_a, path_b);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", crate::compare::table(&comparison, path_a, path_b));
    }
    EXIT_OK
}

fn export(args: ExportArgs) -> i32 {
    use std::io::Write;
    // To a file: written beside it and renamed, so a failed export leaves nothing behind.
    let result = match &args.out {
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            crate::export::export(&args.archive, args.format, &mut lock)
        }
        Some(out) => {
            if out.exists() {
                return fail(
                    format!("{}: exists; give another --out FILE", out.display()),
                    EXIT_INPUT,
                );
            }
            let mut name = out.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".partial-{}", std::process::id()));
            let tmp = out.with_file_name(name);
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(crate::export::ExportError::from)
                .and_then(|file| {
                    let mut w = std::io::BufWriter::new(file);
                    let notes = crate::export::export(&args.archive, args.format, &mut w)?;
                    w.flush()?;
                    Ok(notes)
                })
                .and_then(|notes| {
                    std::fs::rename(&tmp, out)
                        .map(|()| notes)
                        .map_err(Into::into)
                });
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        }
    };
    match result {
        Ok(notes) => {
            if notes.unfinished {
                eprintln!(
                    "note: {} is unfinished (no closing record): {} call records exported",
                    args.archive.display(),
                    notes.records
                );
            }
            EXIT_OK
        }
        // The reader stopped early (`| head`): what it wanted, it got.
        Err(crate::export::ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            EXIT_OK
        }
        Err(e) => fail(e, EXIT_INPUT),
    }
}

fn import(args: ImportArgs) -> i32 {
    let options = crate::import::ImportOptions {
        format: args.format,
        out: args.out,
        dir: None,
        name: args.name,
    };
    match crate::import::import(&args.file, &options) {
        Ok(imported) => {
            println!(
                "imported {} outputs ({}, {}) · identity {} · archive {}",
                imported.records,
                count(imported.targets.len(), "target"),
                count(imported.items.len(), "item"),
                archive::short_identity(&imported.identity),
                imported.archive.display()
            );
            EXIT_OK
        }
        Err(e) => fail(e, EXIT_INPUT),
    }
}

/// "1 target", "3 targets".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
