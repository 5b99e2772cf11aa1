// Sign in with the token in the link's fragment (#token=…): a fragment never reaches a server
// or its logs. Drop it from the address bar at once (the link works only once), then post it
// with the page's CSRF token.
(function () {
  var token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (!token) return;
  document.getElementById("login-token").value = token;
  document.getElementById("signing-in").hidden = false;
  document.getElementById("login-link-form").submit();
})();
