// The properties panel groups for what our engine (SpiffWorkflow) reads from a diagram: forms, instructions,
// decisions, scripts, message payloads, conditions and default flows, timers and lane roles. Labels are
// Chinese message ids passed through `translate` (English comes from the dictionary in ../i18n.js).
import { is, isAny } from 'bpmn-js/lib/util/ModelUtil';
import { useService } from 'bpmn-js-properties-panel';
import {
  CheckboxEntry,
  isCheckboxEntryEdited,
  isSelectEntryEdited,
  isTextAreaEntryEdited,
  isTextFieldEntryEdited,
  ListGroup,
  SelectEntry,
  TextAreaEntry,
  TextFieldEntry,
  Group,
} from '@bpmn-io/properties-panel';

import {
  MULTI_COMMAND,
  bodyCommands,
  bodyText,
  getBusinessObject,
  propertyCommands,
  propertyList,
  propertyValue,
  update,
} from './extensions';

const FORM = 'formJsonSchemaFilename';
const UI_FORM = 'formUiSchemaFilename';
const DUE = 'dueWorkdays';
const OWN_PROPERTIES = [FORM, UI_FORM, DUE];
const PRIORITY = 400; // after the base provider (1000 runs first and builds General, Documentation, ...)

export default function SpiffworkflowPropertiesProvider(propertiesPanel, injector, translate) {
  this._injector = injector;
  this._translate = translate;
  propertiesPanel.registerProvider(PRIORITY, this);
}
SpiffworkflowPropertiesProvider.prototype.getGroups = function (element) {
  const translate = this._translate;
  const injector = this._injector;
  return function (groups) {
    const own = [
      formGroup(element, translate),
      instructionsGroup(element, translate),
      decisionGroup(element, translate),
      scriptGroup(element, translate),
      prePostScriptGroup(element, translate),
      messageGroup(element, translate),
      conditionGroup(element, translate),
      timerGroup(element, translate),
      laneGroup(element, translate),
      otherPropertiesGroup(element, injector, translate),
    ].filter(Boolean);
    // Our timer group replaces the stock one: its help text tells people to write bare ISO 8601, but our
    // engine evaluates the timer as a Python expression ("P3D" needs its quotes).
    const kept = groups.filter((group) => group.id !== 'timer');
    const general = kept.findIndex((group) => group.id === 'general');
    kept.splice(general + 1, 0, ...own);
    return kept;
  };
};
SpiffworkflowPropertiesProvider.$inject = ['propertiesPanel', 'injector', 'translate'];

// --- shared entry helpers ---------------------------------------------------------------------------------

/** Options for a select of file names or ids: none, the known ones, and the current value if unknown. */
function choiceOptions(known, current, translate, noneLabel) {
  const options = [{ value: '', label: translate(noneLabel) }];
  (known || []).forEach((value) => options.push({ value, label: value }));
  if (current && !(known || []).includes(current)) {
    options.push({ value: current, label: translate('{value}（流程包中没有）', { value: current }) });
  }
  return options;
}

function useCommands() {
  const commandStack = useService('commandStack');
  return (commands) => {
    if (commands.length) commandStack.execute(MULTI_COMMAND, commands);
  };
}

function BodyTextArea(props) {
  const { element, id, label, description, type, target, monospace, rows } = props;
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const bpmnFactory = useService('bpmnFactory');
  const run = useCommands();
  const moddleElement = target ? target(element) : getBusinessObject(element);
  return TextAreaEntry({
    element,
    id,
    label: translate(label),
    description: description && translate(description),
    debounce,
    monospace,
    rows: rows || 2,
    autoResize: true,
    getValue: () => bodyText(moddleElement, type),
    setValue: (value) => run(bodyCommands(element, moddleElement, type, value, bpmnFactory)),
  });
}

// --- 表单 (user task forms) ------------------------------------------------------------------------------

function formGroup(element, translate) {
  if (!is(element, 'bpmn:UserTask')) return null;
  return {
    id: 'spiff-form',
    label: translate('表单'),
    component: Group,
    entries: [
      { id: 'spiff-form-file', component: FormFileSelect, property: FORM, isEdited: isSelectEntryEdited },
      { id: 'spiff-form-ui-file', component: FormFileSelect, property: UI_FORM, isEdited: isSelectEntryEdited },
      { id: 'spiff-due-workdays', component: DueWorkdays, isEdited: isTextFieldEntryEdited },
    ],
  };
}

