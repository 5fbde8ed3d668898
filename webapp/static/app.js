// Repeated rows in task forms: add a row from the <template>, remove a row. Works without JS too
// (one empty row is always rendered, and empty rows are ignored on submit).
document.addEventListener("click", function (event) {
  var add = event.target.closest(".add-row");
  if (add) {
    var set = add.closest("[data-repeat]");
    var index = parseInt(set.dataset.next || "0", 10);
    var html = set.querySelector(":scope > template").innerHTML.split("__i__").join(String(index));
    set.dataset.next = String(index + 1);
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    var row = holder.firstElementChild;
    // Ids were rendered with the placeholder too; make them unique.
    row.querySelectorAll("[id]").forEach(function (el) { el.id = el.id.split("__i__").join(String(index)); });
    row.querySelectorAll("label[for]").forEach(function (el) { el.htmlFor = el.htmlFor.split("__i__").join(String(index)); });
    set.querySelector(":scope > .rows").appendChild(row);
    var first = row.querySelector("input, select, textarea");
    if (first) first.focus();
    return;
  }
  var remove = event.target.closest(".remove-row");
  if (remove) {
    var item = remove.closest(".row-item");
    var rows = item.parentElement;
    if (rows.children.length > 1) {
      item.remove();
    } else {
      item.querySelectorAll("input, select, textarea").forEach(function (el) {
        if (el.type === "checkbox" || el.type === "radio") el.checked = false; else el.value = "";
      });
    }
  }
});

// A form is sent once: a second click while the first is on its way does nothing.
document.addEventListener("submit", function (event) {
  var form = event.target;
  // A form that undoes work asks first (data-confirm holds the question).
  if (form.dataset.confirm && !form.dataset.sending && !window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
  if (form.dataset.sending) { event.preventDefault(); return; }
  form.dataset.sending = "1";
  setTimeout(function () { delete form.dataset.sending; }, 8000);
});

// On a phone the task list comes first: the filters start folded.
if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
  document.querySelectorAll("details.filters[open]").forEach(function (d) { d.removeAttribute("open"); });
}

// A choice that changes what the page shows (the process to start, the sort order) reloads it at once.
document.addEventListener("change", function (event) {
  if (event.target.matches("[data-autosubmit]") && event.target.form) event.target.form.submit();
});
