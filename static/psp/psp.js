// Return page: poll status.json while the payment is pending and reload once it is decided.
// Redirect page (Sips): submit the form to the payment page at once.
(function () {
  var redirect = document.getElementById("psp-redirect");
  if (redirect && document.getElementById("psp-autosubmit")) { redirect.submit(); return; }
  var poll = document.getElementById("psp-poll");
  if (!poll) return;
  var url = poll.getAttribute("data-status-url");
  var current = poll.getAttribute("data-current");
  var interval = 1000 * (parseInt(poll.getAttribute("data-interval"), 10) || 2);
  var tries = 0;
  function check() {
    tries += 1;
    fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.status !== current) { window.location.reload(); return; }
        if (tries < 150) setTimeout(check, tries < 30 ? interval : interval * 5);
      })
      .catch(function () { if (tries < 150) setTimeout(check, interval * 5); });
  }
  setTimeout(check, interval);
})();
