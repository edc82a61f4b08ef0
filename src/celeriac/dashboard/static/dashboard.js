// Live tables: a table with data-live="<url>" gets its rows again from <url> whenever the
// server says something changed (server-sent events). The rows come rendered and escaped by the
// server, so nothing a task supplied is ever interpreted here.
"use strict";
(function () {
  const table = document.querySelector("table[data-live]");
  if (!table || !window.EventSource) return;
  const body = table.querySelector("tbody");
  const prefix = document.body.dataset.prefix || "";
  let pending = false;
  async function refresh() {
    if (pending) return;
    pending = true;
    try {
      const reply = await fetch(table.dataset.live, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (reply.ok) body.innerHTML = await reply.text();
    } finally {
      pending = false;
    }
  }
  const source = new EventSource(prefix + "/events/changes");
  source.addEventListener("change", refresh);
})();
