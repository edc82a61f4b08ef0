// Live tables: a table with data-live="<url>" gets its rows again from <url> whenever the
// server says something changed (server-sent events); one with data-poll="<url>" every
// data-every milliseconds (what the broker holds: workers, queue depths). The rows come rendered
// and escaped by the server, so nothing a task supplied is ever interpreted here.
"use strict";
// Set once a form is on its way: a reload now would cancel the navigation the form started.
let leaving = false;
async function replaceRows(element, url) {
  const reply = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
  const target = element.tagName === "TABLE" ? element.querySelector("tbody") : element;
  if (reply.ok) target.innerHTML = await reply.text();
}
(function () {
  for (const table of document.querySelectorAll("table[data-poll]")) {
    const every = Math.max(1000, Number(table.dataset.every) || 2000);
    let busy = false;
    setInterval(async function () {
      if (busy || document.hidden) return;
      busy = true;
      try { await replaceRows(table, table.dataset.poll); } finally { busy = false; }
    }, every);
  }
})();
(function () {
  const table = document.querySelector("[data-live]");
  if (!table || !window.EventSource) return;
  const prefix = document.body.dataset.prefix || "";
  let pending = false;
  let last = 0;
  async function refresh() {
    // At most one fetch in flight and one a second: a busy cluster changes the history constantly.
    if (pending) return;
    pending = true;
    const wait = Math.max(0, last + 1000 - Date.now());
    if (wait) await new Promise(function (done) { setTimeout(done, wait); });
    last = Date.now();
    try { await replaceRows(table, table.dataset.live); } finally { pending = false; }
  }
  const source = new EventSource(prefix + "/events/changes");
  source.addEventListener("change", refresh);
})();

// The timeline's rows from the stream's steps, built as text nodes: a step's detail (an
// exception's message, a progress message) is the task's and must never become markup.
function pad(n, width) { return String(n).padStart(width || 2, "0"); }
function moment(iso) {
  const t = iso ? new Date(iso) : null;
  if (!t || isNaN(t.getTime())) return "";
  return t.getFullYear() + "-" + pad(t.getMonth() + 1) + "-" + pad(t.getDate()) + " " + pad(t.getHours()) + ":" +
    pad(t.getMinutes()) + ":" + pad(t.getSeconds()) + "." + pad(t.getMilliseconds(), 3);
}
function showTimeline(steps) {
  const body = document.querySelector('[data-field="timeline"]');
  if (!body) return;
  body.replaceChildren(...steps.map(function (step) {
    const row = document.createElement("tr");
    row.className = "event-" + String(step.event);
    for (const text of [moment(step.at), String(step.event).replace(/^task-/, ""), step.detail || ""]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    return row;
  }));
  document.querySelector('[data-field="timeline-box"]').hidden = false;
}

// A task's page: its state and progress follow the task's event stream; once it ends, the page
// is loaded again so the result or traceback comes rendered (and escaped) by the server.
(function () {
  const live = document.querySelector("[data-stream]");
  if (!live || !window.EventSource) return;
  const field = (name) => document.querySelector('[data-field="' + name + '"]');
  const final = ["SUCCESS", "FAILURE", "REVOKED", "REJECTED"];
  const source = new EventSource(live.dataset.stream);
  source.onmessage = function (message) {
    const task = JSON.parse(message.data);
    field("state").textContent = task.state;
    const progress = task.progress && typeof task.progress.progress === "number" ? task.progress : null;
    if (progress) {
      field("progress-line").hidden = false;
      field("progress").value = progress.progress;
      field("percent").textContent = String(progress.progress);
      field("message").textContent = typeof progress.message === "string" ? progress.message : "";
    }
    if (Array.isArray(task.timeline) && task.timeline.length) showTimeline(task.timeline);
    if (final.includes(task.state)) {
      source.close();
      if (!leaving) window.location.reload();
    }
  };
})();


// Buttons that cannot be undone ask first (data-confirm on their form).
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (form instanceof HTMLFormElement && form.method === "post") leaving = true;
});
