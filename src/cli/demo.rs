//! `logstore demo`: a few real executions with real plugin processes, then a dump of one.
//!
//! Four executions run at the same time, so their entries interleave in the store as in an
//! engine: `etl` (three Node.js tasks using console.log, console.error and context.log:
//! SUCCESS), `flaky` (a task that fails once and succeeds on its retry: SUCCESS), `broken` (a
//! task that fails every attempt: FAILED), and `sandboxed` (a plugin in a Docker container,
//! restricted mode, where a Docker engine answers; otherwise it says why it is skipped).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use logstore::capture::{
    build_node_image, CancelSignal, CaptureConfig, Isolation, PluginCommand, PluginId, Restricted,
    IMAGE_SDK_PATH,
};
use logstore::{
    run_plugin_task, Engine, ExecutionId, ExecutionLog, Filter, FinalState, LogstoreLayer,
    SystemClock, TaskId, TaskResult,
};
use tracing_subscriber::prelude::*;

use super::{CmdResult, Out};

const SDK: &str = include_str!("../../sdk/context.js");
const IMAGE: &str = "logstore-demo-node:latest";

const EXTRACT: &str = r#"const { context } = require(process.env.LOGSTORE_SDK);
context.info("connecting to source", { host: "db.internal", port: 5432 });
for (let i = 1; i <= 3; i++) console.log(`extracted batch ${i}: ${i * 1000} rows`);
console.error("warning: column 'legacy_id' is deprecated");
context.debug("extract finished", { rows: 6000 });
"#;

const TRANSFORM: &str = r#"const { context } = require(process.env.LOGSTORE_SDK);
console.log("schema:\n  id INTEGER\n  name TEXT\n  amount NUMERIC");
context.warn("12 rows with a negative amount were set to 0", { rows: [17, 242, 977] });
process.stdout.write("transform done (no trailing newline)");
"#;

const LOAD: &str = r#"const { context } = require(process.env.LOGSTORE_SDK);
console.log("loading 6000 rows into warehouse.sales");
context.info("load committed", { table: "warehouse.sales", rows: 6000 });
"#;

// Fails on its first attempt, succeeds on the second: the marker file remembers.
const FLAKY: &str = r#"const fs = require("fs");
const { context } = require(process.env.LOGSTORE_SDK);
const marker = process.env.MARKER;
if (!fs.existsSync(marker)) {
  fs.writeFileSync(marker, "1");
  context.error("upstream answered 503", { status: 503, stack: "Error: 503\n    at fetch (fetch.js:12)" });
  process.exit(3);
}
console.log("fetched 42 records");
"#;

const BROKEN: &str = r#"const { context } = require(process.env.LOGSTORE_SDK);
console.log("validating input file");
context.error("input file is not valid CSV", { line: 7, reason: "unterminated quote" });
process.exit(2);
"#;

const SANDBOXED: &str = r#"const { context } = require(process.env.LOGSTORE_SDK);
const os = require("os");
console.log(`running as uid ${process.getuid()} in a container`);
context.info("network interfaces", { names: Object.keys(os.networkInterfaces()) });
try { require("fs").writeFileSync("/evil", "x"); } catch (e) { console.error(`write to / refused: ${e.code}`); }
"#;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip the restricted-mode (Docker) execution.
    #[arg(long)]
    no_docker: bool,
}

