import SpiffworkflowPropertiesProvider from './SpiffworkflowPropertiesProvider';

export default {
  __init__: ['spiffworkflowPropertiesProvider'],
  spiffworkflowPropertiesProvider: ['type', SpiffworkflowPropertiesProvider],
};
