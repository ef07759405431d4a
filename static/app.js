// ftw: the little JavaScript there is. Every page works without it.
"use strict";

// Index page: filter the tool cards as you type (the form also works as a plain GET).
(function () {
  const box = document.querySelector("[data-tool-search]");
  if (!box) return;
  const cards = Array.from(document.querySelectorAll("[data-tool]"));
  const sections = Array.from(document.querySelectorAll("[data-group]"));
  const empty = document.querySelector("[data-no-match]");
  const apply = () => {
    const q = box.value.trim().toLowerCase();
    let shown = 0;
    for (const card of cards) {
      const hit = !q || card.dataset.tool.includes(q);
      card.hidden = !hit;
      if (hit) shown++;
    }
    for (const section of sections) {
      section.hidden = !section.querySelector("[data-tool]:not([hidden])");
    }
    if (empty) empty.hidden = shown > 0;
  };
  box.addEventListener("input", apply);
  apply();
})();

// Form page: after the server refused a submission, take the user to the first field
// it marked (the notice at the top links to each of them too).
(function () {
  if (!document.querySelector("[data-errors]")) return;
  const field = document.querySelector(".field.invalid");
  if (!field) return;
  field.scrollIntoView({ block: "center" });
  const control = field.querySelector("input, select, textarea");
  if (control) control.focus({ preventScroll: true });
})();

// Form page: fields that adapt. A field with data-show-field is shown while that field
// has the value data-show-equals; a hidden one is a disabled fieldset, so the browser
// neither requires nor sends it (the server decides the same way on its own). A select
// with data-options-from asks the server for its options again when a field it names
// changes; the server checks a submission against the options it computes itself.
(function () {
  const form = document.querySelector("form[data-adapts]");
  if (!form) return;
  const csrf = form.querySelector('input[name="_csrf"]').value;
  const valuesOf = (name) => {
    const out = [];
    for (const e of form.elements) {
      if (e.name !== name || e.disabled) continue;
      if (e.tagName === "SELECT") out.push(...[...e.selectedOptions].map((o) => o.value));
      else if (e.type === "checkbox" && e.id === "f-" + name) out.push(e.checked ? "true" : "false");
      else if (e.type === "checkbox" || e.type === "radio") { if (e.checked) out.push(e.value); }
      else if (e.type !== "file") out.push(e.value);
    }
    return out;
  };
  const applyShows = () => {
    for (let pass = 0; pass < 20; pass++) {
      let changed = false;
      for (const box of form.querySelectorAll("[data-show-field]")) {
        const show = valuesOf(box.dataset.showField).includes(box.dataset.showEquals);
        if (box.hidden === show) {
          box.hidden = !show;
          box.disabled = !show;
          changed = true;
        }
      }
      if (!changed) break;
    }
  };
  const watched = new Set();
  for (const select of form.querySelectorAll("select[data-options-from]")) {
    for (const name of select.dataset.optionsFrom.split(" ")) watched.add(name);
  }
  let asked = 0;
  const refresh = async () => {
    const mine = ++asked;
    const body = new URLSearchParams();
    for (const e of form.elements) {
      if (!e.name || e.name === "_csrf" || e.disabled || e.type === "file" || e.type === "password") continue;
      if ((e.type === "checkbox" || e.type === "radio") && !e.checked) continue;
      if (e.tagName === "SELECT") for (const o of e.selectedOptions) body.append(e.name, o.value);
      else body.append(e.name, e.value);
    }
    let answer;
    try {
      const r = await fetch(form.dataset.adapts, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
        body,
      });
      if (!r.ok || mine !== asked) return;
      answer = await r.json();
    } catch (_) { return; }
    for (const [name, field] of Object.entries(answer.fields || {})) {
      const select = form.querySelector('select[name="' + CSS.escape(name) + '"]');
      if (!select) continue;
      const chosen = new Set([...select.selectedOptions].map((o) => o.value));
      const empty = select.querySelector('option[value=""]');
      select.replaceChildren(...(empty ? [empty] : []));
      for (const choice of field.options) {
        const option = document.createElement("option");
        option.value = choice.value;
        option.textContent = choice.label;
        option.selected = chosen.has(choice.value);
        select.append(option);
      }
      const notice = document.getElementById("n-" + name);
      if (notice) {
        notice.textContent = field.problem ? "No options: " + field.problem + "." : "";
        notice.hidden = !field.problem;
      }
    }
    applyShows();
  };
  form.addEventListener("change", (e) => {
    applyShows();
    if (watched.has(e.target.name)) refresh();
  });
})();

