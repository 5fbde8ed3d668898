// Validation problems shown on a diagram (a marker on the element plus a badge overlay) and, when the page
// gives a list element, as a list whose entries select and scroll to their element.

const OVERLAY_TYPE = 'studio-problem';
const MARKERS = { error: 'studio-problem-error', warning: 'studio-problem-warning' };

/** Keep only well-formed problems; anything else from the server is shown as an error on the process. */
export function normaliseProblems(problems) {
  if (!Array.isArray(problems)) return [];
  return problems
    .filter((problem) => problem && typeof problem === 'object')
    .map((problem) => ({
      element: typeof problem.element === 'string' && problem.element ? problem.element : null,
      severity: problem.severity === 'warning' ? 'warning' : 'error',
      message: String(problem.message == null ? '' : problem.message),
    }));
}

export function createProblemView(modeler, listEl, translate) {
  const canvas = modeler.get('canvas');
  const overlays = modeler.get('overlays');
  const elementRegistry = modeler.get('elementRegistry');
  const selection = modeler.get('selection');
  let marked = [];

  function clear() {
    overlays.remove({ type: OVERLAY_TYPE });
    marked.forEach(({ id, marker }) => {
      if (elementRegistry.get(id)) canvas.removeMarker(id, marker);
    });
    marked = [];
  }

  /** Select the element and bring it into view; false when the diagram has no such element. */
  function focus(id) {
    const element = id && elementRegistry.get(id);
    if (!element) return false;
    if (element.type !== 'label' && element !== canvas.getRootElement()) {
      canvas.scrollToElement(element, { top: 120, bottom: 120, left: 160, right: 160 });
      selection.select(element);
    }
    return true;
  }

  function badge(problemsHere) {
    const errors = problemsHere.filter((p) => p.severity === 'error').length;
    const node = document.createElement('div');
    node.className = `studio-problem-badge ${errors ? 'is-error' : 'is-warning'}`;
    node.textContent = '!';
    node.title = problemsHere
      .map((p) => `${translate(p.severity === 'error' ? '错误' : '警告')}：${p.message}`)
      .join('\n');
    node.setAttribute('role', 'img');
    node.setAttribute('aria-label', node.title);
    node.addEventListener('click', (event) => {
      event.stopPropagation();
      focus(problemsHere[0].element);
    });
    return node;
  }

  function renderList(problems) {
    if (!listEl) return;
    listEl.textContent = '';
    listEl.classList.add('studio-problems');
    const summary = document.createElement('p');
    summary.className = 'studio-problems-summary';
    const errors = problems.filter((p) => p.severity === 'error').length;
    summary.textContent = problems.length
      ? translate('{errors} 个错误，{warnings} 个警告', { errors, warnings: problems.length - errors })
      : translate('没有发现问题。');
    listEl.appendChild(summary);
    if (!problems.length) return;
    const list = document.createElement('ul');
    problems.forEach((problem) => {
      const item = document.createElement('li');
      item.className = `studio-problem is-${problem.severity}`;
      const element = problem.element && elementRegistry.get(problem.element);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'studio-problem-link';
      button.dataset.element = problem.element || '';
      const severity = document.createElement('span');
      severity.className = 'studio-problem-severity';
      severity.textContent = translate(problem.severity === 'error' ? '错误' : '警告');
      const where = document.createElement('span');
      where.className = 'studio-problem-where';
      if (element) {
        const name = element.businessObject && element.businessObject.name;
        where.textContent = name ? `${name}（${problem.element}）` : problem.element;
      } else if (problem.element) {
        where.textContent = `${problem.element} ${translate('（图中已没有此元素）')}`;
      } else {
        where.textContent = translate('整个流程');
      }
      const message = document.createElement('span');
      message.className = 'studio-problem-message';
      message.textContent = problem.message;
      button.append(severity, where, message);
      if (element) {
        button.addEventListener('click', () => focus(problem.element));
      } else {
        button.disabled = true;
      }
      item.appendChild(button);
      list.appendChild(item);
    });
    listEl.appendChild(list);
  }

  function show(rawProblems) {
    const problems = normaliseProblems(rawProblems);
    clear();
    const byElement = new Map();
    problems.forEach((problem) => {
      if (!problem.element || !elementRegistry.get(problem.element)) return;
      if (!byElement.has(problem.element)) byElement.set(problem.element, []);
      byElement.get(problem.element).push(problem);
    });
    byElement.forEach((problemsHere, id) => {
      const marker = problemsHere.some((p) => p.severity === 'error') ? MARKERS.error : MARKERS.warning;
      canvas.addMarker(id, marker);
      marked.push({ id, marker });
      const element = elementRegistry.get(id);
      // Connections have no box: put the badge on the middle of the flow's first segment.
      const position = element.waypoints ? { top: -10, left: -10 } : { top: -10, right: 10 };
      if (element.waypoints) {
        const [a, b] = element.waypoints;
        const box = {
          x: Math.min(...element.waypoints.map((point) => point.x)),
          y: Math.min(...element.waypoints.map((point) => point.y)),
        };
        position.left = (a.x + b.x) / 2 - box.x - 10;
        position.top = (a.y + b.y) / 2 - box.y - 10;
      }
      overlays.add(id, OVERLAY_TYPE, { position, html: badge(problemsHere) });
    });
    renderList(problems);
    return problems;
  }

  return { show, clear, focus };
}
