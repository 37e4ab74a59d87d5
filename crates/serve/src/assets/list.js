// The executions list: newest first, paged by the API's cursor, filtered by state, time and
// id prefix (kept in the page's URL, so a filtered list can be linked and reloaded).
"use strict";

(() => {
  const tbody = document.querySelector("#executions tbody");
  const status = document.getElementById("status");
  const more = document.getElementById("more");
  const stateSel = document.getElementById("state");
  const whenSel = document.getElementById("when");
  const prefixIn = document.getElementById("prefix");
  const start = new URLSearchParams(location.search);
  stateSel.value = start.get("state") || "";
  whenSel.value = start.get("when") || "";
  prefixIn.value = start.get("prefix") || "";
  let next = null;
  let shown = [];

  function row(e) {
    const tr = Viewer.el("tr");
    const idCell = Viewer.el("td", "id");
    const a = Viewer.el("a", null, e.execution_id);
    a.href = "/executions/" + encodeURIComponent(e.execution_id);
    idCell.appendChild(a);
    tr.appendChild(idCell);
    const started = Viewer.el("td", "ago", Viewer.ago(e.first_timestamp));
    started.title = Viewer.time(e.first_timestamp);
    started.dataset.ms = String(e.first_timestamp);
    tr.appendChild(started);
    tr.appendChild(Viewer.el("td", null, Viewer.time(e.first_timestamp)));
    tr.appendChild(Viewer.el("td", null, Viewer.time(e.last_timestamp)));
    tr.appendChild(Viewer.el("td", "num", e.entries.toLocaleString("en")));
    tr.appendChild(Viewer.el("td", "num", e.errors.toLocaleString("en")));
    const st = Viewer.stateOf(e);
    const stCell = Viewer.el("td");
    stCell.appendChild(Viewer.el("span", "state " + st, st));
    tr.appendChild(stCell);
    return tr;
  }

  function render() {
    tbody.replaceChildren(...shown.map(row));
    status.textContent = shown.length ? "" : "No executions.";
    more.hidden = !next;
  }

  async function load(append) {
    const params = new URLSearchParams({ limit: "100" });
    const inUrl = new URLSearchParams();
    if (stateSel.value) {
      params.set("state", stateSel.value);
      inUrl.set("state", stateSel.value);
    }
    if (whenSel.value) {
      params.set("since", String(Date.now() - Number(whenSel.value)));
      inUrl.set("when", whenSel.value);
    }
    if (prefixIn.value.trim()) {
      params.set("prefix", prefixIn.value.trim());
      inUrl.set("prefix", prefixIn.value.trim());
    }
    if (!append) history.replaceState(null, "", inUrl.toString() ? "?" + inUrl : location.pathname);
    if (append && next) params.set("cursor", next);
    status.textContent = "Loading…";
    try {
      const page = await Viewer.api("/api/executions?" + params);
      shown = append ? shown.concat(page.executions) : page.executions;
      next = page.next;
      render();
    } catch (e) {
      status.textContent = "Error: " + e.message;
    }
  }

  // Store-wide search: each hit links to its execution with the text filter set.
  const results = document.getElementById("results");
  async function search(q) {
    const hitsEl = document.getElementById("hits");
    const note = document.getElementById("results-note");
    if (!q.trim()) {
      results.hidden = true;
      return;
    }
    results.hidden = false;
    note.textContent = "searching…";
    try {
      const r = await Viewer.api("/api/search?" + new URLSearchParams({ q, limit: "200", reverse: "true" }));
      hitsEl.replaceChildren(...r.hits.map((h) => {
        const row = Viewer.el("div", "row " + (["DEBUG", "INFO", "WARN", "ERROR"].includes(h.entry.level) ? h.entry.level : ""));
        const a = Viewer.el("a", "ln", h.entry.execution_id);
        // The execution page's text filter is a substring: the query without its quotes.
        const text = q.replace(/"/g, "").trim();
        a.href = "/executions/" + encodeURIComponent(h.entry.execution_id) + "?" + new URLSearchParams({ q: text });
        row.appendChild(a);
        row.appendChild(Viewer.el("span", "ts", Viewer.time(h.entry.timestamp)));
        row.appendChild(Viewer.el("span", "lvl", h.entry.level));
        const msg = Viewer.el("span", "msg");
        Viewer.ansi(msg, String(h.entry.message));
        row.appendChild(msg);
        return row;
      }));
      note.textContent = r.hits.length + (r.more ? "+ (newest first; narrow the search for more)" : " (newest first)");
    } catch (e) {
      hitsEl.replaceChildren();
      note.textContent = "Error: " + e.message;
    }
  }
  document.getElementById("search-form").onsubmit = (ev) => {
    ev.preventDefault();
    search(document.getElementById("search").value);
  };

  stateSel.onchange = () => load(false);
  whenSel.onchange = () => load(false);
  let typing = null;
  prefixIn.oninput = () => {
    clearTimeout(typing);
    typing = setTimeout(() => load(false), 250);
  };
  // Relative times age: refresh them every half minute.
  setInterval(() => {
    for (const td of tbody.querySelectorAll("td.ago")) {
      td.textContent = Viewer.ago(Number(td.dataset.ms));
    }
  }, 30000);
  document.getElementById("refresh").onclick = () => load(false);
  more.onclick = () => load(true);
  Viewer.setupTz(render);
  load(false);
})();