/// Runs the demo executions into the store at `dir`, then dumps one.
pub fn run(dir: &Path, args: Args) -> CmdResult {
    let work = std::env::temp_dir().join(format!("logstore-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = run_in(dir, &work, &args);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Writes the SDK and the plugin scripts into `work`; returns the SDK's path and each script's.
fn write_scripts(work: &Path) -> std::io::Result<(PathBuf, Vec<(&'static str, PathBuf)>)> {
    let sdk = work.join("context.js");
    std::fs::write(&sdk, SDK)?;
    let mut scripts = Vec::new();
    for (name, text) in [
        ("extract", EXTRACT),
        ("transform", TRANSFORM),
        ("load", LOAD),
        ("flaky", FLAKY),
        ("broken", BROKEN),
        ("sandboxed", SANDBOXED),
    ] {
        let path = work.join(format!("{name}.js"));
        std::fs::write(&path, text)?;
        scripts.push((name, path));
    }
    Ok((sdk, scripts))
}

fn run_in(dir: &Path, work: &Path, args: &Args) -> CmdResult {
    let (sdk, scripts) = write_scripts(work)?;
    let script = |name: &str| -> PathBuf {
        scripts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };

    let store = Arc::new(super::open_for_writing(dir)?);
    let engine = Engine::new(store.clone(), Arc::new(SystemClock));
    // The engine's own tracing events inside an execution span are stored too.
    let subscriber = tracing_subscriber::registry().with(LogstoreLayer::new(engine.clone()));
    // Global: the executions run on the runtime's worker threads.
    let _ = tracing::subscriber::set_global_default(subscriber);

    let stamp = logstore::Clock::now_ms(&SystemClock);
    let id = |name: &str| ExecutionId::new(format!("demo-{stamp}-{name}"));
    let trusted = |name: &str| -> PluginCommand {
        let mut cmd = PluginCommand::trusted("node", [script(name).display().to_string()]);
        cmd.env
            .push(("LOGSTORE_SDK".into(), sdk.display().to_string()));
        cmd
    };
    let mut flaky = trusted("flaky");
    flaky.env.push((
        "MARKER".into(),
        work.join("flaky.marker").display().to_string(),
    ));

    let docker = if args.no_docker {
        Err("--no-docker".to_owned())
    } else {
        eprintln!(
            "building the plugin image {IMAGE} from this machine's node (no registry needed)..."
        );
        build_node_image(IMAGE, SDK.as_bytes()).map_err(|e| e.to_string())
    };
    let sandboxed = docker.as_ref().ok().map(|()| {
        let mut cmd = PluginCommand::trusted("node", ["-e".to_owned(), SANDBOXED.to_owned()]);
        cmd.env.push(("LOGSTORE_SDK".into(), IMAGE_SDK_PATH.into()));
        cmd.isolation = Isolation::Restricted(Restricted::new(IMAGE));
        cmd
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let etl_id = id("etl")?;
    let step = |task, plugin, cmd, retries| Step {
        task,
        plugin,
        cmd,
        retries,
    };
    let plans: Vec<(ExecutionId, Vec<Step>)> = {
        let mut plans = vec![
            (
                etl_id.clone(),
                vec![
                    step("extract", "acme/postgres.extract", trusted("extract"), 0),
                    step("transform", "acme/sales.transform", trusted("transform"), 0),
                    step("load", "acme/warehouse.load", trusted("load"), 0),
                ],
            ),
            (
                id("flaky")?,
                vec![step("fetch", "acme/http.fetch", flaky, 2)],
            ),
            (
                id("broken")?,
                vec![step("validate", "acme/csv.validate", trusted("broken"), 1)],
            ),
        ];
        if let Some(cmd) = sandboxed {
            plans.push((
                id("sandboxed")?,
                vec![step("probe", "acme/sandbox.probe", cmd, 0)],
            ));
        }
        plans
    };
    runtime
        .block_on(async {
            let runs = plans.into_iter().map(|(exec, tasks)| {
                let engine = engine.clone();
                async move { run_execution(&engine, exec, tasks).await }
            });
            for r in futures_join_all(runs).await {
                r?;
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| -> Box<dyn std::error::Error> { e })?;
    if let Err(why) = &docker {
        eprintln!("restricted mode (Docker) skipped: {why}");
    }

    print_results(dir, &store, &etl_id)
}

/// Lists the executions, then dumps the ETL one, as an operator would.
fn print_results(dir: &Path, store: &logstore::LogStore, etl_id: &ExecutionId) -> CmdResult {
    let mut out = Out::stdout();
    use std::io::Write;
    writeln!(out, "== executions")?;
    out.flush()?;
    drop(out);
    super::list::run(dir, super::list::Args::default())?;
    let mut out = Out::stdout();
    writeln!(out, "\n== logstore --dir {} dump {etl_id}", dir.display())?;
    for entry in store.query(etl_id, &Filter::default())? {
        super::output::write_entry(&mut out, &entry, false)?;
    }
    writeln!(
        out,
        "\nTry: logstore --dir {} dump <id> --level WARN, list, stats, verify",
        dir.display()
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One task of a demo execution.
struct Step {
    task: &'static str,
    plugin: &'static str,
    cmd: PluginCommand,
    retries: u32,
}

/// Runs one execution's tasks in order; the first task that does not succeed ends it.
async fn run_execution(
    engine: &Arc<Engine>,
    exec: ExecutionId,
    tasks: Vec<Step>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let workflow = exec
        .as_str()
        .rsplit('-')
        .next()
        .unwrap_or("demo")
        .to_owned();
    let log: ExecutionLog = engine.start_execution(exec.clone(), &workflow)?;
    {
        let span = tracing::info_span!("execution", execution_id = exec.as_str());
        let _in = span.enter();
        tracing::info!(target: "engine::planner", tasks = tasks.len(), "planned the workflow");
    }
    let mut last: Option<(TaskId, TaskResult)> = None;
    for step in &tasks {
        let task = TaskId::new(step.task)?;
        let plugin = PluginId::parse(step.plugin)?;
        let result = run_plugin_task(
            &log,
            &task,
            &plugin,
            &step.cmd,
            &CaptureConfig::default(),
            step.retries,
            CancelSignal::never(),
        )
        .await?;
        let failed = result.final_state() != FinalState::Success;
        last = Some((task, result));
        if failed {
            break;
        }
    }
    match last {
        Some((task, result)) if result.final_state() != FinalState::Success => {
            log.finish(result.final_state(), &result.reason(&task))?;
        }
        _ => log.finish(
            FinalState::Success,
            &format!("all {} tasks succeeded", tasks.len()),
        )?,
    }
    Ok(())
}

/// Awaits all futures concurrently (a few lines instead of a `futures` dependency).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}
