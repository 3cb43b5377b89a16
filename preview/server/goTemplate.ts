/**
 * The part of Go's text/template that plugin.json routes use, as Grafana's data-source proxy
 * executes it (pkg/api/pluginproxy: interpolateString over `{JsonData, SecureJsonData}`):
 * `{{ .JsonData.key }}`, `{{ .SecureJsonData.key }}`, and Grafana's `orEmpty` function
 * (`{{ orEmpty .JsonData.key }}`). As in Go, a key missing from the map prints `<no value>`
 * (orEmpty prints nothing instead). Any other action is a parse error, as Grafana reports it:
 * `could not parse template <text>`.
 */
export interface TemplateData {
  JsonData: Record<string, unknown>;
  SecureJsonData: Record<string, string>;
}

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

const ACTION = /\{\{-?\s*(.*?)\s*-?\}\}/g;
const FIELD = /^\.(JsonData|SecureJsonData)\.([A-Za-z_][A-Za-z0-9_]*)$/;

export function interpolateString(text: string, data: TemplateData): string {
  return text.replace(ACTION, (_match, body: string) => {
    let expression = body.trim();
    let orEmpty = false;
    if (expression.startsWith('orEmpty ')) {
      orEmpty = true;
      expression = expression.slice('orEmpty '.length).trim();
    }
    const field = FIELD.exec(expression);
    if (!field) throw new TemplateError(`could not parse template ${text}`);
    const map = data[field[1] as keyof TemplateData] as Record<string, unknown>;
    const key = field[2]!;
    const present = Object.prototype.hasOwnProperty.call(map, key) && map[key] !== undefined;
    if (orEmpty && (!present || map[key] === null)) return '';
    return present ? goPrint(map[key]) : '<no value>';
  });
}

/** How Go's fmt prints a JSON value decoded into interface{} (maps and slices in Go's own notation). */
function goPrint(value: unknown): string {
  // A JSON null is a nil interface{}.
  if (value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(goPrint).join(' ')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
  return `map[${entries.map(([k, v]) => `${k}:${goPrint(v)}`).join(' ')}]`;
}
