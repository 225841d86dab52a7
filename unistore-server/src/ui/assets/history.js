// History page: the compare tray. Picks are kept in sessionStorage, so they survive paging and
// filtering; the tray allows 2 to 4 finished runs and goes to /compare?runs=a,b,c.
"use strict";

(() => {
  const KEY = "unistore.compare";
  const MIN = 2, MAX = 4;
  const form = document.getElementById("compare-form");
  if (!form) return;
  const list = document.getElementById("tray-runs");
  const hint = document.getElementById("tray-hint");
  const button = document.getElementById("tray-compare");
  const clear = document.getElementById("tray-clear");
  const boxes = () => [...document.querySelectorAll('input[type=checkbox][name=run]')];

  function load() {
    try {
      const v = JSON.parse(sessionStorage.getItem(KEY) || "[]");
      return Array.isArray(v) ? v.filter(p => p && typeof p.id === "string") : [];
    } catch (_) { return []; }
  }
  let picked = load();
  const save = () => sessionStorage.setItem(KEY, JSON.stringify(picked));

  function render() {
    list.replaceChildren();
    picked.forEach((p, i) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = (i === 0 ? "baseline: " : "") + p.label;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "×";
      remove.title = "Remove from the tray";
      remove.setAttribute("aria-label", "Remove " + p.label);
      remove.addEventListener("click", () => { picked = picked.filter(q => q.id !== p.id); changed(); });
      li.append(name, remove);
      list.append(li);
    });
    const n = picked.length;
    const ok = n >= MIN && n <= MAX;
    button.disabled = !ok;
    clear.hidden = n === 0;
    form.classList.toggle("has-runs", n > 0);
    hint.textContent = n === 0 ? `Tick ${MIN} to ${MAX} finished runs.`
      : n < MIN ? `${n} picked: pick at least ${MIN}.`
      : n > MAX ? `${n} picked: at most ${MAX} can be compared; remove ${n - MAX}.`
      : `${n} runs picked; the first is the baseline.`;
    hint.classList.toggle("bad", n > MAX);
    const ids = new Set(picked.map(p => p.id));
    boxes().forEach(b => { b.checked = ids.has(b.value); });
  }
  function changed() { save(); render(); }

  boxes().forEach(b => b.addEventListener("change", () => {
    if (b.checked) {
      if (!picked.some(p => p.id === b.value)) picked.push({ id: b.value, label: b.dataset.label || b.value });
    } else {
      picked = picked.filter(p => p.id !== b.value);
    }
    changed();
  }));
  clear.addEventListener("click", () => { picked = []; changed(); });
  form.addEventListener("submit", e => {
    e.preventDefault();
    if (picked.length < MIN || picked.length > MAX) return;
    location.href = "/compare?runs=" + picked.map(p => encodeURIComponent(p.id)).join(",");
  });
  render();
})();
