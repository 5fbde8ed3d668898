// The BPMN editor: the bpmn-js modeler, the properties panel with our SpiffWorkflow groups, Chinese labels,
// and validation problems marked on the diagram.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';

import spiffworkflowDescriptor from './spiffworkflow.json';
import SpiffworkflowPropertiesModule from './properties';
import { pageLanguage, translateModule, translator } from './i18n';
import { createProblemView } from './problems';
import { clearError, debounce, requireElement, showError } from './util';

const CHANGE_DELAY_MS = 400;
// Below this zoom the labels cannot be read: open a wide diagram at this zoom, at its start, instead.
const READABLE_ZOOM = 0.75;
const PALETTE_WIDTH_PX = 120;
const OPEN_GROUPS = ['general', 'spiff-form', 'spiff-instructions', 'spiff-decision', 'spiff-script',
  'spiff-message', 'spiff-condition', 'spiff-timer', 'spiff-lane'];

/** Fit the diagram, or when that makes it unreadably small, show its beginning at a readable zoom. */
function showDiagram(canvas) {
  canvas.zoom('fit-viewport', 'auto');
  if (canvas.zoom() >= READABLE_ZOOM) return;
  canvas.zoom(READABLE_ZOOM);
  const { inner, width, height } = canvas.viewbox();
  const y = inner.height < height ? inner.y + inner.height / 2 - height / 2 : inner.y - 20;
  canvas.viewbox({ x: inner.x - PALETTE_WIDTH_PX / READABLE_ZOOM, y, width, height });
}

/**
 * bpmnEditor(canvasEl, panelEl, options) -> { getXml, importXml, setProblems, focusElement, modeler, destroy }
 * options: xml, formFiles[], decisionIds[], roles[{value,label}], problemsEl, lang ('zh'|'en'), onChange(xml)
 */
export function bpmnEditor(canvasEl, panelEl, options = {}) {
  requireElement(canvasEl, 'canvasEl');
  requireElement(panelEl, 'panelEl');
  const lang = pageLanguage(options.lang);
  const translate = translator(lang);
  canvasEl.classList.add('studio-canvas');
  panelEl.classList.add('studio-panel');

  const modeler = new BpmnModeler({
    container: canvasEl,
    propertiesPanel: {
      parent: panelEl,
      layout: { groups: Object.fromEntries(OPEN_GROUPS.map((id) => [id, { open: true }])) },
    },
    additionalModules: [
      BpmnPropertiesPanelModule,
      BpmnPropertiesProviderModule,
      SpiffworkflowPropertiesModule,
      translateModule(lang),
    ],
    moddleExtensions: { spiffworkflow: spiffworkflowDescriptor },
    studio: {
      formFiles: (options.formFiles || []).slice().sort(),
      decisionIds: (options.decisionIds || []).slice().sort(),
      roles: options.roles || [],
    },
  });
  const problems = createProblemView(modeler, options.problemsEl, translate);
  let lastProblems = [];

  async function getXml() {
    const { xml } = await modeler.saveXML({ format: true });
    return xml;
  }

  const notify = debounce(async () => {
    if (typeof options.onChange !== 'function') return;
    options.onChange(await getXml());
  }, CHANGE_DELAY_MS);
  modeler.on('commandStack.changed', notify);

  async function importXml(xml) {
    try {
      const result = await modeler.importXML(xml);
      clearError(canvasEl);
      showDiagram(modeler.get('canvas'));
      canvasEl.dataset.ready = '1';
      problems.show(lastProblems);
      return result;
    } catch (error) {
      canvasEl.dataset.ready = 'error';
      showError(canvasEl, translate('流程图无法打开：{message}', { message: error.message }));
      throw error;
    }
  }

  const ready = options.xml ? importXml(options.xml) : modeler.createDiagram();

  return {
    ready,
    modeler,
    getXml,
    importXml,
    setProblems(list) {
      lastProblems = list || [];
      return problems.show(lastProblems);
    },
    focusElement: problems.focus,
    destroy() {
      notify.cancel();
      modeler.destroy();
    },
  };
}
