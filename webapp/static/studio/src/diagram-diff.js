// Two versions of a diagram side by side: elements added (green, on the new side), removed (red, on the old
// side), changed (orange) and moved (blue) are coloured, and a list in the page's language says what changed;
// clicking an entry shows the element on both sides. The two views pan and zoom together.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import { ChangeHandler, diff } from 'bpmn-js-differ';

import spiffworkflowDescriptor from './spiffworkflow.json';
import { pageLanguage, translateModule, translator } from './i18n';
import { requireElement, showError } from './util';

const MARKERS = {
  added: 'studio-diff-added',
  removed: 'studio-diff-removed',
  changed: 'studio-diff-changed',
  layoutChanged: 'studio-diff-layout',
};
const FOCUS_MARKER = 'studio-diff-focus';
const FOCUS_ZOOM = 1;
const KIND_ORDER = ['removed', 'added', 'changed', 'layoutChanged'];
const KIND_LABELS = { added: '新增', removed: '删除', changed: '修改', layoutChanged: '移动' };

// What a changed property means to a process owner; anything else is shown by its own name.
const PROPERTY_LABELS = {
  name: '名称',
  id: '编号',
  conditionExpression: '条件',
  default: '默认路径',
  script: '脚本',
  sourceRef: '连线起点',
  targetRef: '连线终点',
  messageRef: '消息',
  calledElement: '调用的流程',
  attachedToRef: '附着的任务',
  cancelActivity: '是否中断',
  eventDefinitions: '事件定义',
  flowNodeRef: '泳道中的元素',
  documentation: '说明文档',
  loopCharacteristics: '循环/多实例',
  'spiffworkflow:InstructionsForEndUser': '办理说明',
  'spiffworkflow:CalledDecisionId': '调用的决策表',
  'spiffworkflow:PreScript': '前置脚本',
  'spiffworkflow:PostScript': '后置脚本',
  'spiffworkflow:MessagePayload': '消息内容',
  'spiffworkflow:MessageVariable': '消息变量',
  'bpmn:TimerEventDefinition': '定时',
  'bpmn:MessageEventDefinition': '消息',
};

function isDi(element) {
  return !!element && typeof element.$instanceOf === 'function' &&
    (element.$instanceOf('bpmndi:BPMNShape') || element.$instanceOf('bpmndi:BPMNEdge'));
}

/**
 * bpmn-js-differ reports a change inside an extension element (say a task's form file) only as "the task
 * changed somewhere". This handler walks up to the tracked element and records what inside it changed.
 */
class DetailedChangeHandler extends ChangeHandler {
  _owner(model) {
    const path = [];
    let current = model;
    while (current && !isDi(current)) {
      const tracked = this._isTracked(current);
      if (tracked) return { element: tracked.element, path };
      path.unshift(current);
      current = current.$parent;
    }
    return null;
  }

  // `element` is the extension element added or removed as a whole: the differ matches elements without an
  // id by their whole content, so a changed form file shows as one <spiffworkflow:properties> removed and
  // another added. Both halves are kept under one key (old from the removal, new from the addition).
  _recordInside(model, property, newValue, oldValue, element) {
    const owner = this._owner(model);
    if (!owner) return false;
    const key = describePath(element ? [...owner.path, element] : owner.path, property);
    const id = this._computeChangeId(owner.element);
    if (!this._changed[id]) this._changed[id] = { model: owner.element, attrs: {} };
    const change = this._changed[id].attrs[key] || {};
    if (!element || oldValue != null) change.oldValue = oldValue;
    if (!element || newValue != null) change.newValue = newValue;
    this._changed[id].attrs[key] = change;
    return true;
  }

  // The differ calls this with the value in the old diagram first (its own handler names them the other way
  // round and so reports a rename backwards); record them as { oldValue, newValue }.
  changed(model, property, valueInOld, valueInNew) {
    if (!isDi(model) && !this._isTracked(model) && this._recordInside(model, property, valueInNew, valueInOld)) return;
    super.changed(model, property, valueInNew, valueInOld);
  }

  added(model, property, element, idx) {
    if (!this._isTracked(element) && !this._isTracked(model) && !isDi(model) &&
        this._recordInside(model, property, element, null, element)) return;
    super.added(model, property, element, idx);
  }

  removed(model, property, element, idx) {
    if (!this._isTracked(element) && !this._isTracked(model) && !isDi(model) &&
        this._recordInside(model, property, null, element, element)) return;
    super.removed(model, property, element, idx);
  }
}

