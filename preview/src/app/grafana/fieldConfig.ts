import {
  type Field,
  FieldConfigOptionsRegistry,
  type FieldConfigPropertyItem,
  type FieldConfigSource,
  FieldType,
  booleanOverrideProcessor,
  dataLinksOverrideProcessor,
  displayNameOverrideProcessor,
  identityOverrideProcessor,
  numberOverrideProcessor,
  stringOverrideProcessor,
  thresholdsOverrideProcessor,
  valueMappingsOverrideProcessor,
} from '@grafana/data';

type Processor = FieldConfigPropertyItem['process'];

const always = () => true;
const numeric = (field: Field) => field.type === FieldType.number;
/** The preview shows no options pane: its registry items need no editors. */
const noEditor = () => null;

function item(
  id: string,
  process: Processor,
  shouldApply: (field: Field) => boolean,
  settings: Record<string, unknown> = {},
  isCustom = false,
): FieldConfigPropertyItem {
  return {
    id: isCustom ? `custom.${id}` : id,
    path: id,
    name: id,
    process,
    shouldApply,
    settings,
    isCustom,
    editor: noEditor,
    override: noEditor,
  };
}

/**
 * Grafana's standard field options (core's getAllStandardFieldConfigs: what `applyFieldOverrides`
 * applies from `fieldConfig.defaults`, with the same processors and the same "numeric fields
 * only" rules), plus the panel's custom options as a panel plugin declares them: one item per key
 * of `defaults.custom`. @grafana/data's own registry is empty until Grafana's core fills it.
 */
export function fieldConfigRegistry(fieldConfig: FieldConfigSource): FieldConfigOptionsRegistry {
  const registry = new FieldConfigOptionsRegistry();
  registry.register(item('displayName', displayNameOverrideProcessor, always, { expandTemplateVars: true }));
  registry.register(item('unit', stringOverrideProcessor, always));
  registry.register(item('fieldMinMax', booleanOverrideProcessor, numeric));
  registry.register(item('min', numberOverrideProcessor, numeric));
  registry.register(item('max', numberOverrideProcessor, numeric));
  registry.register(item('decimals', numberOverrideProcessor, numeric, { min: 0, max: 15, integer: true }));
  registry.register(item('noValue', stringOverrideProcessor, always));
  registry.register(item('links', dataLinksOverrideProcessor, always));
  registry.register(item('mappings', valueMappingsOverrideProcessor, always));
  registry.register(item('thresholds', thresholdsOverrideProcessor, always));
  registry.register(item('color', identityOverrideProcessor, always));
  registry.register(item('filterable', booleanOverrideProcessor, always));
  for (const key of Object.keys((fieldConfig.defaults.custom ?? {}) as Record<string, unknown>)) {
    registry.register(item(key, identityOverrideProcessor, always, {}, true));
  }
  return registry;
}
