'use strict';
// The plugin side of context.log (see docs/PLUGINS.md).
//
// Each call writes one RFC 7464 record to stderr: the byte 0x1E, one JSON object, "\n".
// It writes synchronously to fd 2 so a record lands in the same order as console.error output
// around it. JSON.stringify escapes newlines, so a multi-line message stays one record.

const fs = require('fs');

const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'];

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// Writes all of `buf` to fd 2. Node may have made the pipe non-blocking, so a full pipe gives
// EAGAIN: wait a little and retry rather than lose the record.
function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(2, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      sleepMs(1);
    }
  }
}

function encode(level, message, metadata) {
  const record = { level, message };
  if (metadata !== undefined && metadata !== null) record.metadata = metadata;
  try {
    return JSON.stringify(record);
  } catch (e) {
    // Circular or BigInt metadata: keep the message, say why the metadata is missing.
    return JSON.stringify({ level, message, metadata: { sdk_error: `metadata not serializable: ${e.message}` } });
  }
}

function log(level, message, metadata) {
  const name = String(level).toUpperCase();
  if (!LEVELS.includes(name)) {
    throw new TypeError(`context.log: unknown level ${JSON.stringify(level)}; use one of ${LEVELS.join(', ')}`);
  }
  if (metadata !== undefined && metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata))) {
    throw new TypeError('context.log: metadata must be a plain object');
  }
  const text = message instanceof Error ? (message.stack || String(message)) : String(message);
  writeAll(Buffer.from('\x1e' + encode(name, text, metadata) + '\n', 'utf8'));
}

const context = {
  log,
  debug: (message, metadata) => log('DEBUG', message, metadata),
  info: (message, metadata) => log('INFO', message, metadata),
  warn: (message, metadata) => log('WARN', message, metadata),
  error: (message, metadata) => log('ERROR', message, metadata),
};

module.exports = { context, LEVELS };
