//! The journal: today's append-only segments and everything that writes them.
//!
//! An entry's way down: [`commit`] buffers it (group commit: 100 entries or 1 s), [`record`]
//! frames it (length, CRC32, payload), [`writer`] writes the batch to the [`segment`] and one
//! run per execution to the live [`index`] (with its [`heads`] checkpoint), numbers it ([`seq`])
//! and keeps the newest bytes in memory ([`tail`]); [`recovery`] cuts a torn tail on open and
//! [`lock`] keeps one writer per directory.
//!
//! Imports go down only: the journal uses `entry`, `error`, `clock`, `names`, `view` and `day`,
//! and, for the writer's hand-offs, the read side's day view (`read::day_files`), the waiters of
//! followers and the seal queue it feeds closed segments to.

pub(crate) mod commit;
pub(crate) mod heads;
pub(crate) mod index;
pub(crate) mod lock;
pub mod record;
pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod seq;
pub(crate) mod tail;
pub(crate) mod writer;
