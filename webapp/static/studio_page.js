// The studio's pages: the draft editor (files in tabs, saved to the server as they are edited, checked after
// each save, problems marked on the diagram, deployed with a comment), the diff of two versions, and the
// migration page's progress bar. The components themselves are window.EldercareStudio (studio/dist).
(function () {
  "use strict";
  var EN = document.documentElement.lang.indexOf("en") === 0;
  function t(zh, en) { return EN ? en : zh; }

  function request(url, options) {
    options = options || {};
    var root = document.getElementById("studio");
    var headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (root && options.method && options.method !== "GET") headers["X-CSRFToken"] = root.dataset.csrf;
    return fetch(url, Object.assign({ credentials: "same-origin" }, options, { headers: headers }))
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
      });
  }

  // ------------------------------------------------------------------------------------------------
  // The draft editor

  function startEditor(root) {
    var studio = window.EldercareStudio;
    var roles = JSON.parse(document.getElementById("studio-roles").textContent);
    var state = { files: {}, revision: 0, open: null, editors: {}, pending: {}, saving: false, stale: false };
    var status = document.getElementById("save-status");
    var tabs = document.getElementById("files");
    var panes = { bpmn: "pane-bpmn", dmn: "pane-dmn", json: "pane-form" };
    var lastProblems = [];
    var checkTimer = null;
    var saveTimer = null;

    function say(text, kind) { status.textContent = text; status.dataset.kind = kind || ""; }
    function kindOf(path) { var ext = path.split(".").pop().toLowerCase(); return ext === "json" ? "json" : ext; }
    function basename(path) { return path.split("/").pop(); }
    function formFiles() { return Object.keys(state.files).filter(function (p) { return kindOf(p) === "json"; }).map(basename); }
    function decisionIds() {
      var ids = [];
      Object.keys(state.files).forEach(function (path) {
        if (kindOf(path) !== "dmn") return;
        var doc = new DOMParser().parseFromString(state.files[path], "application/xml");
        Array.prototype.forEach.call(doc.getElementsByTagNameNS("*", "decision"), function (d) { if (d.id) ids.push(d.id); });
      });
      return ids;
    }
    function ordered() {
      var rank = { bpmn: 0, dmn: 1, json: 2 };
      return Object.keys(state.files).sort(function (a, b) {
        return (rank[kindOf(a)] - rank[kindOf(b)]) || a.localeCompare(b);
      });
    }

    function drawTabs() {
      tabs.innerHTML = "";
      ordered().forEach(function (path) {
        var tab = document.createElement("button");
        tab.type = "button";
        tab.setAttribute("role", "tab");
        tab.className = "studio-file is-" + kindOf(path);
        tab.dataset.path = path;
        tab.setAttribute("aria-selected", String(path === state.open));
        tab.textContent = basename(path);
        tab.title = path;
        var count = lastProblems.filter(function (p) { return p.file === path && p.severity === "error"; }).length;
        if (count) {
          var badge = document.createElement("span");
          badge.className = "studio-file-errors";
          badge.textContent = String(count);
          badge.title = t(count + " 个错误", count + " error(s)");
          tab.appendChild(badge);
        }
        tab.addEventListener("click", function () { openFile(path); });
        tabs.appendChild(tab);
      });
    }

    function openFile(path) {
      if (!(path in state.files)) return;
      state.open = path;
      var kind = kindOf(path);
      Object.keys(panes).forEach(function (k) { document.getElementById(panes[k]).hidden = k !== kind; });
      // One editor per pane; switching files of a kind imports the other file into it.
      var editor = state.editors[kind];
      if (kind === "bpmn") {
        if (!editor) {
          editor = state.editors.bpmn = studio.bpmnEditor(document.getElementById("canvas"), document.getElementById("panel"), {
            xml: state.files[path], formFiles: formFiles(), decisionIds: decisionIds(), roles: roles,
            problemsEl: document.getElementById("problems"),
            onChange: function (xml) { if (editor.path) changed(editor.path, xml); },
          });
          editor.ready.then(function () { editor.path = state.open; markProblems(); }, function (error) { showLoadError(path, error); });
        } else if (editor.path !== path) {
          editor.path = null;
          editor.importXml(state.files[path]).then(function () { editor.path = path; markProblems(); }, function (error) { showLoadError(path, error); });
        }
      } else if (kind === "dmn") {
        if (!editor) {
          editor = state.editors.dmn = studio.dmnEditor(document.getElementById("dmn"), {
            xml: state.files[path],
            onChange: function (xml) { if (editor.path) changed(editor.path, xml); },
          });
          editor.ready.then(function () { editor.path = state.open; }, function (error) { showLoadError(path, error); });
        } else if (editor.path !== path) {
          editor.path = null;
          editor.importXml(state.files[path]).then(function () { editor.path = path; }, function (error) { showLoadError(path, error); });
        }
      } else {
        if (!editor) {
          editor = state.editors.json = studio.formEditor(document.getElementById("form-code"), document.getElementById("form-preview"), {
            text: state.files[path], previewUrl: root.dataset.preview, csrfHeader: "X-CSRFToken", csrfToken: root.dataset.csrf,
            onChange: function (text) { if (editor.path) changed(editor.path, text); },
          });
          editor.path = path;
        } else if (editor.path !== path) {
          editor.path = null;
          editor.setText(state.files[path]);
          editor.path = path;
          editor.refreshPreview();
        }
      }
      drawTabs();
      history.replaceState(null, "", "#" + encodeURIComponent(path));
    }

    function showLoadError(path, error) {
      say(t("文件 " + path + " 无法在编辑器中打开：", "The file " + path + " cannot be opened in the editor: ") + (error && error.message || error), "error");
    }

    // Saving: each change waits 300 ms for the next, then goes to the server on top of the revision the
    // page holds. A save that fails for the network is retried; one refused as stale stops all saving.
    function changed(path, text) {
      if (state.files[path] === text) return;
      state.files[path] = text;
      state.pending[path] = text;
      say(t("有未保存的修改…", "Unsaved changes…"), "pending");
      clearTimeout(saveTimer);
      saveTimer = setTimeout(save, 300);
    }

    function save() {
      if (state.saving || state.stale || !Object.keys(state.pending).length) return Promise.resolve();
      var sending = state.pending;
      state.pending = {};
      state.saving = true;
      say(t("正在保存…", "Saving…"), "pending");
      return request(root.dataset.draft, {
        method: "PUT", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ files: sending, revision: state.revision }),
      }).then(function (answer) {
        state.saving = false;
        if (answer.ok) {
          state.revision = answer.body.revision;
          say(t("已保存 ", "Saved ") + new Date().toLocaleTimeString(), "ok");
          scheduleCheck();
          if (Object.keys(state.pending).length) return save();
          return null;
        }
        if (answer.status === 409) {
          state.stale = true;
          say(answer.body.message || t("草稿已在其他窗口中修改，请刷新页面", "The draft was changed in another window: reload the page"), "error");
          return null;
        }
        state.pending = Object.assign(sending, state.pending);
        say((answer.body.message || t("保存失败", "Not saved")) + t("（修改仍在本页）", " (your changes are still on this page)"), "error");
        return null;
      }, function () {
        state.saving = false;
        state.pending = Object.assign(sending, state.pending);
        say(t("无法连接服务器，稍后自动重试；修改仍在本页", "No connection: retrying shortly; your changes are still on this page"), "error");
        setTimeout(save, 3000);
      });
    }

    window.addEventListener("beforeunload", function (event) {
      if (Object.keys(state.pending).length || state.saving) { event.preventDefault(); event.returnValue = ""; }
    });

    // Checking: after each save (1 s after the last), and on demand.
    function scheduleCheck() { clearTimeout(checkTimer); checkTimer = setTimeout(check, 1000); }

    function check() {
      return request(root.dataset.check, { method: "POST" }).then(function (answer) {
        if (!answer.ok) return;
        lastProblems = answer.body.problems || [];
        root.dataset.errors = String(answer.body.errors);
        markProblems();
        drawTabs();
      });
    }

    function markProblems() {
      var errors = lastProblems.filter(function (p) { return p.severity === "error"; }).length;
      var warnings = lastProblems.length - errors;
      document.getElementById("report-summary").textContent = lastProblems.length
        ? t(errors + " 个错误，" + warnings + " 个警告", errors + " error(s), " + warnings + " warning(s)")
        : t("没有发现问题", "No problems found");
      var deploy = document.getElementById("open-deploy");
      deploy.disabled = errors > 0;
      deploy.title = errors ? t("有错误，修正后才能部署", "Fix the errors before deploying") : "";
      var bpmn = state.editors.bpmn;
      var shown = bpmn && bpmn.path;
      if (bpmn) {
        bpmn.setProblems(lastProblems.filter(function (p) { return p.file === shown; }).map(function (p) {
          return { element: p.element, severity: p.severity, message: p.message + (p.line ? t("（第 " + p.line + " 行）", " (line " + p.line + ")") : "") };
        }));
      }
      var others = document.getElementById("other-problems");
      others.innerHTML = "";
      lastProblems.filter(function (p) { return p.file !== shown; }).forEach(function (p) {
        var item = document.createElement("li");
        item.className = "studio-problem is-" + (p.severity === "error" ? "error" : "warning");
        var link = document.createElement("button");
        link.type = "button";
        link.className = "studio-problem-link";
        var what = document.createElement("span");
        what.className = "studio-problem-severity";
        what.textContent = p.severity === "error" ? t("错误", "Error") : t("警告", "Warning");
        var where = document.createElement("span");
        where.className = "studio-problem-where";
        where.textContent = [p.file, p.name || p.element, p.line ? t("第 " + p.line + " 行", "line " + p.line) : ""].filter(Boolean).join(" · ");
        var message = document.createElement("span");
        message.className = "studio-problem-message";
        message.textContent = p.message;
        link.append(what, " ", where, message);
        link.addEventListener("click", function () {
          if (!(p.file in state.files)) return;
          openFile(p.file);
          if (p.element && kindOf(p.file) === "bpmn") {
            state.editors.bpmn.ready.then(function () { setTimeout(function () { state.editors.bpmn.focusElement(p.element); }, 50); });
          }
        });
        item.appendChild(link);
        others.appendChild(item);
      });
    }

    // Deploying: a comment is required; a refusal lists the problems and marks them.
    var dialog = document.getElementById("deploy-dialog");
    document.getElementById("open-deploy").addEventListener("click", function () {
      document.getElementById("deploy-error").hidden = true;
      dialog.showModal();
      document.getElementById("deploy-comment").focus();
    });
    document.getElementById("deploy-cancel").addEventListener("click", function () { dialog.close(); });
    document.getElementById("deploy-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var comment = document.getElementById("deploy-comment").value.trim();
      var error = document.getElementById("deploy-error");
      if (!comment) { error.textContent = t("请填写部署说明", "Say what this version changes"); error.hidden = false; return; }
      var button = document.getElementById("deploy-submit");
      button.disabled = true;
      save().then(function () {
        return request(root.dataset.deploy, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ comment: comment }),
        });
      }).then(function (answer) {
        button.disabled = false;
        if (answer.ok) { window.location.href = answer.body.next; return; }
        error.textContent = answer.body.message || t("部署失败", "Not deployed");
        error.hidden = false;
        if (answer.body.problems) { lastProblems = answer.body.problems; markProblems(); drawTabs(); }
      }, function () {
        button.disabled = false;
        error.textContent = t("无法连接服务器，未部署", "No connection: not deployed");
        error.hidden = false;
      });
    });

    // A new form file, and files imported into the draft.
    document.getElementById("add-form").addEventListener("click", function () {
      var name = window.prompt(t("新表单的文件名（英文，如 review.json）", "File name of the new form (e.g. review.json)"), "");
      if (!name) return;
      name = name.trim().replace(/\.json$/i, "") + ".json";
      if (!/^[A-Za-z0-9_\-]+\.json$/.test(name)) { say(t("文件名只能用英文字母、数字、下划线和连字符", "Use letters, digits, _ and - only"), "error"); return; }
      // Beside the other forms: the forms/ folder next to the main diagram.
      var main = ordered().filter(function (p) { return kindOf(p) === "bpmn"; })[0] || "";
      var folder = main.indexOf("/") >= 0 ? main.slice(0, main.lastIndexOf("/") + 1) : "";
      var path = folder + "forms/" + name;
      if (path in state.files) { openFile(path); return; }
      changed(path, JSON.stringify({ title: name.replace(/\.json$/, ""), type: "object", properties: {}, required: [] }, null, 2) + "\n");
      // The properties panel offers the bundle's forms in a select: it reads this list as it draws.
      if (state.editors.bpmn) state.editors.bpmn.modeler.get("config.studio").formFiles = formFiles().sort();
      drawTabs();
      openFile(path);
    });
    document.getElementById("import-files").addEventListener("change", function (event) {
      var chosen = event.target.files;
      if (!chosen.length) return;
      save().then(function () {
        var body = new FormData();
        Array.prototype.forEach.call(chosen, function (file) { body.append("files", file); });
        body.append("revision", String(state.revision));
        return request(root.dataset.import, { method: "POST", body: body });
      }).then(function (answer) {
        event.target.value = "";
        if (answer.ok) { window.location.reload(); return; }
        say(answer.body.message || t("导入失败", "Import failed"), "error");
      });
    });
    document.getElementById("run-check").addEventListener("click", function () { save().then(check); });

    request(root.dataset.draft).then(function (answer) {
      if (!answer.ok) { say(answer.body.message || t("草稿无法读取", "The draft cannot be read"), "error"); return; }
      state.files = answer.body.files;
      state.revision = answer.body.revision;
      var wanted = decodeURIComponent((location.hash || "").slice(1));
      var first = ordered()[0];
      openFile(wanted in state.files ? wanted : first);
      root.dataset.ready = "1";
      check();
    });
  }

  // ------------------------------------------------------------------------------------------------
  // The diff of two versions

  function startDiff(holder) {
    Promise.all([request(holder.dataset.old), request(holder.dataset.new)]).then(function (answers) {
      return window.EldercareStudio.diagramDiff(
        document.getElementById("diff-old"), document.getElementById("diff-new"), document.getElementById("diff-list"),
        { oldXml: answers[0].body.xml, newXml: answers[1].body.xml });
    }).then(function (diff) {
      holder.dataset.ready = "1";
      holder.dataset.changes = String(diff.entries.length);
    });
  }

  // ------------------------------------------------------------------------------------------------
  // Migration: the batch's progress bar, and "pick all that can move"

  function pollBatch(box) {
    request(box.dataset.progressUrl).then(function (answer) {
      if (!answer.ok) return;
      var p = answer.body;
      box.dataset.status = p.status;
      box.querySelector("progress").value = p.percent;
      var text = box.querySelector(".job-text");
      text.textContent = text.dataset["label" + p.status.charAt(0).toUpperCase() + p.status.slice(1)] || p.status;
      box.querySelector(".job-count").textContent = p.done + "/" + p.total;
      box.querySelector(".job-moved").textContent = p.moved;
      box.querySelector(".job-skipped").textContent = p.skipped;
      if (p.status !== "done") setTimeout(function () { pollBatch(box); }, 1500);
    }, function () { setTimeout(function () { pollBatch(box); }, 5000); });
  }

  var root = document.getElementById("studio");
  if (root && window.EldercareStudio) startEditor(root);
  var diff = document.getElementById("diff");
  if (diff && window.EldercareStudio) startDiff(diff);
  var batch = document.getElementById("batch");
  if (batch && batch.dataset.status !== "done") pollBatch(batch);
  var all = document.getElementById("pick-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll(".migration-plan input[name=case]:not(:disabled)").forEach(function (box) { box.checked = all.checked; });
    });
  }
})();