// Run page: follow the output live over Server-Sent Events. The server sends HTML that
// it has already escaped (ANSI colours become <span class>), so it is inserted as is.
(function () {
  const main = document.querySelector("[data-run]");
  if (!main || !window.EventSource) return;
  const output = main.querySelector("[data-output]");
  const status = main.querySelector("[data-status]");
  const duration = main.querySelector("[data-duration]");
  const cancel = main.querySelector("[data-cancel]");
  const files = main.querySelector("[data-files]");
  const problem = main.querySelector("[data-problem]");
  const nothing = main.querySelector("[data-no-output]");
  const download = main.querySelector("[data-download]");
  let stickToBottom = true;

  // A live "running for" while it runs, counted from what the server measured.
  const human = (ms) => {
    const s = Math.floor(ms / 1000);
    return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
  };
  let timer = null;
  if (duration.dataset.runningMs) {
    const base = Number(duration.dataset.runningMs) - performance.now();
    const tick = () => { duration.textContent = "running for " + human(base + performance.now()); };
    tick();
    timer = setInterval(tick, 1000);
  }
  output.addEventListener("scroll", () => {
    stickToBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 8;
  });
  const follow = () => { if (stickToBottom) output.scrollTop = output.scrollHeight; };
  const setStatus = (word, text) => {
    status.className = "status " + word;
    status.textContent = text;
  };

  const events = new EventSource(main.dataset.events);
  events.addEventListener("snapshot", (e) => { output.innerHTML = e.data; follow(); });
  events.addEventListener("output", (e) => { output.insertAdjacentHTML("beforeend", e.data); follow(); });
  events.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    setStatus(s.status, s.text);
    if (s.status === "running" && timer === null) {
      const begun = performance.now();
      const tick = () => { duration.textContent = "running for " + human(performance.now() - begun); };
      tick();
      timer = setInterval(tick, 1000);
    }
  });
  events.addEventListener("end", (e) => {
    events.close();
    const end = JSON.parse(e.data);
    if (timer !== null) clearInterval(timer);
    setStatus(end.status, end.text);
    duration.textContent = end.duration ? "took " + end.duration : "";
    if (cancel) cancel.remove();
    if (end.problem) {
      main.classList.add("problem");
      problem.textContent = "This run " + end.text + ".";
      problem.hidden = false;
    }
    if (end.output_bytes === 0) {
      output.hidden = true;
      if (download) download.hidden = true;
      if (end.status !== "error") nothing.hidden = false;
    }
    // Tables and Markdown are rendered (and escaped) by the server: take its page's list.
    if (files && end.files.some((f) => /\.(csv|json|md|markdown)$/i.test(f.name))) {
      fetch(location.href, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject()))
        .then((html) => {
          const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-files]");
          if (fresh) { files.replaceWith(fresh); sortable(fresh); }
        })
        .catch(() => {});
    }
    if (files && end.files.length) {
      files.replaceChildren();
      const heading = document.createElement("h2");
      heading.textContent = "Files";
      files.append(heading);
      for (const f of end.files) {
        const row = document.createElement("div");
        row.className = "file";
        const link = document.createElement("a");
        link.href = f.url;
        link.textContent = f.name;
        if (!f.image) link.setAttribute("download", "");
        const size = document.createElement("span");
        size.className = "optional";
        size.textContent = " " + f.size + " bytes";
        row.append(link, size);
        if (f.image) {
          const img = document.createElement("img");
          img.src = f.url;
          img.alt = f.name;
          row.append(document.createElement("br"), img);
        }
        files.append(row);
      }
      files.hidden = false;
    }
  });
})();

