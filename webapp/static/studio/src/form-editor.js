// The form editor: the JSON Schema of a form in CodeMirror (JSON mode, with syntax errors marked) beside a
// preview that the server renders with the same macros as the task pages. The preview is asked for after
// the typing stops; an answer to an older text never replaces the answer to a newer one.
import { EditorView, basicSetup } from 'codemirror';
import { EditorState } from '@codemirror/state';
import { json, jsonParseLinter } from '@codemirror/lang-json';
import { linter, lintGutter } from '@codemirror/lint';

import { pageLanguage, translator } from './i18n';
import { debounce, requireElement } from './util';

const PREVIEW_DELAY_MS = 500;

const editorTheme = EditorView.theme({
  '&': { height: '100%', fontSize: '13px', backgroundColor: '#fff' },
  '.cm-scroller': { fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "Noto Sans Mono CJK SC", monospace' },
  '.cm-gutters': { backgroundColor: '#f8fafc', borderRight: '1px solid #d9e2ec' },
});

/** Parse the text as a form schema, or return the Chinese reason it is not one. */
export function parseSchema(text, translate) {
  let schema;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    return { error: translate('JSON 有错误：{message}', { message: error.message }) };
  }
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) {
    return { error: translate('表单必须是一个 JSON 对象。') };
  }
  return { schema };
}

async function errorText(response) {
  const type = response.headers.get('Content-Type') || '';
  try {
    if (type.includes('json')) {
      const body = await response.json();
      if (body && (body.error || body.message)) return String(body.error || body.message);
    } else if (type.startsWith('text/plain')) {
      const body = (await response.text()).trim();
      if (body) return body.slice(0, 300);
    }
  } catch (ignored) {
    // fall through to the status line
  }
  return `HTTP ${response.status}`;
}

/**
 * formEditor(editorEl, previewEl, { text, previewUrl, csrfHeader, csrfToken, onChange, lang })
 *   -> { getText, setText, refreshPreview, view, destroy }
 */
export function formEditor(editorEl, previewEl, options = {}) {
  requireElement(editorEl, 'editorEl');
  requireElement(previewEl, 'previewEl');
  const translate = translator(pageLanguage(options.lang));
  editorEl.classList.add('studio-form-code');
  previewEl.classList.add('studio-form-preview');

  const status = document.createElement('p');
  status.className = 'studio-form-status';
  status.setAttribute('role', 'status');
  status.setAttribute('aria-live', 'polite');
  const rendered = document.createElement('div');
  rendered.className = 'studio-form-rendered';
  previewEl.append(status, rendered);

  let sequence = 0; // the number of the newest preview asked for
  let inFlight = null;

  function setStatus(text, kind) {
    status.textContent = text;
    status.dataset.kind = kind || '';
  }

  async function refreshPreview() {
    const text = view.state.doc.toString();
    const parsed = parseSchema(text, translate);
    if (parsed.error) {
      setStatus(parsed.error, 'error');
      previewEl.dataset.state = 'invalid';
      return;
    }
    if (!options.previewUrl) return;
    sequence += 1;
    const mine = sequence;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    setStatus(translate('正在更新预览……'), 'busy');
    previewEl.dataset.state = 'loading';
    const headers = { 'Content-Type': 'application/json', Accept: 'text/html' };
    if (options.csrfHeader && options.csrfToken) headers[options.csrfHeader] = options.csrfToken;
    try {
      const response = await fetch(options.previewUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers,
        body: JSON.stringify({ schema: parsed.schema }),
        signal: inFlight.signal,
      });
      if (mine !== sequence) return;
      if (!response.ok) {
        const reason = await errorText(response);
        if (mine !== sequence) return;
        setStatus(translate('预览失败：{message}', { message: reason }), 'error');
        previewEl.dataset.state = 'failed';
        return;
      }
      const html = await response.text();
      if (mine !== sequence) return;
      // The fragment is rendered by our own server from escaped templates; under the pages' CSP any script
      // in it would not run anyway.
      rendered.innerHTML = html;
      setStatus(translate('预览已更新'), 'ok');
      previewEl.dataset.state = 'ready';
      previewEl.dataset.version = String(mine);
    } catch (error) {
      if (error.name === 'AbortError' || mine !== sequence) return;
      setStatus(translate('预览失败：{message}', { message: error.message }), 'error');
      previewEl.dataset.state = 'failed';
    }
  }

  const schedulePreview = debounce(refreshPreview, PREVIEW_DELAY_MS);

  // CodeMirror styles itself by adding <style> elements, which the pages' Content-Security-Policy refuses.
  // Inside a shadow root it uses constructed style sheets (adoptedStyleSheets) instead, which the policy
  // allows; the shadow root also keeps the app's CSS away from the editor.
  const host = document.createElement('div');
  host.className = 'studio-form-code-host';
  editorEl.appendChild(host);
  const shadow = host.attachShadow({ mode: 'open' });
  const view = new EditorView({
    parent: shadow,
    root: shadow,
    state: EditorState.create({
      doc: options.text || '',
      extensions: [
        basicSetup,
        json(),
        linter(jsonParseLinter()),
        lintGutter(),
        EditorView.lineWrapping,
        editorTheme,
        EditorView.updateListener.of((update) => {
          if (!update.docChanged) return;
          const text = update.state.doc.toString();
          if (typeof options.onChange === 'function') options.onChange(text);
          schedulePreview();
        }),
      ],
    }),
  });

  refreshPreview();

  return {
    view,
    getText: () => view.state.doc.toString(),
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    refreshPreview,
    destroy() {
      schedulePreview.cancel();
      if (inFlight) inFlight.abort();
      view.destroy();
    },
  };
}
