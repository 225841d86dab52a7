// Templates pages: the list's actions (run, duplicate, delete, import) and the form (targets and
// tables from the connections API when it answers, the live mix sum, field checks, the SQL
// preview, save). Everything goes through the JSON API; data reaches the DOM as text only.
"use strict";

(() => {
  const enc = encodeURIComponent;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  /** POSTs text with its own content type (the import takes TOML as well as JSON). */
  async function postText(path, text, type) {
    const res = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": type, Accept: "application/json" },
      body: text,
    });
    const body = await res.text();
    let json = null;
    try { json = body ? JSON.parse(body) : null; } catch (_) { json = null; }
    if (!res.ok) {
      const err = new Error((json && json.error && json.error.message) || body || res.statusText);
      err.status = res.status;
      throw err;
    }
    return json;
  }

  // ---------------------------------------------------------------- the list
  function initList() {
    const notice = document.getElementById("list-notice");
    const table = document.getElementById("templates-table");
    const panel = document.getElementById("import-panel");
    const showImport = (show) => {
      panel.hidden = !show;
      if (show) document.getElementById("import-text").focus();
    };
    document.getElementById("import-toggle").addEventListener("click", () => showImport(panel.hidden));
    const emptyImport = document.getElementById("import-empty");
    if (emptyImport) emptyImport.addEventListener("click", () => showImport(true));
    document.getElementById("import-cancel").addEventListener("click", () => showImport(false));
    document.getElementById("import-file").addEventListener("change", async (ev) => {
      const file = ev.target.files && ev.target.files[0];
      if (file) document.getElementById("import-text").value = await file.text();
    });
    document.getElementById("import-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = document.getElementById("err-import");
      const text = document.getElementById("import-text").value;
      err.textContent = "";
      if (!text.trim()) {
        err.textContent = "Choose a file or paste a template first.";
        return;
      }
      const type = text.trim().startsWith("{") ? "application/json" : "application/toml";
      try {
        const saved = await postText("/api/templates/import", text, type);
        sessionStorage.setItem("ub-templates-notice", `Imported “${saved.name}”.`);
        location.reload();
      } catch (e) {
        err.textContent = e.message;
      }
    });
    const flash = sessionStorage.getItem("ub-templates-notice");
    if (flash) {
      sessionStorage.removeItem("ub-templates-notice");
      UB.notice(notice, "ok", flash);
    }
    if (!table) return;
    table.addEventListener("click", async (ev) => {
      const button = ev.target.closest("button[data-action]");
      if (!button) return;
      const row = button.closest("tr");
      const id = row.dataset.id;
      const name = row.dataset.name;
      const action = button.dataset.action;
      if (action === "delete" && !button.classList.contains("confirm")) {
        // Two steps instead of a modal dialog: the second click within 5 s deletes.
        button.classList.add("confirm");
        button.textContent = "Really delete?";
        setTimeout(() => {
          button.classList.remove("confirm");
          button.textContent = "Delete";
        }, 5000);
        return;
      }
      button.disabled = true;
      try {
        if (action === "run") {
          UB.notice(notice, "", `Starting a run of “${name}”…`);
          const run = await UB.api("POST", "/api/runs", { template_id: id });
          await UB.api("POST", `/api/runs/${enc(run.run_id)}/start`);
          location.href = `/runs/${enc(run.run_id)}`;
          return;
        }
        if (action === "duplicate") {
          const saved = await UB.api("POST", `/api/templates/${enc(id)}/duplicate`);
          sessionStorage.setItem("ub-templates-notice", `Duplicated “${name}” as “${saved.name}”.`);
        } else if (action === "delete") {
          await UB.api("DELETE", `/api/templates/${enc(id)}`);
          sessionStorage.setItem("ub-templates-notice", `Deleted “${name}”.`);
        }
        location.reload();
      } catch (e) {
        UB.notice(notice, "error", `${button.textContent.replace("▶", "").trim()} “${name}”: ${e.message}`);
        button.disabled = false;
      }
    });
  }

  // ---------------------------------------------------------------- the form
  const KINDS = ["POINT_LOOKUP", "RANGE_SCAN", "INSERT", "UPDATE", "CUSTOM_SQL"];
  const DURATION = /^\s*(0|(\d+\s*(ns|us|µs|ms|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days)\s*)+)\s*$/i;

  const $ = (id) => document.getElementById(id);
  const val = (id) => ($("f-" + id) ? $("f-" + id).value.trim() : "");

  function clearErrors() {
    document.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
    document.querySelectorAll(".field-error").forEach((e) => { if (e.id !== "err-import") e.textContent = ""; });
    UB.notice("form-notice", "", "");
  }

  function showError(field, message) {
    const box = document.querySelector(`.field[data-field="${field}"]`);
    const err = $("err-" + field);
    if (!box || !err) return false;
    box.classList.add("invalid");
    err.textContent = message;
    return true;
  }

  function showErrors(errors) {
    let first = null;
    for (const [field, message] of Object.entries(errors)) {
      if (showError(field, message) && !first) first = field;
    }
    if (first) {
      const box = document.querySelector(`.field[data-field="${first}"]`);
      const input = box.querySelector("input, select, textarea");
      box.scrollIntoView({ block: "center" });
      if (input) input.focus({ preventScroll: true });
    }
  }

  /** The field a server message is about, where the message names it. Order matters: "the
   *  mix contains write operations" is about the checkbox, not the mix. */
  function fieldOf(message) {
    const m = message.toLowerCase();
    const rules = [
      [/write operations|allow_writes|allow-writes/, "allow_writes"],
      [/custom_sql|custom sql|placeholders/, "custom_sql"],
      [/mix/, "mix"],
      [/target qps|target_qps/, "target_qps"],
      [/start_connections/, "start_connections"],
      [/step_connections/, "step_connections"],
      [/step_duration|the search \(/, "step_duration"],
      [/max_connections_per_worker/, "max_connections_per_worker"],
      [/max_connections/, "max_connections"],
      [/qps_drop_pct/, "qps_drop_pct"],
      [/p95_growth_pct/, "p95_growth_pct"],
      [/load\.max_error_rate/, "max_error_rate"],
      [/scaling\.min_workers/, "min_workers"],
      [/scaling\.max_workers/, "max_workers"],
      [/scaling\.workers|worker/, "workers"],
      [/slo\.[a-z_]+\.p95|p95_ms/, "slo_p95"],
      [/slo\.[a-z_]+\.p99|p99_ms/, "slo_p99"],
      [/slo\.[a-z_]+\.min_qps/, "slo_min_qps"],
      [/slo\.[a-z_]+\.max_error_rate/, "slo_error_rate"],
      [/warmup/, "warmup"],
      [/measurement/, "measurement"],
      [/cooldown/, "cooldown"],
      [/connections/, "connections"],
      [/seed/, "seed"],
      [/target url|stored connection|target `|not a url|backend for/, "target"],
      [/declared as|table type|table_type/, "table_type"],
      [/table|column|primary key|schema/, "table"],
      [/name/, "name"],
    ];
    for (const [re, field] of rules) if (re.test(m)) return field;
    return null;
  }

  /** Places a server error beside its field, or at the top of the form. */
  function showServerError(message, where) {
    const field = fieldOf(message);
    const hidden = field && $("err-" + field) && $("err-" + field).offsetParent === null;
    if (field && !hidden && showError(field, message)) {
      showErrors({});
      const box = document.querySelector(`.field[data-field="${field}"]`);
      box.scrollIntoView({ block: "center" });
      if (where) UB.notice(where, "error", "See the marked field: " + message);
      return;
    }
    UB.notice(where || "form-notice", "error", message);
  }

  /** `int 1..100, key, text 16, choice a|b, float 0..1, now` into generators. */
  function parseParams(text) {
    if (!text.trim()) return { params: [] };
    const params = [];
    for (const raw of text.split(",")) {
      const p = raw.trim();
      let m;
      if (/^key$/i.test(p)) params.push({ kind: "key" });
      else if (/^now$/i.test(p)) params.push({ kind: "now" });
      else if ((m = /^int\s+(-?\d+)\s*\.\.=?\s*(-?\d+)$/i.exec(p))) params.push({ kind: "int", min: Number(m[1]), max: Number(m[2]) });
      else if ((m = /^float\s+(-?[\d.]+)\s*\.\.\s*(-?[\d.]+)$/i.exec(p))) params.push({ kind: "float", min: Number(m[1]), max: Number(m[2]) });
      else if ((m = /^text(?:\s+(\d+))?$/i.exec(p))) params.push(m[1] ? { kind: "text", len: Number(m[1]) } : { kind: "text" });
      else if ((m = /^choice\s+(.+)$/i.exec(p))) params.push({ kind: "choice", values: m[1].split("|").map((s) => s.trim()).filter(Boolean) });
      else return { error: `“${p}” is not a parameter: use key, int MIN..MAX, float MIN..MAX, text LEN, choice A|B, now` };
    }
    return { params };
  }

  function countPlaceholders(sql) {
    // Outside quotes only, like the server's count.
    let n = 0, quote = null;
    for (const ch of sql) {
      if (quote) { if (ch === quote) quote = null; }
      else if (ch === "'" || ch === '"') quote = ch;
      else if (ch === "?") n++;
    }
    return n;
  }

  function initForm(data) {
    const original = data.template;
    const form = $("template-form");
    const errors = {};

    // Mix: live sum, message beside the mix.
    const mixInputs = KINDS.map((k) => $("mix-" + k));
    function mixState() {
      let sum = 0, bad = null;
      const mix = {};
      for (const input of mixInputs) {
        const text = input.value.trim();
        const v = text === "" ? 0 : Number(text);
        if (!Number.isInteger(v) || v < 0 || v > 100) bad = `${input.dataset.kind.toLowerCase().replace("_", " ")}: give a whole percentage from 0 to 100`;
        else {
          sum += v;
          if (v > 0) mix[input.dataset.kind] = v;
        }
      }
      return { sum, mix, bad };
    }
    function updateMix() {
      const { sum, bad } = mixState();
      const out = $("mix-sum");
      out.textContent = `${sum}%`;
      out.className = sum === 100 && !bad ? "ok" : "bad";
      const box = $("mix-field");
      const message = bad || (sum === 100 ? "" : `The mix sums to ${sum}%: it must be 100% (${sum < 100 ? "add" : "remove"} ${Math.abs(100 - sum)}%).`);
      box.classList.toggle("invalid", Boolean(message));
      $("err-mix").textContent = message;
    }
    mixInputs.forEach((i) => i.addEventListener("input", updateMix));
    updateMix();

    // Load mode and scaling: show the fields that apply.
    function showModes() {
      const mode = $("f-load_mode").value;
      document.querySelectorAll("[data-mode]").forEach((e) => { e.hidden = !e.dataset.mode.split(" ").includes(mode); });
      const scaling = $("f-scaling").value;
      document.querySelectorAll("[data-scaling]").forEach((e) => { e.hidden = !e.dataset.scaling.split(" ").includes(scaling); });
    }
    $("f-load_mode").addEventListener("change", showModes);
    $("f-scaling").addEventListener("change", showModes);
    showModes();

    // Targets from the connections API; without it (404: not in this build) the demo database only.
    const targetSelect = $("f-target");
    const tablesList = $("tables-list");
    async function loadTargets() {
      let connections;
      try {
        connections = await UB.api("GET", "/api/connections");
      } catch (e) {
        if (e.status !== 404) $("target-hint").textContent = `Stored connections could not be listed: ${e.message}`;
        return;
      }
      if (!Array.isArray(connections)) return;
      const current = targetSelect.value;
      connections.sort((a, b) => (b.builtin === true) - (a.builtin === true));
      targetSelect.textContent = "";
      for (const c of connections) {
        targetSelect.append(el("option", { value: `connection:${c.id}` }, `${c.name} (${c.kind})`));
      }
      const known = [...targetSelect.options].some((o) => o.value === current);
      if (!known && current && current !== data.demo_url) targetSelect.append(el("option", { value: current }, current));
      if (known || (current && current !== data.demo_url)) targetSelect.value = current;
      else if (current === data.demo_url) {
        // The demo database as given by URL is the built-in demo connection.
        const demo = connections.find((c) => c.builtin);
        if (demo) targetSelect.value = `connection:${demo.id}`;
      }
      loadTables();
    }
    async function loadTables() {
      tablesList.textContent = "";
      const target = targetSelect.value;
      if (target === data.demo_url) {
        tablesList.append(el("option", { value: "demo_orders" }, "demo_orders · SQLite demo table"));
        return;
      }
      if (!target.startsWith("connection:")) return;
      try {
        const tables = await UB.api("GET", `/api/connections/${enc(target.slice("connection:".length))}/tables`);
        for (const t of tables || []) {
          const name = [t.database, t.schema, t.name].filter(Boolean).join(".");
          const rows = t.row_estimate === null || t.row_estimate === undefined ? "" : ` · ~${UB.num(t.row_estimate)} rows`;
          tablesList.append(el("option", { value: name }, `${t.table_type || ""}${rows}`));
        }
        $("table-hint").textContent = `${(tables || []).length} tables found; type to filter.`;
      } catch (e) {
        // Discovery may not be wired yet: the table stays free text.
        if (e.status !== 404) $("table-hint").textContent = `Tables could not be listed (${e.message}); type the name.`;
      }
    }
    targetSelect.addEventListener("change", loadTables);
    loadTables();
    loadTargets();

    /** The template the form describes, on top of the one it was opened with (so fields the
     *  form does not show, such as stages or per-kind SLOs, are kept), and the field errors. */
    function build() {
      for (const k of Object.keys(errors)) delete errors[k];
      const t = JSON.parse(JSON.stringify(original));
      const need = (id, what) => { const v = val(id); if (!v) errors[id] = `Give ${what}.`; return v; };
      const int = (id, min, what) => {
        const text = val(id);
        const v = Number(text);
        if (text === "" || !Number.isInteger(v) || v < min) { errors[id] = `${what} must be a whole number of at least ${min}.`; return null; }
        return v;
      };
      const num = (id, { min = 0, max = Infinity, optional = false, what }) => {
        const text = val(id);
        if (text === "" && optional) return undefined;
        const v = Number(text);
        if (text === "" || !Number.isFinite(v) || v < min || v > max) {
          errors[id] = max === Infinity ? `${what} must be a number of at least ${min}.` : `${what} must be between ${min} and ${max}.`;
          return undefined;
        }
        return v;
      };
      const duration = (id, what) => {
        const v = val(id);
        if (!DURATION.test(v)) errors[id] = `${what}: write a duration such as 30s, 2m or 1m 30s.`;
        return v;
      };

      t.name = need("name", "the template a name");
      const target = $("f-target").value;
      if (target) t.target = target; else delete t.target;
      t.table = need("table", "the table to load");
      const tableType = $("f-table_type").value;
      if (tableType) t.table_type = tableType; else delete t.table_type;

      const { sum, mix, bad } = mixState();
      if (bad) errors.mix = bad;
      else if (sum !== 100) errors.mix = `The mix sums to ${sum}%: it must be 100%.`;
      t.mix = mix;
      t.allow_writes = $("f-allow_writes").checked;
      if (!t.allow_writes && (mix.INSERT || mix.UPDATE)) {
        errors.allow_writes = "The mix has INSERT or UPDATE: tick this to let the run change the table.";
      }

      const sql = $("f-custom_sql").value.trim();
      const rest = (original.custom_sql || []).slice(1);
      if (sql) {
        const parsed = parseParams(val("custom_params"));
        if (parsed.error) errors.custom_params = parsed.error;
        else if (countPlaceholders(sql) !== parsed.params.length) {
          errors.custom_params = `The statement has ${countPlaceholders(sql)} ? placeholders and ${parsed.params.length} parameters: give one per ?.`;
        }
        const first = Object.assign({}, (original.custom_sql || [])[0] || {}, { sql, params: parsed.params || [] });
        t.custom_sql = [first].concat(rest);
      } else if (rest.length) {
        t.custom_sql = rest;
      } else {
        delete t.custom_sql;
      }
      if (mix.CUSTOM_SQL && !t.custom_sql) errors.custom_sql = "The mix has custom SQL: write the statement here.";

      const mode = $("f-load_mode").value;
      if (mode === "CONCURRENCY") t.load = { mode, connections: int("connections", 1, "Connections") };
      else if (mode === "QPS") {
        t.load = { mode, target_qps: num("target_qps", { min: 0.001, what: "Target QPS" }), connections: int("connections", 1, "Connections") };
      } else {
        t.load = {
          mode,
          start_connections: int("start_connections", 1, "Start connections"),
          step_connections: int("step_connections", 1, "Connections per step"),
          step_duration: duration("step_duration", "Step duration"),
          max_connections: int("max_connections", 1, "Max connections"),
          qps_drop_pct: num("qps_drop_pct", { what: "The QPS drop" }),
          p95_growth_pct: num("p95_growth_pct", { what: "The p95 growth" }),
          max_error_rate: num("max_error_rate", { max: 1, what: "The error rate" }),
        };
      }

      const scaling = $("f-scaling").value;
      if (scaling === "FIXED") t.scaling = { mode: scaling, workers: int("workers", 1, "Workers") };
      else if (scaling === "AUTO") t.scaling = { mode: scaling, max_workers: int("max_workers", 1, "Max workers") };
      else {
        t.scaling = {
          mode: scaling,
          min_workers: int("min_workers", 1, "Min workers"),
          max_workers: int("max_workers", 1, "Max workers"),
          max_connections_per_worker: int("max_connections_per_worker", 1, "Connections per worker"),
        };
      }

      t.phases = {
        warmup: duration("warmup", "Warmup"),
        measurement: duration("measurement", "Measurement"),
        cooldown: duration("cooldown", "Cooldown"),
      };

      const slo = {
        p95_ms: num("slo_p95", { optional: true, what: "p95" }),
        p99_ms: num("slo_p99", { optional: true, what: "p99" }),
        min_qps: num("slo_min_qps", { optional: true, what: "QPS" }),
        max_error_rate: num("slo_error_rate", { optional: true, max: 1, what: "The error rate" }),
      };
      for (const k of Object.keys(slo)) if (slo[k] === undefined) delete slo[k];
      t.slo = Object.assign({}, original.slo || {});
      delete t.slo.TOTAL;
      if (Object.keys(slo).length) t.slo.TOTAL = slo;

      const seed = val("seed");
      if (seed === "") delete t.seed;
      else if (!/^\d+$/.test(seed) || !Number.isSafeInteger(Number(seed))) errors.seed = "The seed is a whole number (or empty for a random one).";
      else t.seed = Number(seed);
      return t;
    }

    function checked() {
      clearErrors();
      const t = build();
      if (Object.keys(errors).length) {
        showErrors(errors);
        if ($("err-mix").textContent) $("mix-field").classList.add("invalid");
        return null;
      }
      return t;
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = checked();
      if (!t) {
        UB.notice("form-notice", "error", "Nothing was saved: fix the marked fields.");
        return;
      }
      const button = $("save-button");
      button.disabled = true;
      $("save-status").textContent = "Saving…";
      try {
        const saved = data.id
          ? await UB.api("PUT", `/api/templates/${enc(data.id)}`, { template: t })
          : await UB.api("POST", "/api/templates", { template: t });
        sessionStorage.setItem("ub-templates-notice", `Saved “${saved.name}” (version ${saved.version}).`);
        location.href = "/templates";
      } catch (e) {
        $("save-status").textContent = "Not saved.";
        showServerError(e.message);
        button.disabled = false;
      }
    });

    $("preview-button").addEventListener("click", async () => {
      const t = checked();
      const panel = $("preview");
      const body = $("preview-body");
      if (!t) {
        UB.notice("form-notice", "error", "Fix the marked fields to preview the SQL.");
        return;
      }
      panel.hidden = false;
      body.textContent = "";
      UB.notice("preview-notice", "", "Profiling the table and rendering the statements…");
      try {
        const p = await UB.api("POST", "/api/templates/preview", { template: t });
        UB.notice("preview-notice", "", "");
        renderPreview(body, p);
      } catch (e) {
        UB.notice("preview-notice", "error", e.message);
        showServerError(e.message, "form-notice");
      }
      panel.scrollIntoView({ block: "start" });
    });
  }

  function renderPreview(body, p) {
    const dl = el("dl", { class: "kv preview-facts" });
    const fact = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
    fact("Target", p.target);
    fact("Table", el("code", {}, p.table));
    fact("Table type", p.table_type.toLowerCase());
    fact("Rows (estimate)", UB.num(p.row_estimate));
    fact("Key column", p.key_column ? el("code", {}, p.key_column) : "none (only inserts and custom SQL can run)");
    const cols = el("div", { class: "columns-list" });
    for (const c of p.columns) {
      cols.append(el("span", { class: "col" + (c.name === p.key_column ? " key" : ""), title: c.native_type }, `${c.name}: ${c.column_type}`));
    }
    fact("Columns", cols);
    body.append(dl);
    for (const w of p.warnings || []) body.append(el("div", { class: "notice warn" }, w));
    const list = el("div", { class: "statements" });
    for (const s of p.statements) {
      const head = el("div", { class: "statement-head" },
        el("span", { class: "badge" }, s.kind), s.name ? el("strong", {}, s.name) : null,
        el("span", { class: "muted small" }, `${UB.num(s.percent)}% of operations`));
      const item = el("div", { class: "statement" }, head, el("pre", { class: "sql" }, s.sql));
      if (s.params.length) {
        const tbody = el("tbody");
        for (const prm of s.params) {
          tbody.append(el("tr", {}, el("td", { class: "num" }, String(prm.position)), el("td", {}, prm.column ? el("code", {}, prm.column) : "–"),
            el("td", {}, prm.column_type), el("td", {}, prm.value)));
        }
        const table = el("table", { class: "params" },
          el("thead", {}, el("tr", {}, el("th", { class: "num" }, "#"), el("th", {}, "Column"), el("th", {}, "Type"), el("th", {}, "Value"))), tbody);
        item.append(el("div", { class: "table-wrap" }, table));
      } else {
        item.append(el("p", { class: "muted small" }, "No parameters."));
      }
      if (s.returning) item.append(el("p", { class: "muted small" }, `Returns ${s.returning} (read-your-writes).`));
      list.append(item);
    }
    body.append(list);
  }

  if (document.getElementById("template-form")) initForm(UB.pageData());
  else initList();
})();