function FormFileSelect(props) {
  const { element, id, property } = props;
  const translate = useService('translate');
  const bpmnFactory = useService('bpmnFactory');
  const options = useService('config.studio') || {};
  const run = useCommands();
  const bo = getBusinessObject(element);
  const isMain = property === FORM;
  return SelectEntry({
    element,
    id,
    label: translate(isMain ? '表单文件（JSON Schema）' : '表单界面文件（UI Schema，可不填）'),
    description: isMain ? translate('用户任务显示并校验的表单；文件来自本流程包的 forms 目录。') : undefined,
    getValue: () => propertyValue(bo, property),
    setValue: (value) => run(propertyCommands(element, bo, property, value, bpmnFactory)),
    getOptions: () => choiceOptions(options.formFiles, propertyValue(bo, property), translate, '（无）'),
  });
}

function DueWorkdays(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const bpmnFactory = useService('bpmnFactory');
  const run = useCommands();
  const bo = getBusinessObject(element);
  return TextFieldEntry({
    element,
    id,
    label: translate('办理时限（工作日）'),
    description: translate('从任务到达起计算的工作日数，超期在待办中提示；不填则不设时限。'),
    debounce,
    getValue: () => propertyValue(bo, DUE),
    setValue: (value, error) => {
      if (error) return;
      run(propertyCommands(element, bo, DUE, (value || '').trim(), bpmnFactory));
    },
    validate: (value) => (value && !/^\s*\d{1,3}\s*$/.test(value) ? translate('请填写 0 到 999 之间的整数。') : null),
  });
}

// --- 办理说明 (instructionsForEndUser) ---------------------------------------------------------------------

function instructionsGroup(element, translate) {
  if (!is(element, 'bpmn:Task') || isAny(element, ['bpmn:ScriptTask', 'bpmn:BusinessRuleTask', 'bpmn:ServiceTask'])) {
    return null;
  }
  return {
    id: 'spiff-instructions',
    label: translate('办理说明'),
    component: Group,
    entries: [
      {
        id: 'spiff-instructions-text',
        component: BodyTextArea,
        type: 'spiffworkflow:InstructionsForEndUser',
        label: '给办理人的说明',
        description: '显示在任务页上方；可用 {{ 变量名 }} 插入流程数据（Jinja 模板）。',
        rows: 4,
        isEdited: isTextAreaEntryEdited,
      },
    ],
  };
}

// --- 决策表 (calledDecisionId) ------------------------------------------------------------------------------

function decisionGroup(element, translate) {
  if (!is(element, 'bpmn:BusinessRuleTask')) return null;
  return {
    id: 'spiff-decision',
    label: translate('决策表'),
    component: Group,
    entries: [{ id: 'spiff-called-decision', component: DecisionSelect, isEdited: isSelectEntryEdited }],
  };
}

function DecisionSelect(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const bpmnFactory = useService('bpmnFactory');
  const options = useService('config.studio') || {};
  const run = useCommands();
  const bo = getBusinessObject(element);
  const type = 'spiffworkflow:CalledDecisionId';
  return SelectEntry({
    element,
    id,
    label: translate('调用的决策表'),
    description: translate('决策表的输出写入流程数据，供后面的条件和任务使用。'),
    getValue: () => bodyText(bo, type),
    setValue: (value) => run(bodyCommands(element, bo, type, value, bpmnFactory)),
    getOptions: () => choiceOptions(options.decisionIds, bodyText(bo, type), translate, '（未选择）'),
  });
}

// --- 脚本 (script task) and 前置/后置脚本 (pre/post scripts) ------------------------------------------------

function scriptGroup(element, translate) {
  if (!is(element, 'bpmn:ScriptTask')) return null;
  return {
    id: 'spiff-script',
    label: translate('脚本'),
    component: Group,
    entries: [{ id: 'spiff-script-text', component: ScriptText, isEdited: isTextAreaEntryEdited }],
  };
}

