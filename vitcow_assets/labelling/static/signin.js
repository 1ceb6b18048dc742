// The sign-in page of the crop pages. A link followed from another site's page (a Dagster UI
// on another host) arrives without the session cookie, which is SameSite=Strict; a request
// made from this page does carry it. So ask once whether this browser is signed in, and if
// it is, open the page again from here (at most once in ten seconds: never a loop).
(function () {
  const field = document.getElementById("token-input");
  if (field) field.focus();
  const KEY = "vitcow.signin-retried";
  const last = Number(sessionStorage.getItem(KEY) || 0);
  if (Date.now() - last < 10000) return;
  fetch("/api/me", { credentials: "same-origin", cache: "no-store" })
    .then((r) => (r.ok ? r.json() : null))
    .then((me) => {
      if (!me || !me.annotator) return;
      sessionStorage.setItem(KEY, String(Date.now()));
      const next = document.querySelector("input[name=next]");
      window.location.replace(next ? next.value : "/crops");
    })
    .catch(() => {});
})();
