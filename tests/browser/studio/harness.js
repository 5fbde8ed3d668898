// Test page only: opens one studio component, chosen by ?view=, on the fixture the test server holds for it,
// and leaves the component's handle on window.studioHarness for the test.
(function () {
  var params = new URLSearchParams(location.search);
  var view = params.get('view') || 'editor';
  var fixture = params.get('fixture') || view;
  var studio = window.EldercareStudio;
  // The app renders <html lang="en"> for people who chose English; the components follow it.
  if (params.get('lang') === 'en') document.documentElement.lang = 'en';
  window.studioHarness = { view: view };

  function show(id, title) {
    document.getElementById(id + '-view').hidden = false;
    document.getElementById(id + '-title').textContent = title || '';
  }

  fetch('/fixtures/' + encodeURIComponent(fixture), { credentials: 'same-origin' })
    .then(function (response) { return response.json(); })
    .then(function (data) {
      if (view === 'editor') {
        show('editor', data.title);
        var editor = studio.bpmnEditor(document.getElementById('canvas'), document.getElementById('panel'), {
          xml: data.xml,
          formFiles: data.formFiles,
          decisionIds: data.decisionIds,
          roles: data.roles,
          problemsEl: document.getElementById('problems'),
          onChange: function (xml) {
            window.studioHarness.changes = (window.studioHarness.changes || 0) + 1;
            window.studioHarness.lastXml = xml;
          },
        });
        window.studioHarness.editor = editor;
        return editor.ready.then(function () { if (data.problems) editor.setProblems(data.problems); });
      }
      if (view === 'dmn') {
        show('dmn', data.title);
        var dmn = studio.dmnEditor(document.getElementById('dmn'), {
          xml: data.xml,
          onChange: function (xml) { window.studioHarness.lastXml = xml; },
        });
        window.studioHarness.dmn = dmn;
        return dmn.ready;
      }
      if (view === 'diff') {
        show('diff', data.title);
        return studio.diagramDiff(document.getElementById('diff-old'), document.getElementById('diff-new'),
          document.getElementById('diff-list'), { oldXml: data.oldXml, newXml: data.newXml })
          .then(function (diff) { window.studioHarness.diff = diff; });
      }
      if (view === 'form') {
        show('form', data.title);
        window.studioHarness.form = studio.formEditor(document.getElementById('form-code'),
          document.getElementById('form-preview'), {
            text: data.text,
            previewUrl: data.previewUrl,
            csrfHeader: data.csrfHeader,
            csrfToken: data.csrfToken,
            onChange: function (text) { window.studioHarness.lastText = text; },
          });
      }
    })
    .catch(function (error) {
      window.studioHarness.error = String(error && error.stack || error);
      throw error;
    });
})();
