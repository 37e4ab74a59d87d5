// The executions list: newest first, paged by the API's cursor.
"use strict";

(() => {
  const tbody = document.querySelector("#executions tbody");
  const status = document.getElementById("status");
  const more = document.getElementById("more");
  const stateSel = document.getElementById("state");
  let next = null;
  let shown = [];

  function row(e) {
    const tr = Viewer.el("tr");
    const idCell = Viewer.el("td", "id");
    const a = Viewer.el("a", null, e.execution_id);
    a.href = "/executions/" + encodeURIComponent(e.execution_id);
    idCell.appendChild(a);
    tr.appendChild(idCell);
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
    if (stateSel.value) params.set("state", stateSel.value);
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

  stateSel.onchange = () => load(false);
  document.getElementById("refresh").onclick = () => load(false);
  more.onclick = () => load(true);
  Viewer.setupTz(render);
  load(false);
})();
