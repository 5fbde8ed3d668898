/*
 * The process owners' studio in the browser: one global, window.EldercareStudio, for server-rendered pages.
 * Pages load dist/studio.css and dist/studio.js (no inline script: a page script reads its data from data-*
 * attributes or a JSON endpoint and calls these). Every option named `lang` is 'zh' or 'en'; without it the
 * page's <html lang> decides (Chinese unless it starts with "en").
 *
 *   EldercareStudio.bpmnEditor(canvasEl, panelEl, {
 *       xml,                        // the diagram; without it a new empty diagram
 *       formFiles: ['application.json', ...],   // form file names in the bundle (select in the panel)
 *       decisionIds: ['adaptation_eligibility', ...],  // decision ids in the bundle
 *       roles: [{value: 'caseworker', label: '乡镇经办人'}, ...],   // what a lane may stand for
 *       problemsEl,                 // optional: where the problem list is drawn
 *       onChange(xml),              // after each edit (debounced 400 ms)
 *       lang })
 *     -> { ready: Promise, getXml(): Promise<string>, importXml(xml): Promise, setProblems(problems),
 *          focusElement(id): boolean, modeler, destroy() }
 *     problems: [{element: '<bpmn element id>' | null, severity: 'error'|'warning', message: '中文'}]
 *
 *   EldercareStudio.dmnEditor(el, { xml, onChange(xml), lang })
 *     -> { ready: Promise, getXml(): Promise<string>, importXml(xml), openDecision(id), modeler, destroy() }
 *
 *   EldercareStudio.diagramDiff(leftEl, rightEl, listEl, { oldXml, newXml, lang })
 *     -> Promise<{ entries: [{kind: 'added'|'removed'|'changed'|'layoutChanged', id, type, name, details}],
 *                  changes, focus(id), left, right }>
 *
 *   EldercareStudio.formEditor(editorEl, previewEl, { text, previewUrl, csrfHeader, csrfToken, onChange(text),
 *       lang })
 *     -> { getText(): string, setText(text), refreshPreview(): Promise, view, destroy() }
 *     POSTs {"schema": {...}} as JSON to previewUrl (header csrfHeader: csrfToken) 500 ms after typing stops
 *     and puts the returned HTML fragment in previewEl; an error answer's JSON {"error": "…"} or plain text
 *     is shown above the preview.
 *
 * See webapp/static/studio/README.md.
 */
import { bpmnEditor } from './bpmn-editor';
import { dmnEditor } from './dmn-editor';
import { diagramDiff } from './diagram-diff';
import { formEditor } from './form-editor';

import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn.css';
import '@bpmn-io/properties-panel/dist/assets/properties-panel.css';
import 'dmn-js/dist/assets/dmn-js-shared.css';
import 'dmn-js/dist/assets/dmn-js-drd.css';
import 'dmn-js/dist/assets/dmn-js-decision-table.css';
import 'dmn-js/dist/assets/dmn-js-decision-table-controls.css';
import 'dmn-js/dist/assets/dmn-js-literal-expression.css';
import 'dmn-js/dist/assets/dmn-js-boxed-expression.css';
import 'dmn-js/dist/assets/dmn-js-boxed-expression-controls.css';
import 'dmn-js/dist/assets/dmn-font/css/dmn.css';
import './studio.css';

window.EldercareStudio = Object.freeze({ bpmnEditor, dmnEditor, diagramDiff, formEditor });
