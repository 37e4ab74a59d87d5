// Shared by the viewer's pages. Log data is untrusted: it only ever reaches the page through
// textContent (never innerHTML), and styles are set through the CSSOM, which the CSP allows.
"use strict";

const Viewer = (() => {
  const COOKIE = "logstore_token";

  function token() {
    for (const part of document.cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === COOKIE) return decodeURIComponent(v.join("="));
    }
    return null;
  }

  function headers() {
    const t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  // Shows the login form; resolves never (the page reloads after a login).
  function askToken(message) {
    const form = document.getElementById("login");
    for (const id of ["main", "log", "filters"]) {
      const e = document.getElementById(id);
      if (e) e.hidden = true;
    }
    form.hidden = false;
    document.getElementById("login-error").textContent = message || "";
    form.onsubmit = (ev) => {
      ev.preventDefault();
      const value = document.getElementById("token").value;
      const secure = location.protocol === "https:" ? "; Secure" : "";
      document.cookie = COOKIE + "=" + encodeURIComponent(value) + "; Path=/; SameSite=Strict" + secure;
      location.reload();
    };
    return new Promise(() => {});
  }

  // GET an API path as JSON; a 401 shows the login form, any other error throws with the
  // server's message.
  async function api(path) {
    const r = await fetch(path, { headers: headers(), credentials: "same-origin" });
    if (r.status === 401) {
      return askToken(token() ? "That token was refused." : "");
    }
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }

  // UTC or local time, remembered across pages.
  let utc = localStorage.getItem("logstore.tz") !== "local";
  function setupTz(onChange) {
    const b = document.getElementById("tz");
    const label = () => { b.textContent = utc ? "UTC" : "Local"; };
    label();
    b.onclick = () => {
      utc = !utc;
      localStorage.setItem("logstore.tz", utc ? "utc" : "local");
      label();
      onChange();
    };
  }
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  function time(ms) {
    const d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    if (utc) {
      return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + "T" +
        pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + "." +
        pad(d.getUTCMilliseconds(), 3) + "Z";
    }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
      pad(d.getMilliseconds(), 3);
  }

  // "just now", "3 min ago", "2 h ago", "5 days ago" (or "in 2 min" for a clock ahead).
  function ago(ms, now) {
    const d = (now === undefined ? Date.now() : now) - ms;
    const a = Math.abs(d);
    const say = (n, unit) => (d < 0 ? "in " + n + " " + unit : n + " " + unit + " ago");
    if (a < 45000) return "just now";
    if (a < 3600000) return say(Math.round(a / 60000), "min");
    if (a < 86400000) return say(Math.round(a / 3600000), "h");
    const days = Math.round(a / 86400000);
    return say(days, days === 1 ? "day" : "days");
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // Characters that must not act: C0/C1 controls and DEL, and the bidirectional controls that
  // would reorder what the reader sees. They are shown as escapes instead.
  const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
  function visible(c) {
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    const n = c.charCodeAt(0);
    return n < 0x100 ? "\\x" + n.toString(16).padStart(2, "0") : "\\u{" + n.toString(16) + "}";
  }

  // Appends `text` to `parent` as spans: SGR sequences (ESC [ ... m) set colours and weights;
  // every other control character, including the ESC of any other sequence, is shown escaped.
  const SGR = /^\u001b\[([0-9;:]*)m/;
  function ansi(parent, text) {
    let st = { fg: null, bg: null, b: false, dim: false, i: false, u: false };
    let buf = "";
    const flush = () => {
      if (!buf) return;
      const s = el("span", null, buf);
      const cls = [];
      if (typeof st.fg === "number") cls.push("fg" + st.fg);
      else if (st.fg) s.style.color = st.fg;
      if (typeof st.bg === "number") cls.push("bg" + st.bg);
      else if (st.bg) s.style.backgroundColor = st.bg;
      if (st.b) cls.push("b");
      if (st.dim) cls.push("dim");
      if (st.i) cls.push("i");
      if (st.u) cls.push("u");
      if (cls.length) s.className = cls.join(" ");
      parent.appendChild(s);
      buf = "";
    };
    let i = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === "\u001b") {
        const m = SGR.exec(text.slice(i, i + 64));
        if (m) {
          flush();
          st = applySgr(st, m[1]);
          i += m[0].length;
          continue;
        }
      }
      if (CONTROL.test(c)) {
        flush();
        parent.appendChild(el("span", "ctl", visible(c)));
        i += 1;
        continue;
      }
      buf += c;
      i += 1;
    }
    flush();
  }

  const clamp = (n) => Math.max(0, Math.min(255, n | 0));
  const rgb = (r, g, b) => "rgb(" + clamp(r) + "," + clamp(g) + "," + clamp(b) + ")";
  function color256(n) {
    if (n < 16) return n;
    if (n < 232) {
      const v = [0, 95, 135, 175, 215, 255];
      n -= 16;
      return rgb(v[Math.floor(n / 36)], v[Math.floor(n / 6) % 6], v[n % 6]);
    }
    const g = 8 + (n - 232) * 10;
    return rgb(g, g, g);
  }
  function applySgr(st, params) {
    st = Object.assign({}, st);
    const p = params === "" ? [0] : params.split(/[;:]/).map((x) => (x === "" ? 0 : parseInt(x, 10)));
    for (let k = 0; k < p.length; k++) {
      const n = p[k];
      if (n === 0) st = { fg: null, bg: null, b: false, dim: false, i: false, u: false };
      else if (n === 1) st.b = true;
      else if (n === 2) st.dim = true;
      else if (n === 3) st.i = true;
      else if (n === 4) st.u = true;
      else if (n === 22) { st.b = false; st.dim = false; }
      else if (n === 23) st.i = false;
      else if (n === 24) st.u = false;
      else if (n >= 30 && n <= 37) st.fg = n - 30;
      else if (n === 39) st.fg = null;
      else if (n >= 40 && n <= 47) st.bg = n - 40;
      else if (n === 49) st.bg = null;
      else if (n >= 90 && n <= 97) st.fg = n - 90 + 8;
      else if (n >= 100 && n <= 107) st.bg = n - 100 + 8;
      else if (n === 38 || n === 48) {
        let c = null;
        if (p[k + 1] === 5 && k + 2 < p.length) { c = color256(clamp(p[k + 2])); k += 2; }
        else if (p[k + 1] === 2 && k + 4 < p.length) { c = rgb(p[k + 2], p[k + 3], p[k + 4]); k += 4; }
        if (n === 38) st.fg = c; else st.bg = c;
      }
    }
    return st;
  }

  // RUNNING? for an execution without a terminal entry whose last entry is recent, as
  // `logstore list` shows it.
  function stateOf(e) {
    if (e.final_state) return e.final_state;
    return Date.now() - e.last_timestamp < 3600 * 1000 ? "RUNNING" : "-";
  }

  return { api, askToken, el, ansi, time, ago, setupTz, stateOf, headers };
})();