/** A readable key for a change inside an element: the innermost meaningful part wins. */
function describePath(path, property) {
  for (let i = path.length - 1; i >= 0; i -= 1) {
    const part = path[i];
    if (part.$type === 'spiffworkflow:Property') return `spiffworkflow:Property:${part.name}`;
    if (part.$type === 'spiffworkflow:Properties') return 'spiffworkflow:Properties';
    if (PROPERTY_LABELS[part.$type]) return part.$type;
  }
  const top = path[0];
  if (top && top.$parent && top.$parent.conditionExpression === top) return 'conditionExpression';
  if (path.length && path[0].$type === 'bpmn:ExtensionElements') return 'extensionElements';
  return path.length ? `${path[0].$type}` : property;
}

const NAMED_PROPERTIES = {
  formJsonSchemaFilename: '表单文件',
  formUiSchemaFilename: '表单界面文件',
  dueWorkdays: '办理时限',
};

function namedPropertyLabel(name, translate) {
  return NAMED_PROPERTIES[name] ? translate(NAMED_PROPERTIES[name]) : name;
}

/** The names of the spiffworkflow:property entries that differ between two <spiffworkflow:properties>. */
function changedPropertyNames(oldHolder, newHolder) {
  const values = (holder) => {
    const found = new Map();
    ((holder && holder.properties) || []).forEach((property) => found.set(property.name, property.value));
    return found;
  };
  const before = values(oldHolder);
  const after = values(newHolder);
  return [...new Set([...before.keys(), ...after.keys()])].filter((name) => before.get(name) !== after.get(name));
}

function propertyLabel(key, translate) {
  if (key.startsWith('spiffworkflow:Property:')) {
    return namedPropertyLabel(key.slice('spiffworkflow:Property:'.length), translate);
  }
  const base = key.replace(/\[\d+\]$/, '');
  if (PROPERTY_LABELS[base]) return translate(PROPERTY_LABELS[base]);
  return base === 'extensionElements' ? translate('扩展属性') : base;
}

function typeLabel(type, translate) {
  const local = (type || '').replace(/^bpmn:/, '');
  return translate(local.replace(/(\B[A-Z])/g, ' $1'));
}

function displayName(model) {
  return (model && model.name) || '';
}

/** The changes as a flat list for the page, in a stable order. */
export function describeChanges(changes, translate) {
  const entries = [];
  KIND_ORDER.forEach((kind) => {
    const bucket = changes[`_${kind}`] || {};
    Object.keys(bucket).sort().forEach((id) => {
      const value = bucket[id];
      const model = kind === 'changed' ? value.model : value;
      const entry = { kind, id, type: model && model.$type, name: displayName(model), details: [] };
      if (kind === 'changed') {
        const attrs = value.attrs || {};
        const seen = new Set();
        Object.keys(attrs).forEach((key) => {
          if (key === 'spiffworkflow:Properties') {
            changedPropertyNames(attrs[key].oldValue, attrs[key].newValue).forEach((name) => {
              const label = namedPropertyLabel(name, translate);
              if (!seen.has(label)) entry.details.push(label);
              seen.add(label);
            });
            return;
          }
          const label = propertyLabel(key, translate);
          if (seen.has(label)) return;
          seen.add(label);
          const { oldValue, newValue } = attrs[key];
          const simple = (v) => v === null || v === undefined || ['string', 'number', 'boolean'].includes(typeof v);
          if (key === 'name' && simple(oldValue) && simple(newValue)) {
            entry.details.push(`${label}：${oldValue || '—'} → ${newValue || '—'}`);
          } else {
            entry.details.push(label);
          }
        });
      }
      if (kind === 'layoutChanged') entry.details.push(translate('位置或连线'));
      entries.push(entry);
    });
  });
  // An element both changed and moved is listed once, as changed.
  const changedIds = new Set(entries.filter((e) => e.kind === 'changed').map((e) => e.id));
  return entries.filter((e) => e.kind !== 'layoutChanged' || !changedIds.has(e.id));
}

/**
 * diagramDiff(leftEl, rightEl, listEl, { oldXml, newXml, lang }) -> Promise<{ changes, entries, focus, left, right }>
 */
