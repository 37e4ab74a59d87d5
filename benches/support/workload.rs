//! The benchmark workload, shared by `benches/throughput.rs` and `examples/compare.rs` (both
//! include this file with `#[path]`), so that the criterion figures and the peer comparison
//! measure the same entries.
//!
//! Entry number `seq` belongs to execution `seq % executions` (round-robin interleaving, the
//! worst case for the per-execution index: every batch of 100 holds 100 different executions).
//! Its fields look like an engine's: `execution_id` `exec-000123`, source
//! `plugin:<ns>/<plugin>.<action>`, a task id that changes every 125 entries of an execution,
//! level INFO 90 %, DEBUG 5 %, WARN 4 %, ERROR 1 %, and a message of exactly
//! [`MESSAGE_LEN`] bytes.
//!
//! Entries are built in place in one template per execution, so generating the workload costs
//! a few string writes per entry and allocates nothing in steady state: what is timed is the
//! store, not the generator.

#![allow(dead_code)] // each includer uses a different part

use logstore::{ExecutionId, Level, LogEntry, TaskId};

/// Bytes in every generated message.
pub const MESSAGE_LEN: usize = 150;

/// Timestamp of entry 0 (Unix ms); entry `seq` is `seq` ms later.
pub const BASE_TS: i64 = 1_750_000_000_000;

const SOURCES: [&str; 4] = [
    "plugin:ns/plugin.action",
    "plugin:core/http.request",
    "plugin:aws/s3.upload",
    "plugin:git/repo.clone",
];

const TASKS: usize = 8;
const ENTRIES_PER_TASK: u64 = 125;

// Long enough for any start in 0..64 plus the rest of a message.
const FILLER: &str = "the quick brown fox jumps over the lazy dog while the workflow engine \
    schedules the next task and the plugin reports progress on its long running action; \
    the quick brown fox jumps over the lazy dog while the workflow engine schedules the next \
    task and the plugin reports progress on its long running action; ";

/// The id of execution number `i`: `exec-000123`.
pub fn execution_id(i: usize) -> ExecutionId {
    ExecutionId::new(format!("exec-{i:06}")).expect("valid id")
}

/// Generates the entries of `executions` interleaved executions.
pub struct Workload {
    templates: Vec<LogEntry>,
    task_of: Vec<usize>,
    tasks: Vec<TaskId>,
}

impl Workload {
    /// A workload over `executions` executions (`exec-000000` ...).
    pub fn new(executions: usize) -> Workload {
        let tasks: Vec<TaskId> = (0..TASKS)
            .map(|t| TaskId::new(format!("task-{t}")).expect("valid id"))
            .collect();
        let templates = (0..executions)
            .map(|i| {
                LogEntry::new(
                    execution_id(i),
                    BASE_TS,
                    Level::Info,
                    SOURCES[i % SOURCES.len()],
                    String::with_capacity(MESSAGE_LEN),
                )
                .with_task(tasks[0].clone())
            })
            .collect();
        Workload {
            templates,
            task_of: vec![0; executions],
            tasks,
        }
    }

    /// Number of executions.
    pub fn executions(&self) -> usize {
        self.templates.len()
    }

    /// Entry number `seq` of the round-robin workload.
    pub fn entry(&mut self, seq: u64) -> &LogEntry {
        let exec = usize::try_from(seq % self.templates.len() as u64).expect("fits");
        self.entry_of(exec, seq)
    }

    /// Entry number `seq`, written as an entry of execution number `exec`.
    pub fn entry_of(&mut self, exec: usize, seq: u64) -> &LogEntry {
        let per_exec = seq / self.templates.len() as u64;
        let task = usize::try_from(per_exec / ENTRIES_PER_TASK % TASKS as u64).expect("fits");
        if self.task_of[exec] != task {
            self.task_of[exec] = task;
            self.templates[exec].task_id = Some(self.tasks[task].clone());
        }
        let e = &mut self.templates[exec];
        e.timestamp = BASE_TS + i64::try_from(seq).expect("fits");
        e.level = match seq % 100 {
            0..=4 => Level::Debug,
            5..=8 => Level::Warn,
            9 => Level::Error,
            _ => Level::Info,
        };
        // Formatting machinery would cost as much as the store's encoder (it did, 900
        // instructions an entry), flattering every system's ratio to the floor: digits by hand.
        e.message.clear();
        e.message.push_str("step ");
        push_digits(&mut e.message, seq);
        e.message.push_str(" of task-");
        e.message
            .push(char::from(b'0' + u8::try_from(task).expect("< 10")));
        e.message.push_str(": ");
        let start = usize::try_from(seq % 64).expect("fits");
        let need = MESSAGE_LEN - e.message.len();
        e.message.push_str(&FILLER[start..start + need]);
        debug_assert_eq!(e.message.len(), MESSAGE_LEN);
        e
    }
}

/// Appends `n` as exactly ten decimal digits (zero-padded).
fn push_digits(s: &mut String, mut n: u64) {
    let mut digits = [b'0'; 10];
    for d in digits.iter_mut().rev() {
        *d = b'0' + u8::try_from(n % 10).expect("< 10");
        n /= 10;
    }
    s.push_str(std::str::from_utf8(&digits).expect("ascii digits"));
}

/// The terminal entry of an execution: source `scheduler`, metadata `{"state": "SUCCESS"}`.
pub fn terminal_entry(id: &ExecutionId, ts: i64) -> LogEntry {
    let mut meta = serde_json::Map::new();
    meta.insert("state".to_owned(), serde_json::Value::from("SUCCESS"));
    LogEntry::new(
        id.clone(),
        ts,
        Level::Info,
        logstore::SCHEDULER_SOURCE,
        "execution finished",
    )
    .with_metadata(meta)
}