function ScriptText(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const modeling = useService('modeling');
  return TextAreaEntry({
    element,
    id,
    label: translate('脚本（一条简短的 Python 语句）'),
    description: translate('在受限环境中运行，只能调用系统提供的函数；较长的计算请写成经过测试的函数。'),
    debounce,
    monospace: true,
    autoResize: true,
    rows: 2,
    getValue: () => getBusinessObject(element).get('script') || '',
    setValue: (value) => modeling.updateProperties(element, { script: value || undefined }),
  });
}

function prePostScriptGroup(element, translate) {
  if (!is(element, 'bpmn:Activity')) return null;
  const entries = [
    {
      id: 'spiff-pre-script',
      component: BodyTextArea,
      type: 'spiffworkflow:PreScript',
      label: '前置脚本（进入前运行）',
      monospace: true,
      isEdited: isTextAreaEntryEdited,
    },
    {
      id: 'spiff-post-script',
      component: BodyTextArea,
      type: 'spiffworkflow:PostScript',
      label: '后置脚本（完成后运行）',
      monospace: true,
      isEdited: isTextAreaEntryEdited,
    },
  ];
  return { id: 'spiff-pre-post-scripts', label: translate('前置和后置脚本'), component: Group, entries };
}

// --- 消息 (message payload / variable) ---------------------------------------------------------------------

function messageDefinition(element) {
  const bo = getBusinessObject(element);
  return (bo.get('eventDefinitions') || []).find((definition) => is(definition, 'bpmn:MessageEventDefinition'));
}

function messageGroup(element, translate) {
  const isTask = isAny(element, ['bpmn:ReceiveTask', 'bpmn:SendTask']);
  if (!isTask && !(is(element, 'bpmn:Event') && messageDefinition(element))) return null;
  const throws = isAny(element, ['bpmn:SendTask', 'bpmn:IntermediateThrowEvent', 'bpmn:EndEvent']);
  const target = isTask ? getBusinessObject : messageDefinition;
  const entry = throws
    ? {
        id: 'spiff-message-payload',
        type: 'spiffworkflow:MessagePayload',
        label: '消息内容（Python 表达式）',
        description: '发送消息时计算，例如 {"reason": refusal_reason}。',
      }
    : {
        id: 'spiff-message-variable',
        type: 'spiffworkflow:MessageVariable',
        label: '收到的消息存入变量',
        description: '消息内容以这个变量名写入流程数据。',
      };
  return {
    id: 'spiff-message',
    label: translate('消息内容'),
    component: Group,
    entries: [{ ...entry, component: BodyTextArea, target, monospace: true, isEdited: isTextAreaEntryEdited }],
  };
}

// --- 条件 (conditions on sequence flows, the gateway's default flow) -------------------------------------

const CONDITIONAL_SOURCES = ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway', 'bpmn:ComplexGateway', 'bpmn:Activity'];

function conditionGroup(element, translate) {
  if (!is(element, 'bpmn:SequenceFlow')) return null;
  const source = element.source;
  if (!source || !isAny(source, CONDITIONAL_SOURCES)) return null;
  return {
    id: 'spiff-condition',
    label: translate('条件'),
    component: Group,
    entries: [
      { id: 'spiff-default-flow', component: DefaultFlowCheckbox, isEdited: isCheckboxEntryEdited },
      { id: 'spiff-condition-expression', component: ConditionExpression, isEdited: isTextAreaEntryEdited },
    ],
  };
}

function isDefaultFlow(element) {
  const sourceBo = getBusinessObject(element.source);
  return !!sourceBo.get('default') && sourceBo.get('default') === getBusinessObject(element);
}

function DefaultFlowCheckbox(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const run = useCommands();
  return CheckboxEntry({
    element,
    id,
    label: translate('默认路径（其他条件都不满足时走这条）'),
    getValue: () => isDefaultFlow(element),
    setValue: (checked) => {
      const flow = getBusinessObject(element);
      const commands = [
        {
          cmd: 'element.updateProperties',
          context: { element: element.source, properties: { default: checked ? flow : undefined } },
        },
      ];
      // A default flow carries no condition (BPMN): drop the one it had.
      if (checked && flow.get('conditionExpression')) {
        commands.push({ cmd: 'element.updateProperties', context: { element, properties: { conditionExpression: undefined } } });
      }
      run(commands);
    },
  });
}

