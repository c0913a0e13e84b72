// calbook pages: the little JavaScript there is. Everything works without it.
// 1. The viewer's timezone: detected once (Intl) into the calbook_tz cookie, then the page reloads
//    so the server renders every time in it; "change" in the header picks another.
// 2. The duration picker shows the new times on change (the button does the same without script).
(function () {
  "use strict";
  var body = document.body;
  if (body && body.dataset.tzDetected === "no") {
    try {
      var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (tz && !sessionStorage.getItem("calbook-tz-tried")) {
        sessionStorage.setItem("calbook-tz-tried", "1");
        document.cookie = "calbook_tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; samesite=lax";
        location.reload();
      }
    } catch (e) { /* no Intl or no storage: times stay in UTC, and say so */ }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.hasAttribute && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });
})();
