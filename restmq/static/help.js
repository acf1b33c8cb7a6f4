// The JSON protocol help page: fill the form from an example, send it with POST /queue,
// show the answer. The examples reuse the last key and receipt the broker answered, so
// "reserve" then "ack" works without copying anything. Without JavaScript the form still
// posts the field "body" and the browser shows the raw answer.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const last = { key: null, receipt: null };

  const EXAMPLES = {
    add: (q) => ({ cmd: "add", queue: q, value: "hello" }),
    "add-batch": (q) => ({ cmd: "add", queue: q, values: ["one", "two", "three"] }),
    get: (q) => ({ cmd: "get", queue: q }),
    take: (q) => ({ cmd: "take", queue: q }),
    del: (q) => ({ cmd: "del", queue: q, key: last.key || `${q}:1` }),
    reserve: (q) => ({ cmd: "reserve", queue: q, timeout: 30 }),
    ack: (q) => ({ cmd: "ack", queue: q, key: last.key || `${q}:1`, receipt: last.receipt || "…" }),
    nack: (q) => ({
      cmd: "nack", queue: q, key: last.key || `${q}:1`, receipt: last.receipt || "…", delay: 0,
    }),
    extend: (q) => ({
      cmd: "extend", queue: q, key: last.key || `${q}:1`, receipt: last.receipt || "…", timeout: 60,
    }),
  };

  function fill() {
    const queue = $("queue-name").value.trim() || "test";
    $("command").value = JSON.stringify(EXAMPLES[$("example").value](queue));
  }

  function show(status, text, isError) {
    $("answer-status").textContent = status;
    $("answer-status").classList.toggle("error", Boolean(isError));
    $("answer").textContent = text;
  }

  function remember(answer) {
    if (answer && typeof answer.key === "string") last.key = answer.key;
    if (answer && typeof answer.receipt === "string") last.receipt = answer.receipt;
  }

  function pretty(text) {
    try {
      const answer = JSON.parse(text);
      remember(answer);
      return JSON.stringify(answer, null, 2);
    } catch (_) {
      return text;
    }
  }

  async function send(event) {
    event.preventDefault();
    const body = $("command").value;
    try {
      JSON.parse(body);
    } catch (error) {
      show("Not sent: the command is not valid JSON.", error.message, true);
      return;
    }
    show("Sending…", "");
    try {
      const response = await fetch("/queue", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body,
      });
      const text = await response.text();
      show(`${response.status} ${response.statusText}`, pretty(text), !response.ok);
    } catch (error) {
      show("The broker did not answer.", String(error), true);
    }
  }

  function start() {
    for (const host of document.querySelectorAll(".host")) host.textContent = location.host;
    $("example").addEventListener("change", fill);
    $("queue-name").addEventListener("input", fill);
    $("try").addEventListener("submit", send);
  }

  start();
})();
