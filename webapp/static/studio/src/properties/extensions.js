// Reading and writing the SpiffWorkflow extension elements of a BPMN element, as commands on the
// modeler's command stack so that every edit can be undone and fires one change.
import { getBusinessObject } from 'bpmn-js/lib/util/ModelUtil';

export const MULTI_COMMAND = 'properties-panel.multi-command-executor';

export function extensionValues(moddleElement) {
  const extensionElements = moddleElement && moddleElement.get('extensionElements');
  return (extensionElements && extensionElements.get('values')) || [];
}

/** The first extension element of the given type (e.g. "spiffworkflow:CalledDecisionId"), or undefined. */
export function findExtension(moddleElement, type) {
  return extensionValues(moddleElement).find((value) => value.$instanceOf(type));
}

/** The text of a body extension element such as <spiffworkflow:preScript>…</spiffworkflow:preScript>. */
export function bodyText(moddleElement, type) {
  const found = findExtension(moddleElement, type);
  return (found && found.get('value')) || '';
}

/**
 * Commands that give moddleElement exactly one extension element of `type` with `properties`, or none when
 * `properties` is null; an extensionElements left empty is removed so the XML stays as a person wrote it.
 */
export function extensionCommands(element, moddleElement, type, properties, bpmnFactory) {
  const commands = [];
  let extensionElements = moddleElement.get('extensionElements');
  const existing = extensionValues(moddleElement).find((value) => value.$instanceOf(type));

  if (properties === null) {
    if (!existing) return commands;
    const remaining = extensionElements.get('values').filter((value) => value !== existing);
    if (remaining.length) {
      commands.push(update(element, extensionElements, { values: remaining }));
    } else {
      commands.push(update(element, moddleElement, { extensionElements: undefined }));
    }
    return commands;
  }

  if (existing) {
    commands.push(update(element, existing, properties));
    return commands;
  }

  if (!extensionElements) {
    extensionElements = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    extensionElements.$parent = moddleElement;
    commands.push(update(element, moddleElement, { extensionElements }));
  }
  const created = bpmnFactory.create(type, properties);
  created.$parent = extensionElements;
  commands.push(update(element, extensionElements, { values: [...extensionElements.get('values'), created] }));
  return commands;
}

/** Commands that set (or, for an empty text, remove) a body extension element. */
export function bodyCommands(element, moddleElement, type, text, bpmnFactory) {
  const value = text && text.trim() ? text : null;
  return extensionCommands(element, moddleElement, type, value === null ? null : { value }, bpmnFactory);
}

export function update(element, moddleElement, properties) {
  return { cmd: 'element.updateModdleProperties', context: { element, moddleElement, properties } };
}

// spiffworkflow:properties / spiffworkflow:property name="…" value="…"

export function propertyList(moddleElement) {
  const holder = findExtension(moddleElement, 'spiffworkflow:Properties');
  return (holder && holder.get('properties')) || [];
}

export function propertyValue(moddleElement, name) {
  const found = propertyList(moddleElement).find((property) => property.get('name') === name);
  return found ? found.get('value') || '' : '';
}

/**
 * Commands that set the named property (keeping the others and their order), or remove it for '' unless
 * `keepEmpty` (a property just added in the panel has no value yet).
 */
export function propertyCommands(element, moddleElement, name, value, bpmnFactory, { keepEmpty = false } = {}) {
  const holder = findExtension(moddleElement, 'spiffworkflow:Properties');
  const current = propertyList(moddleElement);
  const existing = current.find((property) => property.get('name') === name);
  const empty = !keepEmpty && (value === undefined || value === null || value === '');

  if (existing && !empty) return [update(element, existing, { value: value || '' })];
  if (!existing && empty) return [];
  if (existing && empty) {
    const remaining = current.filter((property) => property !== existing);
    if (remaining.length) return [update(element, holder, { properties: remaining })];
    return extensionCommands(element, moddleElement, 'spiffworkflow:Properties', null, bpmnFactory);
  }
  const property = bpmnFactory.create('spiffworkflow:Property', { name, value: value || '' });
  if (holder) {
    property.$parent = holder;
    return [update(element, holder, { properties: [...current, property] })];
  }
  const commands = extensionCommands(
    element, moddleElement, 'spiffworkflow:Properties', { properties: [property] }, bpmnFactory
  );
  // the new holder is the last value the commands create
  const created = commands[commands.length - 1].context.properties.values.slice(-1)[0];
  property.$parent = created;
  return commands;
}

export { getBusinessObject };
