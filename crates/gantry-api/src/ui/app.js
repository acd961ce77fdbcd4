// Gantry dashboard: follows a run over server-sent events. On a run page
// (an element #run with data-run), it subscribes to /runs/ID/events (the
// session cookie authenticates it) and keeps each node's colour, status
// text and attempts, and the run's status, up to date; a node that changed
// gets its detail section (attempts, error, log tail, output) re-read from
// the page, at most about once a second. No framework, no build.
(function () {
  "use strict";

  var TERMINAL = { succeeded: true, failed: true, cancelled: true };

  function setStatusClass(el, status) {
    var keep = [];
    var classes = (el.getAttribute("class") || "").split(/\s+/);
    for (var i = 0; i < classes.length; i++) {
      if (classes[i] && classes[i].indexOf("status-") !== 0) keep.push(classes[i]);
    }
    keep.push("status-" + status);
    el.setAttribute("class", keep.join(" "));
  }

  function byNode(selector, node) {
    // Node ids are [a-z0-9_-]; quoting keeps the selector valid anyway.
    return document.querySelectorAll(selector + '[data-node="' + node.replace(/"/g, "") + '"]');
  }

  // The last event per node: re-applied to a refreshed section, whose HTML
  // may predate it.
  var latest = {};
  var stale = {};
  var timer = null;
  var fetching = false;

  function scheduleRefresh(node) {
    if (!byNode("div.node-detail", node).length) return;
    stale[node] = true;
    if (!timer) timer = setTimeout(refreshDetails, 800);
  }

  function refreshDetails() {
    timer = null;
    if (fetching) {
      timer = setTimeout(refreshDetails, 800);
      return;
    }
    var nodes = Object.keys(stale);
    stale = {};
    if (!nodes.length || !window.fetch || !window.DOMParser) return;
    fetching = true;
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        for (var i = 0; i < nodes.length; i++) {
          var sel = 'div.node-detail[data-node="' + nodes[i].replace(/"/g, "") + '"]';
          var fresh = doc.querySelector(sel);
          var old = document.querySelector(sel);
          if (fresh && old) {
            old.parentNode.replaceChild(document.importNode(fresh, true), old);
            if (latest[nodes[i]]) applyNode(latest[nodes[i]]);
          }
        }
      })
      .catch(function () {})
      .then(function () { fetching = false; });
  }

  function updateNode(n) {
    if (!n || typeof n.node !== "string" || typeof n.status !== "string") return;
    latest[n.node] = n;
    applyNode(n);
  }

  function applyNode(n) {
    var i, els = byNode("g.node", n.node);
    for (i = 0; i < els.length; i++) {
      var g = els[i];
      g.setAttribute("data-status", n.status);
      setStatusClass(g, n.status);
      var t = g.querySelector("text.node-status");
      if (t) t.textContent = n.status;
      var title = g.querySelector("title");
      if (title) title.textContent = n.node + ": " + n.status;
    }
    var details = byNode("div.node-detail", n.node);
    for (i = 0; i < details.length; i++) {
      var d = details[i];
      d.setAttribute("data-status", n.status);
      var s = d.querySelector("span.node-status");
      if (s) {
        s.textContent = n.status;
        setStatusClass(s, n.status);
      }
      var a = d.querySelector("span.attempts");
      if (a && typeof n.attempts === "number") a.textContent = String(n.attempts);
      var approval = d.querySelector("div.approval");
      if (approval) approval.hidden = n.status !== "waiting_approval";
      if (n.error) {
        var box = d.querySelector("div.node-error pre");
        if (!box) {
          var wrap = document.createElement("div");
          wrap.className = "node-error";
          var h = document.createElement("h4");
          h.textContent = "Error";
          box = document.createElement("pre");
          box.className = "error";
          wrap.appendChild(h);
          wrap.appendChild(box);
          d.insertBefore(wrap, d.querySelector("table, details") || null);
        }
        box.textContent = n.error;
      }
    }
  }

  function updateRun(status) {
    if (typeof status !== "string") return;
    var el = document.getElementById("run-status");
    if (el) {
      el.textContent = status;
      setStatusClass(el, status);
    }
    var run = document.getElementById("run");
    if (run) run.setAttribute("data-status", status);
  }

  function setLive(text) {
    var el = document.getElementById("live");
    if (el) el.textContent = text;
  }

  function parse(e) {
    try {
      return JSON.parse(e.data);
    } catch (err) {
      return null;
    }
  }

  function follow(id) {
    var source = new EventSource("/runs/" + encodeURIComponent(id) + "/events");
    source.addEventListener("open", function () { setLive("live"); });
    source.addEventListener("error", function () {
      if (source.readyState !== EventSource.CLOSED) setLive("reconnecting…");
    });
    source.addEventListener("snapshot", function (e) {
      var run = parse(e);
      if (!run) return;
      var nodes = run.nodes || [];
      for (var i = 0; i < nodes.length; i++) {
        updateNode({ node: nodes[i].id, status: nodes[i].status,
                     attempts: nodes[i].attempts, error: nodes[i].error });
      }
      updateRun(run.status);
    });
    source.addEventListener("node", function (e) {
      var n = parse(e);
      updateNode(n);
      if (n && typeof n.node === "string") scheduleRefresh(n.node);
    });
    source.addEventListener("run", function (e) {
      var run = parse(e);
      if (run) updateRun(run.status);
      // The stream ends with the run; do not let EventSource reconnect.
      source.close();
      setLive("ended");
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function start() {
    var run = document.getElementById("run");
    if (!run || !window.EventSource) return;
    var id = run.getAttribute("data-run");
    if (!id) return;
    if (TERMINAL[run.getAttribute("data-status")]) {
      setLive("ended");
      return;
    }
    follow(id);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
