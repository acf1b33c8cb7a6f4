// RestMQ dashboard: live queue counts from the broker's own event stream, queue controls,
// and a per-queue view that can tail messages.
//
// Live counts: an EventSource on /events/stats; the broker sends the /stats/ JSON as a
// "stats" event whenever it changes (read once per interval per daemon, shared by every open
// dashboard), and "unavailable" while Redis does not answer. Rows are updated in place, so a
// focused button keeps its focus while the numbers move.
//
// Paging: like /stats/, the feed carries one page of PAGE_SIZE queues in name order, "count"
// (every queue) and "next" (the cursor of the next page, when there is one). Next and
// Previous reconnect the feed with ?after=<cursor>; the cursors of the pages seen are kept.
//
// Controls: pause/resume is POST /control/<q> status=stop|start, the policy button is
// POST /p/<q> policy=..., purge is DELETE /q/<q> after a confirmation. The table shows the
// effect with the next stats event (within about half a second).
//
// Tail: an EventSource on /sse/<q>. That makes the page a streaming consumer, which TAKES
// messages out of the queue under its policy; it starts only when asked, and the page says
// so. The queue's /j/<q> page shows waiting messages without taking them.
"use strict";

(() => {
  const COUNTS = ["len", "consumers", "leased", "delayed", "dead"];
  const TAIL_LIMIT = 200;
  const RECONNECT_MS = 5000;
  const PAGE_SIZE = 500;
  const $ = (id) => document.getElementById(id);
  const tbody = document.querySelector("#queues tbody");
  const rows = new Map(); // queue name -> {tr, cells, buttons}
  let queues = {}; // the latest stats of every queue, by name
  let selected = null; // the queue shown in the detail view
  let tail = null; // the EventSource of the tail, while tailing
  let feed = null; // the EventSource of the stats feed
  const cursors = [""]; // the "after" of every page up to the one shown
  let nextCursor = null; // the "next" of the page shown, if another page follows

  const queuePath = (prefix, queue) => prefix + encodeURIComponent(queue);
  const numberText = (n) => Number(n).toLocaleString("en");

  // --- the live feed ----------------------------------------------------------------

  function setConnection(text, kind) {
    const badge = $("connection");
    badge.textContent = text;
    badge.className = "badge " + kind;
  }

  function feedUrl() {
    const after = cursors[cursors.length - 1];
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (after) query.set("after", after);
    return "/events/stats?" + query.toString();
  }

  function connect() {
    const source = new EventSource(feedUrl());
    feed = source;
    source.addEventListener("open", () => setConnection("live", "ok"));
    source.addEventListener("stats", (event) => render(JSON.parse(event.data)));
    source.addEventListener("unavailable", () => setConnection("storage unavailable", "bad"));
    source.addEventListener("error", () => {
      if (source !== feed) return;
      if (source.readyState === EventSource.CLOSED) {
        setConnection("disconnected, retrying…", "bad");
        setTimeout(() => { if (source === feed) connect(); }, RECONNECT_MS);
      } else {
        setConnection("reconnecting…", "warn");
      }
    });
  }

  function turnPage(forward) {
    if (forward && nextCursor) cursors.push(nextCursor);
    else if (!forward && cursors.length > 1) cursors.pop();
    else return;
    if (feed) feed.close();
    setConnection("connecting…", "warn");
    connect();
  }

  function renderPager(stats) {
    nextCursor = stats.next || null;
    const first = (cursors.length - 1) * PAGE_SIZE;
    const shown = Object.keys(stats.queues).length;
    $("page").textContent = shown ? `${numberText(first + 1)}–${numberText(first + shown)}` : "–";
    $("page-prev").disabled = cursors.length <= 1;
    $("page-next").disabled = nextCursor === null;
  }

  function render(stats) {
    setConnection("live", "ok");
    queues = stats.queues;
    $("storage").textContent = stats.redis;
    $("count").textContent = numberText(stats.count);
    renderPager(stats);
    const now = new Date();
    $("updated").textContent = now.toLocaleTimeString();
    $("updated").dateTime = now.toISOString();
    const names = Object.keys(queues).sort();
    for (const [name, row] of rows) {
      if (!(name in queues)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
    placeRows(names);
    $("empty").hidden = names.length > 0;
    applyFilter();
    renderDetail();
  }

  function placeRows(names) {
    let previous = null;
    for (const name of names) {
      const row = rows.get(name) || addRow(name);
      updateRow(row, queues[name]);
      const wanted = previous ? previous.nextSibling : tbody.firstChild;
      if (row.tr !== wanted) tbody.insertBefore(row.tr, wanted);
      previous = row.tr;
    }
  }

  // --- table rows ---------------------------------------------------------------------

  function cell(tr, field, className) {
    const td = document.createElement("td");
    td.dataset.field = field;
    if (className) td.className = className;
    tr.appendChild(td);
    return td;
  }

  function button(text, action, label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.dataset.action = action;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  function addRow(name) {
    const tr = document.createElement("tr");
    tr.dataset.queue = name;
    const link = document.createElement("a");
    link.href = "#queue=" + encodeURIComponent(name);
    link.textContent = name;
    cell(tr, "name", "name").appendChild(link);
    const cells = { status: cell(tr, "status"), policy: cell(tr, "policy") };
    for (const field of COUNTS) cells[field] = cell(tr, field, "num");
    const actions = cell(tr, "actions", "actions");
    const buttons = {
      pause: button("Pause", "pause", "Pause " + name, () => togglePause(name, buttons.pause)),
      policy: button("Use roundrobin", "policy", "Change the policy of " + name,
        () => togglePolicy(name, buttons.policy)),
      purge: button("Purge…", "purge", "Purge " + name, () => purge(name, buttons.purge)),
    };
    buttons.purge.classList.add("danger");
    actions.append(buttons.pause, " ", buttons.policy, " ", buttons.purge);
    const row = { tr, cells, buttons };
    rows.set(name, row);
    return row;
  }

  function setText(element, text) {
    if (element.textContent === text) return;
    const first = element.textContent === "";
    element.textContent = text;
    if (!first) flash(element);
  }

  function flash(element) {
    element.classList.remove("changed");
    void element.offsetWidth; // restart the animation
    element.classList.add("changed");
  }

  function statusBadge(td, status) {
    if (td.textContent === status) return;
    td.textContent = "";
    const badge = document.createElement("span");
    badge.className = "badge " + (status === "started" ? "ok" : "warn");
    badge.textContent = status;
    td.appendChild(badge);
  }

  function updateRow(row, stats) {
    statusBadge(row.cells.status, stats.status);
    setText(row.cells.policy, stats.policy);
    for (const field of COUNTS) setText(row.cells[field], numberText(stats[field]));
    row.buttons.pause.textContent = stats.status === "started" ? "Pause" : "Resume";
    row.buttons.pause.setAttribute(
      "aria-label", (stats.status === "started" ? "Pause " : "Resume ") + stats.name);
    row.buttons.policy.textContent =
      stats.policy === "broadcast" ? "Use roundrobin" : "Use broadcast";
    row.tr.classList.toggle("selected", stats.name === selected);
  }

  function applyFilter() {
    const wanted = $("filter").value.trim().toLowerCase();
    for (const [name, row] of rows) row.tr.hidden = !name.toLowerCase().includes(wanted);
  }

  // --- actions ------------------------------------------------------------------------

  function notify(text, isError) {
    const notice = $("notice");
    notice.textContent = text;
    notice.classList.toggle("error", Boolean(isError));
  }

  async function failure(response) {
    let message = response.statusText;
    try {
      message = (await response.json()).error || message;
    } catch (_) {
      // not JSON: keep the status text
    }
    return new Error(`${response.status} ${message}`);
  }

  async function act(control, request, done) {
    control.disabled = true;
    try {
      const response = await fetch(request.url, {
        method: request.method,
        body: request.form ? new URLSearchParams(request.form) : undefined,
        headers: { Accept: "application/json" },
      });
      if (!response.ok) throw await failure(response);
      notify(done);
    } catch (error) {
      notify(`Could not ${request.what}: ${error.message}`, true);
    } finally {
      control.disabled = false;
    }
  }

  function togglePause(name, control) {
    const pause = (queues[name] || {}).status !== "stopped";
    act(control, {
      url: queuePath("/control/", name),
      method: "POST",
      form: { status: pause ? "stop" : "start" },
      what: (pause ? "pause " : "resume ") + name,
    }, pause ? `Queue ${name} paused: nothing is delivered until it is resumed.`
      : `Queue ${name} resumed: its backlog is being delivered.`);
  }

  function togglePolicy(name, control) {
    const policy = (queues[name] || {}).policy === "roundrobin" ? "broadcast" : "roundrobin";
    act(control, {
      url: queuePath("/p/", name),
      method: "POST",
      form: { policy },
      what: `set the policy of ${name}`,
    }, `Queue ${name} now uses ${policy}.`);
  }

  function purge(name, control) {
    const stats = queues[name] || { len: 0, leased: 0, delayed: 0 };
    const question = `Purge queue “${name}”?\n\nIts ${stats.len} waiting, ${stats.leased} ` +
      `leased and ${stats.delayed} delayed messages are deleted and its streaming consumers ` +
      "are disconnected. This cannot be undone.";
    if (!window.confirm(question)) return;
    act(control, { url: queuePath("/q/", name), method: "DELETE", what: `purge ${name}` },
      `Queue ${name} purged.`);
  }

  // --- the queue view and its tail ----------------------------------------------------

  function select(name, focus) {
    if (name === selected) return;
    stopTail();
    selected = name;
    $("detail").hidden = name === null;
    for (const [queue, row] of rows) row.tr.classList.toggle("selected", queue === name);
    if (name === null) return;
    $("detail-name").textContent = name;
    $("detail-peek").href = queuePath("/j/", name);
    for (const span of document.querySelectorAll(".tail-queue")) {
      span.textContent = name;
    }
    $("tail-log").textContent = "";
    renderDetail();
    if (focus) $("detail-title").focus();
  }

  function renderDetail() {
    if (selected === null) return;
    const stats = queues[selected];
    const badge = $("detail-status");
    badge.textContent = stats ? stats.status : "no such queue";
    badge.className = "badge " + (stats && stats.status === "started" ? "ok" : "warn");
    for (const dd of document.querySelectorAll("#detail dd[data-field]")) {
      const value = stats ? stats[dd.dataset.field] : "–";
      setText(dd, typeof value === "number" ? numberText(value) : String(value));
    }
  }

  function fromHash(event) {
    const match = location.hash.match(/^#queue=(.+)$/);
    let name = null;
    if (match) {
      try {
        name = decodeURIComponent(match[1]);
      } catch (_) {
        name = match[1]; // not percent-encoded: take it as it is
      }
    }
    select(name, Boolean(event));
  }

  function closeDetail() {
    const name = selected;
    history.replaceState(null, "", location.pathname + location.search);
    select(null);
    const row = rows.get(name);
    if (row) row.tr.querySelector("a").focus();
  }

  function setTailState(text) {
    $("tail-state").textContent = text;
  }

  function appendMessage(message) {
    const log = $("tail-log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    const item = document.createElement("li");
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = message.key;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = message.value;
    item.append(key, value);
    log.appendChild(item);
    while (log.children.length > TAIL_LIMIT) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function startTail() {
    const source = new EventSource(queuePath("/sse/", selected));
    tail = source;
    $("tail-toggle").textContent = "Stop tailing";
    $("tail-toggle").setAttribute("aria-pressed", "true");
    setTailState("connecting…");
    source.addEventListener("open", () => setTailState("consuming: messages are taken as they arrive"));
    source.addEventListener("message", (event) => appendMessage(JSON.parse(event.data)));
    source.addEventListener("error", () => setTailState(
      source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…"));
  }

  function stopTail() {
    if (tail === null) return;
    tail.close();
    tail = null;
    $("tail-toggle").textContent = "Start tailing (consumes)";
    $("tail-toggle").setAttribute("aria-pressed", "false");
    setTailState("stopped");
  }

  function start() {
    for (const host of document.querySelectorAll(".host")) host.textContent = location.host;
    $("filter").addEventListener("input", applyFilter);
    $("detail-close").addEventListener("click", closeDetail);
    $("tail-toggle").addEventListener("click", () => (tail ? stopTail() : startTail()));
    $("tail-clear").addEventListener("click", () => { $("tail-log").textContent = ""; });
    $("page-prev").addEventListener("click", () => turnPage(false));
    $("page-next").addEventListener("click", () => turnPage(true));
    window.addEventListener("hashchange", fromHash);
    fromHash(null);
    connect();
  }

  start();
})();
