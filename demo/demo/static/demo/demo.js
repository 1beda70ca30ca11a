/* dfws demo: shows the state of the df_websockets connection in #ws-status
 * (data-state = "open" | "connecting" | "closed" | "missing"), so people and
 * browser tests can see when the page is ready to exchange signals. */
(function () {
  "use strict";
  var LABELS = {
    open: "connected",
    connecting: "connecting…",
    closed: "disconnected",
    missing: "df_websockets.min.js not loaded"
  };

  function currentState() {
    var signals = window.DFSignals;
    if (!signals) {
      return "missing";
    }
    var ws = signals.connection;
    if (!ws) {
      return "connecting";
    }
    if (ws.readyState === 1) {
      return "open";
    }
    return ws.readyState === 0 ? "connecting" : "closed";
  }

  function update() {
    var badge = document.getElementById("ws-status");
    if (!badge) {
      return;
    }
    var state = currentState();
    if (badge.getAttribute("data-state") !== state) {
      badge.setAttribute("data-state", state);
      badge.textContent = LABELS[state];
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    update();
    window.setInterval(update, 250);
  });
})();