function ConditionExpression(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const bpmnFactory = useService('bpmnFactory');
  const modeling = useService('modeling');
  const isDefault = isDefaultFlow(element);
  return TextAreaEntry({
    element,
    id,
    label: translate('条件表达式（Python）'),
    description: isDefault
      ? translate('默认路径不需要条件。')
      : translate('为真时走这条路径，例如 decision == "approve"；变量来自表单和决策表。'),
    debounce,
    monospace: true,
    autoResize: true,
    rows: 2,
    disabled: isDefault,
    getValue: () => {
      const expression = getBusinessObject(element).get('conditionExpression');
      return (expression && expression.get('body')) || '';
    },
    setValue: (value) => {
      let conditionExpression;
      if (value && value.trim()) {
        conditionExpression = bpmnFactory.create('bpmn:FormalExpression', { body: value });
        conditionExpression.$parent = getBusinessObject(element);
      }
      modeling.updateProperties(element, { conditionExpression });
    },
  });
}

// --- 定时 (timer event definitions) ------------------------------------------------------------------------

const TIMER_TYPES = ['timeDate', 'timeDuration', 'timeCycle'];

function timerDefinition(element) {
  const bo = getBusinessObject(element);
  return (bo.get('eventDefinitions') || []).find((definition) => is(definition, 'bpmn:TimerEventDefinition'));
}

function timerType(definition) {
  return TIMER_TYPES.find((type) => definition && definition.get(type)) || '';
}

function timerGroup(element, translate) {
  if (!is(element, 'bpmn:Event') || !timerDefinition(element)) return null;
  const entries = [{ id: 'spiff-timer-type', component: TimerTypeSelect, isEdited: isSelectEntryEdited }];
  if (timerType(timerDefinition(element))) {
    entries.push({ id: 'spiff-timer-expression', component: TimerExpression, isEdited: isTextAreaEntryEdited });
  }
  return { id: 'spiff-timer', label: translate('定时'), component: Group, entries };
}

function TimerTypeSelect(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const bpmnFactory = useService('bpmnFactory');
  const run = useCommands();
  const definition = timerDefinition(element);
  return SelectEntry({
    element,
    id,
    label: translate('定时方式'),
    getValue: () => timerType(definition),
    setValue: (value) => {
      const current = timerType(definition);
      if (value === current) return;
      const properties = { timeDate: undefined, timeDuration: undefined, timeCycle: undefined };
      if (value) {
        // keep what was written when only the kind of timer changes
        const old = current && definition.get(current);
        const expression = bpmnFactory.create('bpmn:FormalExpression', { body: old ? old.get('body') : undefined });
        expression.$parent = definition;
        properties[value] = expression;
      }
      run([update(element, definition, properties)]);
    },
    getOptions: () => [
      { value: '', label: translate('（未设置）') },
      { value: 'timeDate', label: translate('到某个时间点（timeDate）') },
      { value: 'timeDuration', label: translate('等待一段时长（timeDuration）') },
      { value: 'timeCycle', label: translate('周期重复（timeCycle）') },
    ],
  });
}

function TimerExpression(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const run = useCommands();
  const definition = timerDefinition(element);
  const type = timerType(definition);
  const expression = definition.get(type);
  const examples = {
    timeDate: '例如 offer["respond_by"] 或 end_of_day(period_end, 0)（返回日期时间）。',
    timeDuration: '例如 "P3D"（3天，ISO 8601 期间，须带引号）或 adaptation_notice_period()。',
    timeCycle: '例如 "R3/PT10M"（每10分钟一次，共3次，须带引号）。',
  };
  return TextAreaEntry({
    element,
    id,
    label: translate('定时表达式（Python）'),
    description: translate(examples[type]),
    debounce,
    monospace: true,
    autoResize: true,
    rows: 1,
    getValue: () => (expression && expression.get('body')) || '',
    setValue: (value) => run([update(element, expression, { body: value || undefined })]),
  });
}

// --- 泳道角色 (lanes name roles) ----------------------------------------------------------------------------

