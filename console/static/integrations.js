// Live progress of an integration's connection and latest sync, without reloading the page:
// "Sync now" posts its form (with the page's CSRF token) in the background, then the page asks
// the console for the state every second until the connection is verified and the run is over.
// The status sits in an aria-live region, so a screen reader hears each change.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var url = live.getAttribute("data-progress-url");
  var timer = null;

  function setBadge(id, state) {
    var badge = document.getElementById(id);
    if (!badge) return;
    badge.className = "badge tone-" + state.tone;
    badge.querySelector(".icon").textContent = state.icon;
    badge.querySelector(".words").textContent = state.words;
  }

  function remember(status) {
    // The states this page has shown, in order (queued running succeeded): for tests and
    // for anyone reading the page's source.
    var seen = (live.getAttribute("data-seen") || "").split(" ").filter(Boolean);
    if (seen[seen.length - 1] !== status) seen.push(status);
    live.setAttribute("data-seen", seen.join(" "));
  }

  function show(state) {
    setBadge("connection-badge", state.connection);
    document.getElementById("connection-message").textContent = state.connection.message;
    document.getElementById("last-sync").textContent = state.connection.last_sync;
    document.getElementById("next-sync").textContent = state.connection.next_sync;
    var notice = document.getElementById("connected-notice");
    if (notice && state.connection.settled) notice.hidden = true;
    var run = state.run;
    var line = document.getElementById("run-status");
    if (run) {
      if (!document.getElementById("run-badge")) {
        line.innerHTML = '<span class="badge" id="run-badge"><span class="icon" aria-hidden="true"></span> ' +
          '<span class="words"></span></span> <span id="run-summary"></span>';
      }
      setBadge("run-badge", run);
      line.setAttribute("data-run", run.id);
      remember(run.status);
      document.getElementById("run-summary").textContent = run.summary;
      var list = document.getElementById("run-errors");
      list.textContent = "";
      run.errors.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
    }
    var busy = !state.connection.settled || (run && !run.finished);
    live.setAttribute("data-poll", busy ? "yes" : "no");
    return busy;
  }

  function poll() {
    clearTimeout(timer);
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (answer) {
        var json = (answer.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (!answer.ok || !json) throw new Error(answer.redirected ? "signed out" : "refused");
        return answer.json();
      })
      .then(function (state) { if (show(state)) timer = setTimeout(poll, 1000); })
      .catch(function (problem) {
        document.getElementById("run-summary").textContent = problem.message === "signed out"
          ? "Your session has ended. Reload the page to sign in again."
          : "Could not reach the console to check progress. Reload the page to try again.";
      });
  }

  var form = document.getElementById("sync-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = document.getElementById("sync-now");
      button.disabled = true;
      fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                          headers: {"Accept": "application/json"}})
        .then(function (answer) {
          return answer.json().catch(function () { return null; }).then(function (state) {
            if (!answer.ok || !state) throw new Error((state && state.error) || "refused");
            return state;
          });
        })
        .then(function (state) { if (show(state)) timer = setTimeout(poll, 1000); })
        .catch(function (problem) {
          document.getElementById("run-summary").textContent =
            "The sync could not be started: " + problem.message;
        })
        .then(function () { button.disabled = false; });
    });
  }

  if (live.getAttribute("data-poll") === "yes") timer = setTimeout(poll, 1000);
})();
