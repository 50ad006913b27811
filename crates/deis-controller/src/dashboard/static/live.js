// The app page's live parts: the log tail and the process list, over Server-Sent Events.
// Without this script the page still shows both as of its loading.
(function () {
  "use strict";
  var app = document.body.dataset.app;
  if (!app || !window.EventSource) { return; }
  var base = "/apps/" + encodeURIComponent(app) + "/live/";
  var log = document.getElementById("log");
  if (log) {
    var fresh = true;
    var logs = new EventSource(base + "logs");
    // Each (re)connection starts with the last lines again: they replace what is shown.
    logs.onopen = function () { fresh = true; };
    logs.onmessage = function (e) {
      if (fresh) { log.textContent = ""; fresh = false; }
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.appendChild(document.createTextNode(e.data + "\n"));
      if (atEnd) { log.scrollTop = log.scrollHeight; }
    };
  }
  var list = document.getElementById("ps-live");
  if (list) {
    var ps = new EventSource(base + "ps");
    ps.addEventListener("ps", function (e) { list.innerHTML = e.data; });
  }
})();
