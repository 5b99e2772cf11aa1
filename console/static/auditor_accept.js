// Accept an audit invitation with the token in the link's fragment (#token=…): a fragment never
// reaches a server or its logs. Drop it from the address bar at once (the link works only
// once), then post it with the page's CSRF token; the answer sets the portal's cookie.
(function () {
  var token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (!token) return;
  document.getElementById("accept-token").value = token;
  document.getElementById("accepting").hidden = false;
  document.getElementById("accept-form").submit();
})();