export async function diagramDiff(leftEl, rightEl, listEl, options = {}) {
  requireElement(leftEl, 'leftEl');
  requireElement(rightEl, 'rightEl');
  requireElement(listEl, 'listEl');
  const lang = pageLanguage(options.lang);
  const translate = translator(lang);
  const viewerOptions = {
    additionalModules: [translateModule(lang)],
    moddleExtensions: { spiffworkflow: spiffworkflowDescriptor },
  };
  leftEl.classList.add('studio-diff-side', 'is-old');
  rightEl.classList.add('studio-diff-side', 'is-new');
  const left = new NavigatedViewer({ container: leftEl, ...viewerOptions });
  const right = new NavigatedViewer({ container: rightEl, ...viewerOptions });

  try {
    await left.importXML(options.oldXml);
  } catch (error) {
    showError(leftEl, translate('流程图无法打开：{message}', { message: error.message }));
    throw error;
  }
  try {
    await right.importXML(options.newXml);
  } catch (error) {
    showError(rightEl, translate('流程图无法打开：{message}', { message: error.message }));
    throw error;
  }

  const changes = diff(left.getDefinitions(), right.getDefinitions(), new DetailedChangeHandler());
  const entries = describeChanges(changes, translate);

  function mark(viewer, id, marker) {
    const registry = viewer.get('elementRegistry');
    if (registry.get(id)) viewer.get('canvas').addMarker(id, marker);
  }
  entries.forEach(({ kind, id }) => {
    if (kind !== 'added') mark(left, id, MARKERS[kind]);
    if (kind !== 'removed') mark(right, id, MARKERS[kind]);
  });

  // Both sides show the same part of the diagram: fit the new side, copy its view, then follow each other.
  right.get('canvas').zoom('fit-viewport', 'auto');
  let syncing = false;
  function follow(from, to) {
    from.on('canvas.viewbox.changed', ({ viewbox }) => {
      if (syncing) return;
      syncing = true;
      to.get('canvas').viewbox({ x: viewbox.x, y: viewbox.y, width: viewbox.width, height: viewbox.height });
      syncing = false;
    });
  }
  follow(left, right);
  follow(right, left);
  const start = right.get('canvas').viewbox();
  left.get('canvas').viewbox({ x: start.x, y: start.y, width: start.width, height: start.height });

  function focus(id) {
    [left, right].forEach((viewer) => {
      const registry = viewer.get('elementRegistry');
      const canvas = viewer.get('canvas');
      registry.filter((element) => canvas.hasMarker(element, FOCUS_MARKER))
        .forEach((element) => canvas.removeMarker(element, FOCUS_MARKER));
    });
    const owner = right.get('elementRegistry').get(id) ? right : left;
    const element = owner.get('elementRegistry').get(id);
    if (!element) return false;
    // Zoom in to a readable size around the element (the other side follows).
    const canvas = owner.get('canvas');
    const box = element.waypoints ? boundsOf(element.waypoints) : element;
    const { outer } = canvas.viewbox();
    const scale = Math.min(FOCUS_ZOOM, outer.width / (box.width + 200), outer.height / (box.height + 160));
    const width = outer.width / scale;
    const height = outer.height / scale;
    canvas.viewbox({ x: box.x + box.width / 2 - width / 2, y: box.y + box.height / 2 - height / 2, width, height });
    mark(left, id, FOCUS_MARKER);
    mark(right, id, FOCUS_MARKER);
    return true;
  }

  renderList(listEl, entries, translate, focus);
  leftEl.dataset.ready = '1';
  rightEl.dataset.ready = '1';
  return { changes, entries, focus, left, right };
}

function boundsOf(points) {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

function renderList(listEl, entries, translate, focus) {
  listEl.textContent = '';
  listEl.classList.add('studio-diff-list');
  const summary = document.createElement('p');
  summary.className = 'studio-diff-summary';
  summary.textContent = entries.length
    ? translate('{count} 处变化', { count: entries.length })
    : translate('两个版本的流程图相同。');
  listEl.appendChild(summary);
  if (!entries.length) return;
  const list = document.createElement('ul');
  entries.forEach((entry) => {
    const item = document.createElement('li');
    item.className = `studio-diff-entry is-${entry.kind}`;
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.element = entry.id;
    button.dataset.kind = entry.kind;
    const kind = document.createElement('span');
    kind.className = 'studio-diff-kind';
    kind.textContent = translate(KIND_LABELS[entry.kind]);
    const what = document.createElement('span');
    what.className = 'studio-diff-what';
    const name = entry.name ? `「${entry.name}」` : '';
    what.textContent = `${typeLabel(entry.type, translate)}${name}（${entry.id}）`;
    button.append(kind, what);
    if (entry.details.length) {
      const details = document.createElement('span');
      details.className = 'studio-diff-details';
      details.textContent = entry.details.join('；');
      button.appendChild(details);
    }
    button.addEventListener('click', () => focus(entry.id));
    item.appendChild(button);
    list.appendChild(item);
  });
  listEl.appendChild(list);
}
