// Connections page: add a connection (errors beside the field at fault), test one (the result
// beside its row, with latency and server version), remove one (a second click confirms).
// Everything from the API goes into the page as text, never as HTML.
"use strict";

(() => {
  const table = document.getElementById("connections");
  const tbody = table ? table.querySelector("tbody") : null;
  const form = document.getElementById("add-connection");
  const listError = document.getElementById("list-error");

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /** The same row the server renders (ui/connections.rs). */
  function rowFor(c) {
    const tr = el("tr");
    tr.dataset.id = c.id;
    const name = el("td", "name");
    name.appendChild(el("strong", "", c.name));
    if (c.builtin) { name.appendChild(document.createTextNode(" ")); name.appendChild(el("span", "badge", "built in")); }
    name.appendChild(el("div", "small muted mono", "connection:" + c.id));
    tr.appendChild(name);
    const kind = el("td", "kind");
    kind.dataset.label = "Kind";
    kind.appendChild(el("span", "badge kind " + c.kind, c.kind));
    tr.appendChild(kind);
    const url = el("td", "url");
    url.appendChild(el("code", "", c.url));
    tr.appendChild(url);
    const secret = el("td", "secret");
    secret.dataset.label = "Password";
    secret.appendChild(c.has_secret ? el("span", "badge ok", "stored, encrypted") : el("span", "muted", "none"));
    tr.appendChild(secret);
    const actions = el("td", "row-actions");
    const box = el("div", "actions");
    const test = el("button", "btn test", "Test");
    test.type = "button";
    box.appendChild(test);
    if (!c.builtin) {
      const remove = el("button", "btn remove", "Remove");
      remove.type = "button";
      box.appendChild(remove);
    }
    actions.appendChild(box);
    tr.appendChild(actions);
    const result = el("td", "result");
    result.appendChild(el("div", "test-result small"));
    tr.appendChild(result);
    return tr;
  }

  function showResult(tr, r) {
    const box = tr.querySelector(".test-result");
    box.replaceChildren();
    box.className = "test-result small " + (r.ok ? "ok" : "bad");
    const head = el("div", "verdict");
    head.appendChild(el("span", "badge " + (r.ok ? "ok" : "bad"), r.ok ? "connected" : "failed"));
    if (r.latency_ms !== null && r.latency_ms !== undefined) {
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("span", "latency", UB.ms(r.latency_ms)));
    }
    box.appendChild(head);
    if (r.server_version) box.appendChild(el("div", "version", r.server_version));
    if (!r.ok) box.appendChild(el("div", "message", r.message));
  }

  async function test(tr, button) {
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "Testing…";
    const box = tr.querySelector(".test-result");
    box.className = "test-result small";
    box.textContent = "connecting…";
    try {
      showResult(tr, await UB.api("POST", "/api/connections/" + encodeURIComponent(tr.dataset.id) + "/test"));
    } catch (e) {
      showResult(tr, { ok: false, message: e.message, latency_ms: null, server_version: null });
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  async function remove(tr, button) {
    if (button.dataset.confirm !== "1") {
      button.dataset.confirm = "1";
      button.textContent = "Confirm remove";
      button.classList.add("danger");
      setTimeout(() => {
        if (button.isConnected) {
          button.dataset.confirm = "";
          button.textContent = "Remove";
          button.classList.remove("danger");
        }
      }, 4000);
      return;
    }
    button.disabled = true;
    try {
      await UB.api("DELETE", "/api/connections/" + encodeURIComponent(tr.dataset.id));
      tr.remove();
      UB.notice(listError, "", "");
    } catch (e) {
      button.disabled = false;
      UB.notice(listError, "error", e.message);
    }
  }

  if (tbody) {
    tbody.addEventListener("click", (ev) => {
      const button = ev.target.closest("button");
      const tr = ev.target.closest("tr");
      if (!button || !tr) return;
      if (button.classList.contains("test")) test(tr, button);
      else if (button.classList.contains("remove")) remove(tr, button);
    });
  }

  const fields = ["name", "url", "secret"];
  function fieldError(field, text) {
    const wrap = document.getElementById("field-" + field);
    wrap.classList.toggle("invalid", !!text);
    document.getElementById("error-" + field).textContent = text || "";
  }

  /** The API's messages start with the field they are about ("name: ...", "secret: ..."). */
  function fieldOf(message) {
    const m = /^(name|url|secret):\s*/.exec(message);
    return m ? [m[1], message.slice(m[0].length)] : ["url", message];
  }

  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      fields.forEach((f) => fieldError(f, ""));
      const name = form.elements.name.value.trim();
      const url = form.elements.url.value.trim();
      const secret = form.elements.secret.value;
      let bad = false;
      if (!name) { fieldError("name", "give the connection a name"); bad = true; }
      if (!url) { fieldError("url", "give the database URL (examples below)"); bad = true; }
      if (bad) return;
      const button = document.getElementById("add-button");
      button.disabled = true;
      UB.setText("add-status", "adding…");
      try {
        const body = { name, url };
        if (secret) body.secret = secret;
        const c = await UB.api("POST", "/api/connections", body);
        if (tbody) tbody.appendChild(rowFor(c));
        form.reset();
        UB.setText("add-status", "added " + c.name + " (connection:" + c.id + ")");
      } catch (e) {
        const [field, text] = fieldOf(e.message);
        fieldError(field, text);
        UB.setText("add-status", "");
      } finally {
        button.disabled = false;
      }
    });
  }
})();
