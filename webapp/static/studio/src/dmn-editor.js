// The DMN editor: dmn-js with its decision table, literal expression and requirements-diagram views, a row
// of tabs to switch between them, Chinese labels, and the first decision table opened first.
import DmnModeler from 'dmn-js/lib/Modeler';

import { pageLanguage, translateModule, translator } from './i18n';
import { clearError, debounce, requireElement, showError } from './util';

const CHANGE_DELAY_MS = 400;

function viewLabel(view, translate) {
  const name = (view.element && (view.element.name || view.element.id)) || '';
  if (view.type === 'drd') return translate('决策需求图');
  if (view.type === 'decisionTable') return `${translate('决策表')}：${name}`;
  return name;
}

/**
 * dmnEditor(el, options) -> { getXml, importXml, openDecision, modeler, ready, destroy }
 * options: xml, lang ('zh'|'en'), onChange(xml)
 */
export function dmnEditor(el, options = {}) {
  requireElement(el, 'el');
  const lang = pageLanguage(options.lang);
  const translate = translator(lang);
  el.classList.add('studio-dmn');
  const tabs = document.createElement('div');
  tabs.className = 'studio-dmn-tabs';
  tabs.setAttribute('role', 'tablist');
  const container = document.createElement('div');
  container.className = 'studio-dmn-container';
  el.append(tabs, container);

  // dmn-js gives each view its own modules (`common.additionalModules` would be overwritten): name them all.
  // Our engine (SpiffWorkflow) evaluates the cells as Python, not FEEL: say so, which also keeps dmn-js from
  // opening its FEEL editor (CodeMirror, whose <style> elements the pages' CSP refuses) on every cell.
  const viewOptions = {
    additionalModules: [translateModule(lang)],
    expressionLanguages: {
      options: [{ value: 'python', label: 'Python' }, { value: 'feel', label: 'FEEL' }],
      defaults: { editor: 'python' },
    },
  };
  const modeler = new DmnModeler({
    container,
    drd: viewOptions,
    decisionTable: viewOptions,
    literalExpression: viewOptions,
    boxedExpression: viewOptions,
  });

  async function getXml() {
    const { xml } = await modeler.saveXML({ format: true });
    return xml;
  }

  const notify = debounce(async () => {
    if (typeof options.onChange === 'function') options.onChange(await getXml());
  }, CHANGE_DELAY_MS);

  // Each view has its own viewer and command stack: listen on each one once, when it is first shown.
  const listened = new WeakSet();
  function listenToActiveViewer() {
    const viewer = modeler.getActiveViewer();
    if (!viewer || listened.has(viewer)) return;
    viewer.on('elements.changed', notify);
    listened.add(viewer);
  }

  function renderTabs() {
    const active = modeler.getActiveView();
    tabs.textContent = '';
    modeler.getViews().forEach((view) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'studio-dmn-tab';
      button.setAttribute('role', 'tab');
      button.dataset.view = view.type;
      button.dataset.element = view.element.id;
      const selected = active && active.element === view.element;
      button.setAttribute('aria-selected', selected ? 'true' : 'false');
      button.textContent = viewLabel(view, translate);
      button.addEventListener('click', () => modeler.open(view));
      tabs.appendChild(button);
    });
  }

  modeler.on('views.changed', () => {
    renderTabs();
    listenToActiveViewer();
  });

  function openDecision(decisionId) {
    const view = modeler.getViews().find((candidate) => candidate.element.id === decisionId);
    return view ? modeler.open(view) : Promise.resolve();
  }

  async function importXml(xml) {
    try {
      const result = await modeler.importXML(xml);
      clearError(el);
      // A process owner comes to change the rules: show the first decision table rather than the diagram.
      const table = modeler.getViews().find((view) => view.type === 'decisionTable');
      if (table) await modeler.open(table);
      renderTabs();
      listenToActiveViewer();
      el.dataset.ready = '1';
      return result;
    } catch (error) {
      el.dataset.ready = 'error';
      showError(el, translate('决策表无法打开：{message}', { message: error.message }));
      throw error;
    }
  }

  const ready = options.xml ? importXml(options.xml) : Promise.resolve();

  return {
    ready,
    modeler,
    getXml,
    importXml,
    openDecision,
    destroy() {
      notify.cancel();
      modeler.destroy();
    },
  };
}
