// One execution's logs. The page never holds the whole execution: #spacer gives the scroll
// height of all matching entries, #rows holds only the rows in view, and entries are fetched
// in blocks of BLOCK by position (at most MAX_BLOCKS kept). Live entries come from the
// follow endpoint (server-sent events) and stick to the bottom unless the reader scrolled up.
"use strict";

(() => {
  const ROW = 20;              // px, the row height in viewer.css
  const BLOCK = 500;           // entries per fetch
  const MAX_BLOCKS = 24;       // blocks kept (12,000 entries)
  const MAX_PX = 8000000;      // taller scroll areas are scaled (browsers cap element heights)
  const LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"];
  const $ = (id) => document.getElementById(id);

  const id = decodeURIComponent(location.pathname.replace(/^\/executions\//, "").replace(/\/$/, ""));
  const base = "/api/executions/" + encodeURIComponent(id);
  const log = $("log"), spacer = $("spacer"), rows = $("rows"), status = $("status");

  let total = 0;            // matching entries known
  let lines = 0;            // the execution's lines when counted: follow resumes there
  let blocks = new Map();   // block number -> {entries, lines} or {loading, queued}
  let generation = 0;       // bumped when the filters change: older answers are dropped
  let source = null;        // the EventSource while following
  let finished = false;
  let stick = true;         // at the bottom: new entries scroll into view
  let target = null;        // line number from #L123
  let queued = false;
  let refresh = null;       // interval refreshing the summary while following

  $("exec-id").textContent = id;
  document.title = "logstore: " + id;
  const download = $("download");
  download.href = base + "/logs?format=ndjson";
  download.setAttribute("download", id + ".ndjson");

  function filterParams() {
    const p = new URLSearchParams();
    if ($("level").value) p.set("level", $("level").value);
    if ($("task").value.trim()) p.set("task", $("task").value.trim());
    if ($("q").value) p.set("q", $("q").value);
    return p;
  }
  const filtered = () => [...filterParams().keys()].length > 0;

  // Geometry of the (possibly scaled) virtual window.
  function geometry() {
    const view = log.clientHeight;
    const full = Math.max(1, Math.floor(view / ROW));
    const height = total * ROW;
    const scaled = height > MAX_PX;
    return { view, full, scaled, height: scaled ? MAX_PX : height };
  }
  function firstIndex(g) {
    if (!g.scaled) return Math.floor(log.scrollTop / ROW);
    const maxScroll = Math.max(1, g.height - g.view);
    return Math.round((log.scrollTop / maxScroll) * Math.max(0, total - g.full));
  }
  function scrollTopFor(index, g) {
    if (!g.scaled) return index * ROW;
    return (index / Math.max(1, total - g.full)) * (g.height - g.view);
  }

  function item(i) {
    const b = Math.floor(i / BLOCK);
    const blk = blocks.get(b);
    if (!blk || blk.loading) return null;
    const off = i - b * BLOCK;
    if (off >= blk.entries.length) {
      // Entries counted (by follow) that this block was fetched too early to hold.
      if (!blk.refetch) {
        blk.refetch = setTimeout(() => { if (blocks.get(b) === blk) { blocks.delete(b); schedule(); } }, 300);
      }
      return null;
    }
    return { e: blk.entries[off], line: blk.lines[off] };
  }

  function rowEl(i, it) {
    const r = Viewer.el("div", "row");
    r.dataset.index = String(i);
    if (!it) {
      r.classList.add("pending");
      r.appendChild(Viewer.el("span", "ln", ""));
      r.appendChild(Viewer.el("span", "msg", "…"));
      return r;
    }
    const e = it.e;
    if (LEVELS.includes(e.level)) r.classList.add(e.level);
    if (target === it.line) r.classList.add("target");
    r.dataset.line = String(it.line);
    const ln = Viewer.el("a", "ln", it.line);
    ln.href = "#L" + it.line;
    r.appendChild(ln);
    r.appendChild(Viewer.el("span", "ts", Viewer.time(e.timestamp)));
    r.appendChild(Viewer.el("span", "lvl", e.level));
    const src = Viewer.el("span", "src");
    Viewer.ansi(src, String(e.source));
    r.appendChild(src);
    if (e.task_id) {
      const t = Viewer.el("span", "task");
      Viewer.ansi(t, "[" + e.task_id + "]");
      r.appendChild(t);
    }
    const msg = Viewer.el("span", "msg");
    Viewer.ansi(msg, String(e.message));
    if (e.metadata) {
      const meta = Viewer.el("span", "meta muted");
      Viewer.ansi(meta, " " + JSON.stringify(e.metadata));
      msg.appendChild(meta);
    }
    r.appendChild(msg);
    return r;
  }

  function schedule() {
    if (!queued) {
      queued = true;
      requestAnimationFrame(render);
    }
  }

  function render() {
    queued = false;
    const g = geometry();
    spacer.style.height = g.height + "px";
    if (stick && total > 0) log.scrollTop = log.scrollHeight;
    const first = Math.max(0, Math.min(firstIndex(g), total - 1));
    const count = Math.min(total - first, g.full + 2);
    rows.style.top = (g.scaled ? log.scrollTop : first * ROW) + "px";
    const out = [];
    const want = new Set();
    for (let i = first; i < first + count; i++) {
      const it = item(i);
      if (!it) want.add(Math.floor(i / BLOCK));
      out.push(rowEl(i, it));
    }
    rows.replaceChildren(...out);
    for (const b of want) fetchBlock(b, Math.floor(first / BLOCK));
    $("shown").textContent = total.toLocaleString("en") + (filtered() ? " matching" : " entries");
    document.body.dataset.total = String(total);
    document.body.dataset.first = String(first);
  }

  async function fetchBlock(b, near) {
    if (blocks.has(b)) return;
    const gen = generation;
    const slot = { loading: true, queued: [] };
    blocks.set(b, slot);
    const p = filterParams();
    p.set("offset", String(b * BLOCK));
    p.set("limit", String(BLOCK));
    try {
      const page = await Viewer.api(base + "/logs?" + p);
      if (gen !== generation) return;
      const blk = { entries: page.entries, lines: page.lines };
      for (const q of slot.queued) addTo(blk, b, q);
      blocks.set(b, blk);
      evict(near);
      schedule();
    } catch (err) {
      if (gen !== generation) return;
      blocks.delete(b);
      status.textContent = "Error: " + err.message;
    }
  }

  function evict(near) {
    if (blocks.size <= MAX_BLOCKS) return;
    const far = [...blocks.keys()].sort((a, c) => Math.abs(c - near) - Math.abs(a - near));
    for (const b of far.slice(0, blocks.size - MAX_BLOCKS)) {
      if (!blocks.get(b).loading) blocks.delete(b);
    }
  }

  // A followed entry at position q.idx, line q.line.
  function addTo(blk, b, q) {
    const off = q.idx - b * BLOCK;
    if (off === blk.entries.length && (blk.lines.length === 0 || q.line > blk.lines[blk.lines.length - 1])) {
      blk.entries.push(q.e);
      blk.lines.push(q.line);
    }
  }

  function onEntry(ev) {
    const q = { idx: total, e: JSON.parse(ev.data), line: Number(ev.lastEventId) };
    total += 1;
    lines = Math.max(lines, q.line);
    const b = Math.floor(q.idx / BLOCK);
    const blk = blocks.get(b);
    if (blk && blk.loading) blk.queued.push(q);
    else if (blk) addTo(blk, b, q);
    else if (q.idx % BLOCK === 0) blocks.set(b, { entries: [q.e], lines: [q.line] });
    schedule();
  }

  function follow() {
    stopFollow();
    if (finished) return;
    const p = filterParams();
    p.set("after", String(lines));
    source = new EventSource(base + "/follow?" + p);
    $("live").hidden = false;
    // The header's counts and state, refreshed while the execution runs.
    clearInterval(refresh);
    refresh = setInterval(summary, 2000);
    source.onmessage = onEntry;
    source.addEventListener("end", () => {
      finished = true;
      stopFollow();
      summary();
    });
    source.onerror = () => {
      // The browser reconnects by itself with Last-Event-ID; CLOSED means it gave up.
      if (source && source.readyState === EventSource.CLOSED) {
        status.textContent = "Live follow stopped (reload to retry).";
        stopFollow();
      }
    };
  }
  function stopFollow() {
    clearInterval(refresh);
    if (source) source.close();
    source = null;
    $("live").hidden = true;
  }

  async function summary() {
    try {
      const s = await Viewer.api(base);
      const st = Viewer.stateOf(s);
      const el = $("exec-state");
      el.textContent = st;
      el.className = "state " + st;
      $("exec-count").textContent = s.entries.toLocaleString("en") + " entries, " +
        s.errors.toLocaleString("en") + " errors";
      finished = finished || s.final_state !== null;
    } catch (err) {
      status.textContent = "Error: " + err.message;
    }
  }

  // (Re)loads from the start: after opening, and whenever a filter changes.
  async function reset(pending) {
    generation += 1;
    const gen = generation;
    stopFollow();
    blocks = new Map();
    status.textContent = "";
    try {
      const c = await Viewer.api(base + "/count?" + filterParams());
      if (gen !== generation) return;
      total = c.count;
      lines = c.lines;
      if (pending) await pending; // the summary, asked for at the same time, says if finished
    } catch (err) {
      status.textContent = "Error: " + err.message;
      return;
    }
    stick = !finished;
    spacer.style.height = geometry().height + "px"; // before any scrolling
    if (target !== null && !filtered()) {
      stick = false;
      log.scrollTop = scrollTopFor(Math.max(0, target - 1 - 5), geometry());
    }
    render();
    if (!document.body.dataset.ready) {
      // Milliseconds from navigation start to the first window drawn (the browser tests read it).
      document.body.dataset.readyMs = String(Math.round(performance.now()));
    }
    document.body.dataset.ready = "1";
    follow();
  }

  function fromHash() {
    const m = /^#L(\d+)$/.exec(location.hash);
    target = m ? Number(m[1]) : null;
  }

  log.addEventListener("scroll", () => {
    stick = log.scrollTop + log.clientHeight >= log.scrollHeight - ROW * 1.5;
    schedule();
  });
  window.addEventListener("resize", schedule);
  window.addEventListener("hashchange", () => {
    fromHash();
    if (target === null) return schedule();
    if (filtered()) {
      // Line numbers are positions in the whole execution: show it unfiltered.
      $("level").value = ""; $("task").value = ""; $("q").value = "";
      reset();
      return;
    }
    stick = false;
    log.scrollTop = scrollTopFor(Math.max(0, target - 1 - 5), geometry());
    schedule();
  });

  let debounce = null;
  const changed = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => reset(), 250);
  };
  $("filters").onsubmit = (ev) => ev.preventDefault();
  $("level").onchange = changed;
  $("task").oninput = changed;
  $("q").oninput = changed;
  Viewer.setupTz(schedule);
  // Wrap long lines (remembered across pages). The window stays one line per step of the
  // scroll bar; a wrapped line only takes more room on screen.
  const wrapBtn = $("wrap");
  const setWrap = (on) => {
    log.classList.toggle("wrap", on);
    wrapBtn.setAttribute("aria-pressed", String(on));
    localStorage.setItem("logstore.wrap", on ? "1" : "0");
  };
  setWrap(localStorage.getItem("logstore.wrap") === "1");
  wrapBtn.onclick = () => {
    setWrap(!log.classList.contains("wrap"));
    schedule();
  };

  // Filters may come in the address (a search hit links to `?q=...`).
  const initial = new URLSearchParams(location.search);
  if (initial.get("level")) $("level").value = initial.get("level").toUpperCase();
  if (initial.get("task")) $("task").value = initial.get("task");
  if (initial.get("q")) $("q").value = initial.get("q");

  fromHash();
  reset(summary());
})();
