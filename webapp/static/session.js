// Sessions end when left alone (the server signs out after the idle period); a task form being filled in
// is saved as a draft as it is typed, so nothing is lost. When the page itself has seen no activity for the
// idle period, it saves the draft once more and signs out, leaving no personal data on an unattended screen.
(function () {
  var seconds = parseInt(document.body.dataset.idleSeconds || "0", 10);
  if (!seconds) return;
  var form = document.querySelector("form[data-draft]");
  var status = document.getElementById("draft-status");
  var last = Date.now();
  var timer = null;
  var signingOut = false;

  function activity() { last = Date.now(); }
  ["keydown", "input", "change", "pointerdown", "touchstart", "wheel"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true, capture: true });
  });

  function formData() {
    var data = new FormData(form);
    // Files go with the submission only; a draft keeps what was typed and chosen.
    Array.from(data.entries()).forEach(function (pair) {
      if (typeof File !== "undefined" && pair[1] instanceof File) data.delete(pair[0]);
    });
    return data;
  }

  function save() {
    if (!form) return Promise.resolve(false);
    return fetch(form.dataset.draft, { method: "POST", body: formData(), credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok || response.redirected) return false;
        return response.json().then(function (saved) {
          if (status && saved.saved_at) status.textContent = status.dataset.template.replace("{time}", saved.saved_at);
          form.dataset.draftSaved = "1";
          return true;
        });
      })
      .catch(function () { return false; });
  }

  if (form) {
    var later = function () { clearTimeout(timer); timer = setTimeout(save, 1200); };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    form.addEventListener("submit", function () { clearTimeout(timer); });
  }

  setInterval(function () {
    if (signingOut || Date.now() - last < seconds * 1000) return;
    signingOut = true;
    save().then(function (kept) {
      var idle = document.getElementById("idle-form");
      if (!idle) return;
      idle.elements.kept.value = kept ? "1" : "";
      idle.submit();
    });
  }, 5000);
})();