/** The role code a lane name stands for, read the way the server reads it (code, "(code)", or label). */
export function roleOfLane(name, roles) {
  const text = (name || '').trim();
  if (!text) return '';
  const codes = roles.map((role) => role.value);
  if (codes.includes(text)) return text;
  const bracket = text.match(/[(（]\s*([a-z_]+)\s*[)）]/);
  if (bracket && codes.includes(bracket[1])) return bracket[1];
  const byLabel = roles.find((role) => role.label && text.includes(role.label));
  return byLabel ? byLabel.value : '';
}

function laneGroup(element, translate) {
  if (!is(element, 'bpmn:Lane')) return null;
  return {
    id: 'spiff-lane',
    label: translate('泳道角色'),
    component: Group,
    entries: [{ id: 'spiff-lane-role', component: LaneRoleSelect, isEdited: isSelectEntryEdited }],
  };
}

function LaneRoleSelect(props) {
  const { element, id } = props;
  const translate = useService('translate');
  const modeling = useService('modeling');
  const roles = (useService('config.studio') || {}).roles || [];
  const name = getBusinessObject(element).get('name');
  return SelectEntry({
    element,
    id,
    label: translate('由哪个角色办理'),
    description: translate('选择后泳道名称写成“角色名称 (角色代码)”，系统按括号中的代码分派任务。'),
    getValue: () => roleOfLane(name, roles),
    setValue: (value) => {
      const role = roles.find((candidate) => candidate.value === value);
      if (role) modeling.updateProperties(element, { name: `${role.label} (${role.value})` });
    },
    getOptions: () => {
      const options = roles.map((role) => ({ value: role.value, label: `${role.label} (${role.value})` }));
      if (!roleOfLane(name, roles)) options.unshift({ value: '', label: translate('（不是系统中的角色）') });
      return options;
    },
  });
}

// --- 其他扩展属性 (the remaining spiffworkflow:property entries) ---------------------------------------------

function otherPropertiesGroup(element, injector, translate) {
  const bo = getBusinessObject(element);
  if (!isAny(element, ['bpmn:UserTask', 'bpmn:ManualTask']) && !propertyList(bo).length) return null;
  const others = propertyList(bo).filter((property) => !OWN_PROPERTIES.includes(property.get('name')));
  const bpmnFactory = injector.get('bpmnFactory');
  const commandStack = injector.get('commandStack');
  const items = others.map((property, index) => ({
    id: `spiff-property-${index}`,
    label: property.get('name') || translate('（未命名）'),
    entries: [
      { id: `spiff-property-${index}-name`, component: PropertyField, property, field: 'name', isEdited: isTextFieldEntryEdited },
      { id: `spiff-property-${index}-value`, component: PropertyField, property, field: 'value', isEdited: isTextFieldEntryEdited },
    ],
    autoFocusEntry: `spiff-property-${index}-name`,
    remove: () => {
      const commands = propertyCommands(element, bo, property.get('name'), '', bpmnFactory);
      if (commands.length) commandStack.execute(MULTI_COMMAND, commands);
    },
  }));
  return {
    id: 'spiff-properties',
    label: translate('其他扩展属性'),
    component: ListGroup,
    items,
    add: (event) => {
      event.stopPropagation();
      const taken = propertyList(bo).map((property) => property.get('name'));
      let n = 1;
      while (taken.includes(`property_${n}`)) n += 1;
      commandStack.execute(MULTI_COMMAND, propertyCommands(element, bo, `property_${n}`, '', bpmnFactory, { keepEmpty: true }));
    },
  };
}

function PropertyField(props) {
  const { element, id, property, field } = props;
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const commandStack = useService('commandStack');
  return TextFieldEntry({
    element,
    id,
    label: translate(field === 'name' ? '属性名' : '属性值'),
    debounce,
    getValue: () => property.get(field) || '',
    setValue: (value, error) => {
      if (error) return;
      commandStack.execute('element.updateModdleProperties', { element, moddleElement: property, properties: { [field]: value } });
    },
    validate: (value) => {
      if (field !== 'name') return null;
      if (!value || !value.trim()) return translate('属性名不能为空。');
      if (OWN_PROPERTIES.includes(value.trim())) return translate('这个属性在上面的“表单”中设置。');
      return null;
    },
  });
}