// Run page: result tables sort by a column when its heading is clicked (numbers as
// numbers); the order the file has comes back on the third click.
function sortable(root) {
  for (const table of root.querySelectorAll("table[data-sortable]")) {
    const body = table.tBodies[0];
    const original = [...body.rows];
    table.querySelectorAll("th").forEach((th, column) => {
      th.dataset.sort = "";
      th.tabIndex = 0;
      const sort = () => {
        const next = { "": "ascending", ascending: "descending", descending: "" }[th.getAttribute("aria-sort") || ""];
        table.querySelectorAll("th").forEach((other) => other.removeAttribute("aria-sort"));
        if (!next) { body.replaceChildren(...original); return; }
        th.setAttribute("aria-sort", next);
        const key = (row) => (row.cells[column] ? row.cells[column].textContent : "");
        const rows = [...body.rows].sort((a, b) => {
          const x = key(a), y = key(b);
          const nx = Number(x), ny = Number(y);
          const order = x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
          return next === "ascending" ? order : -order;
        });
        body.replaceChildren(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  }
}
sortable(document);

// Passkeys (WebAuthn): the server's options carry bytes as base64url; the browser's
// API wants ArrayBuffers, and its answer goes back as base64url again.
(function () {
  if (!window.PublicKeyCredential) return;
  const toBytes = (s) => {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  };
  const toText = (buf) =>
    btoa(String.fromCharCode(...new Uint8Array(buf)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const status = (text) => {
    const el = document.getElementById("passkey-status");
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  };
  const post = (url, csrf, body) =>
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
  const failed = async (r) => {
    try { return (await r.json()).error || "Something went wrong."; } catch (_) { return "Something went wrong."; }
  };

  // Account page: make a passkey.
  const add = document.querySelector("[data-passkey-register]");
  if (add) {
    add.addEventListener("submit", async (e) => {
      e.preventDefault();
      const url = add.dataset.passkeyRegister, csrf = add.dataset.csrf;
      status("");
      try {
        const r = await post(url + "/options", csrf, {});
        if (!r.ok) return status(await failed(r));
        const { ceremony, options } = await r.json();
        const pk = options.publicKey;
        pk.challenge = toBytes(pk.challenge);
        pk.user.id = toBytes(pk.user.id);
        (pk.excludeCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
        // A discoverable key, so it can also sign in without a password.
        pk.authenticatorSelection = Object.assign({}, pk.authenticatorSelection, { residentKey: "preferred" });
        const cred = await navigator.credentials.create({ publicKey: pk });
        const credential = {
          id: cred.id, rawId: toText(cred.rawId), type: cred.type, extensions: {},
          response: {
            attestationObject: toText(cred.response.attestationObject),
            clientDataJSON: toText(cred.response.clientDataJSON),
          },
        };
        const name = add.querySelector("[name=name]").value;
        const done = await post(url, csrf, { ceremony, name, credential });
        if (!done.ok) return status(await failed(done));
        window.location.reload();
      } catch (err) {
        status("No passkey was made (" + err.name + ").");
      }
    });
  }

  // Sign-in page: a passkey as the second step, or alone.
  for (const button of document.querySelectorAll("[data-passkey-sign-in]")) {
    button.addEventListener("click", async () => {
      const base = button.dataset.base, csrf = button.dataset.csrf;
      status("");
      try {
        const r = await post(base + "login/passkey/options", csrf, { mode: button.dataset.passkeySignIn });
        if (!r.ok) return status(await failed(r));
        const { ceremony, options } = await r.json();
        const pk = options.publicKey;
        pk.challenge = toBytes(pk.challenge);
        (pk.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
        const cred = await navigator.credentials.get({ publicKey: pk });
        const res = cred.response;
        const credential = {
          id: cred.id, rawId: toText(cred.rawId), type: cred.type, extensions: {},
          response: {
            authenticatorData: toText(res.authenticatorData),
            clientDataJSON: toText(res.clientDataJSON),
            signature: toText(res.signature),
            userHandle: res.userHandle ? toText(res.userHandle) : null,
          },
        };
        const done = await post(base + "login/passkey", csrf, { ceremony, credential, next: button.dataset.next });
        if (done.redirected) { window.location.href = done.url; return; }
        status(await failed(done));
      } catch (err) {
        status("The passkey was not used (" + err.name + ").");
      }
    });
  }
})();
