//! A plugin prints a forged record frame: bytes that form a whole, CRC-valid frame of the old
//! (version-1) scheme naming another execution. Damage to the record holding them then makes
//! recovery resynchronise through the plugin's text. Version-2 frames are keyed by the
//! segment's salt and their own offset (`docs/FORMAT.md`), so the forged bytes are never taken
//! for a record: the other execution gets nothing, the plugin's damaged line is counted as
//! damage, and the records after it are kept.

mod common;

use common::*;
use logstore::capture::{
    run_plugin, CancelSignal, CaptureConfig, CaptureContext, PluginCommand, PluginEnd, PluginId,
};
use logstore::{Durability, ExecutionId, Level, LogEntry, LogStore, StoreError, TaskId};

/// A version-1 frame of `victim`'s entry whose every byte is printable through a pipe as one
/// line of text: ASCII (so valid UTF-8, kept byte for byte), no line end, not a record marker.
fn forged_frame() -> Vec<u8> {
    for k in 0u32.. {
        let e = LogEntry::new(
            ExecutionId::new("victim").unwrap(),
            7,
            Level::Error,
            "scheduler",
            format!("forged {k}"),
        );
        let mut frame = Vec::new();
        logstore::format::encode(&e, &mut frame).unwrap();
        if frame
            .iter()
            .all(|&b| b < 0x80 && b != b'\n' && b != b'\r' && b != 0x1E)
        {
            return frame;
        }
    }
    unreachable!()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn a_forged_frame_in_plugin_output_never_becomes_a_record_even_through_damage() {
    let forged = forged_frame();
    let hex: String = forged.iter().map(|b| format!("{b:02x}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    let ctx = CaptureContext::new(
        ExecutionId::new("plugin-exec").unwrap(),
        TaskId::new("t1").unwrap(),
        PluginId::parse("acme/forger.run").unwrap(),
    );
    let mut cmd = PluginCommand::trusted(
        "node",
        [
            "-e",
            "process.stdout.write(Buffer.from(process.env.FORGED, 'hex')); \
             process.stdout.write('\\n'); console.log('after the forgery');",
        ],
    );
    cmd.env.push(("FORGED".into(), hex));
    let outcome = run_plugin(
        &ctx,
        &cmd,
        &CaptureConfig::default(),
        &store,
        CancelSignal::never(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.end, PluginEnd::Exited(0));
    store.flush(Durability::Synced).unwrap();
    let before: Vec<String> = all_of(&store, "plugin-exec")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        before.iter().any(|m| m.as_bytes() == &forged[..]),
        "{before:?}"
    );
    drop(store);

    // The forged bytes are in the segment verbatim, and under the old scheme they are a whole,
    // valid record of "victim": the attack is real.
    let seg = last_segment(dir.path());
    let bytes = std::fs::read(&seg).unwrap();
    let at = find(&bytes, &forged).expect("the forged bytes are stored as printed");
    let (p, _) = logstore::format::decode(&bytes[at..]).expect("valid under version 1");
    assert_eq!(p.execution_id, "victim");
    // The record that holds them: damage its length field, so that recovery has to
    // resynchronise from inside it and meets the forged frame first.
    let (off, len, _, _) = frames(&seg)
        .into_iter()
        .find(|f| f.0 < at as u64 && at as u64 + forged.len() as u64 <= f.0 + f.1 as u64)
        .expect("the plugin's record");
    assert!(len > forged.len());
    flip_bit(&seg, off + 1, 3);

    let store = LogStore::open(dir.path()).unwrap();
    assert!(
        matches!(
            store.query(&ExecutionId::new("victim").unwrap(), &Default::default()),
            Err(StoreError::UnknownExecution(_))
        ),
        "the forged frame became a record"
    );
    let after: Vec<String> = all_of(&store, "plugin-exec")
        .into_iter()
        .map(|e| e.message)
        .collect();
    // Only the damaged record is lost; the line after it and the task's end are kept.
    assert_eq!(after.len(), before.len() - 1, "{after:?}");
    assert!(after.iter().any(|m| m == "after the forgery"));
    assert!(!after.iter().any(|m| m.as_bytes() == &forged[..]));
    assert!(
        store.recovered_damage().iter().any(|d| d.offset == off),
        "{:?}",
        store.recovered_damage()
    );
    assert!(store
        .list()
        .unwrap()
        .iter()
        .all(|s| s.execution_id.as_str() != "victim"));
}
