// Aetherius dashboard: live incident updates over server-sent events. The pages work without it.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) { return; }
  var only = live.getAttribute("data-incident");  // an incident's own page: its changes only
  var table = document.querySelector("table[data-live=incidents] tbody");
  var fresh = 0;

  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s >= 86400) { return Math.floor(s / 86400) + "d ago"; }
    if (s >= 3600) { return Math.floor(s / 3600) + "h ago"; }
    if (s >= 60) { return Math.floor(s / 60) + "m ago"; }
    return s + "s ago";
  }

  function title(incident) {  // what broke, as far as the event says (the page says it in words)
    var what = incident.root_cause && incident.root_cause !== "Unknown" ? incident.root_cause : incident.reason;
    return what + " in " + incident.namespace + "/" + (incident.owner_name || incident.object_name);
  }

  function follow(incident) {  // an incident's own page: its header in place, the rest on reload
    var state = document.querySelector('[data-field="state"]');
    var before = state.textContent;
    state.textContent = incident.state;
    state.className = "state-" + incident.state;
    var seen = document.querySelector('[data-field="last_seen"]');
    seen.setAttribute("datetime", incident.last_seen);
    seen.textContent = ago(incident.last_seen);
    document.querySelector('[data-field="signal_count"]').textContent = incident.signal_count;
    if (before === incident.state && live.firstChild) { return; }
    live.textContent = before === incident.state ? "New Signals arrived. " : "This incident is now " + incident.state + ". ";
    var link = document.createElement("a");
    link.href = window.location.pathname;
    link.textContent = "Reload for the newest report and timeline";
    live.appendChild(link);
  }

  function update(incident) {
    if (only) {
      if (String(incident.id) === only) { follow(incident); }
      return;
    }
    var row = table ? table.querySelector('tr[data-id="' + incident.id + '"]') : null;
    if (row) {
      var state = row.querySelector(".state span");
      var changed = state.textContent !== incident.state;
      state.textContent = incident.state;
      state.className = "state-" + incident.state;
      var seen = row.querySelector(".seen time");
      seen.setAttribute("datetime", incident.last_seen);
      seen.textContent = ago(incident.last_seen);
      row.classList.remove("flash");
      void row.offsetWidth;
      row.classList.add("flash");
      // NB: a crash loop changes its incident every few seconds; only a new state is news.
      if (changed) { live.textContent = "Incident #" + incident.id + " is now " + incident.state + "."; }
      return;
    }
    fresh += 1;
    live.textContent = "";
    var link = document.createElement("a");
    link.href = window.location.pathname + window.location.search;
    link.textContent = fresh + " new or changed incident" + (fresh === 1 ? "" : "s") +
      " (latest: #" + incident.id + " " + title(incident) + ") — show them";
    live.appendChild(link);
  }

  var source = new EventSource(live.getAttribute("data-events"));
  source.addEventListener("incident", function (event) {
    try { update(JSON.parse(event.data)); } catch (e) { /* a malformed frame is skipped */ }
  });
  // NB: a refused stream (too many open for this token, a logged-out session) is not retried by
  // the browser; say so rather than look live and stay still.
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      live.textContent = "Live updates stopped (too many open tabs, or the session ended): reload the page to see changes.";
    }
  });
})();

// Copy buttons on the commands of a runbook (already filled in with the incident's names). The
// clipboard API exists only on HTTPS or localhost; elsewhere the block is selected and copied.
(function () {
  function copy(block) {
    var text = block.innerText.trim();
    if (navigator.clipboard && window.isSecureContext) { return navigator.clipboard.writeText(text); }
    var range = document.createRange();
    range.selectNodeContents(block);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var done = document.execCommand && document.execCommand("copy");
    return done ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  document.querySelectorAll(".runbook pre").forEach(function (block) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy secondary";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy these commands");
    button.addEventListener("click", function () {
      copy(block).then(function () { button.textContent = "Copied"; },
        function () { button.textContent = "Selected: press Ctrl+C"; });
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
    block.parentNode.insertBefore(button, block.nextSibling);
  });
})();

// Relative times ("3m ago") keep moving while the page stays open.
(function () {
  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s >= 86400) { return Math.floor(s / 86400) + "d ago"; }
    if (s >= 3600) { return Math.floor(s / 3600) + "h ago"; }
    if (s >= 60) { return Math.floor(s / 60) + "m ago"; }
    return s + "s ago";
  }
  function tick() {
    document.querySelectorAll("time[data-ago]").forEach(function (node) {
      node.textContent = ago(node.getAttribute("datetime"));
    });
  }
  setInterval(tick, 15000);
})();

// The investigation panel: start one, ask a follow-up, follow its progress live (SSE); the page
// is reloaded with the answer when it is done. Without JavaScript the last answer still shows.
(function () {
  var panel = document.getElementById("investigation");
  if (!panel || !window.fetch) { return; }
  var api = panel.getAttribute("data-api");
  var list = panel.querySelector(".progress");
  var error = panel.querySelector(".error");
  var stream = null;

  function say(text) {
    var item = document.createElement("li");
    item.textContent = text;
    list.appendChild(item);
  }

  function describe(p) {
    if (p.event === "step") { return "Asking the model (step " + p.step + ")"; }
    if (p.event === "tool") { return "Reading: " + p.tool; }
    if (p.event === "question") { return "Question: " + p.question; }
    if (p.event === "done") { return "Done (" + p.ending + ")"; }
    return p.event;
  }

  function busy(on) {
    panel.querySelectorAll("button").forEach(function (b) { b.disabled = on; });
  }

  function follow(id) {
    if (!window.EventSource || stream) { return; }
    busy(true);
    stream = new EventSource(api + "/" + id + "/events");
    stream.addEventListener("progress", function (event) {
      try { say(describe(JSON.parse(event.data))); } catch (e) { /* skipped */ }
    });
    stream.addEventListener("investigation", function (event) {
      var inv;
      try { inv = JSON.parse(event.data); } catch (e) { return; }
      if (inv.status === "done") {
        stream.close();
        window.location.reload();
      }
    });
  }

  function send(url, body) {
    error.textContent = "";
    busy(true);
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": panel.getAttribute("data-csrf") },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (doc) { return { ok: response.ok, doc: doc }; });
    }).then(function (r) {
      if (!r.ok) { error.textContent = r.doc.detail || r.doc.title || "refused"; busy(false); return; }
      panel.setAttribute("data-id", r.doc.id);
      if (r.doc.status === "done") { window.location.reload(); return; }
      list.textContent = "";
      say("Started");
      follow(r.doc.id);
    }).catch(function () { error.textContent = "The request failed; try again."; busy(false); });
  }

  var start = panel.querySelector('[data-action="investigate"]');
  if (start) { start.addEventListener("click", function () { send(api, {}); }); }
  var ask = panel.querySelector('form[data-action="ask"]');
  if (ask) {
    ask.addEventListener("submit", function (event) {
      event.preventDefault();
      var question = ask.querySelector("textarea").value.trim();
      if (!question) { return; }
      send(api + "/" + panel.getAttribute("data-id") + "/messages", { question: question });
    });
  }
  if (panel.getAttribute("data-running") && panel.getAttribute("data-id")) {
    follow(panel.getAttribute("data-id"));
  }
})();
