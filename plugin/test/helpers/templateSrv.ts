import type { ScopedVars, TimeRange, TypedVariableModel } from '@grafana/data';
import type { TemplateSrv } from '@grafana/runtime';

type Value = string | string[];

// Grafana's variable syntax: $name, [[name]] / [[name:format]], ${name} / ${name:format}.
const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?::([^}]+))?}/g;

/**
 * A TemplateSrv over a fixed set of variables, following Grafana's rules the plugin relies
 * on: scoped variables win over dashboard ones, a format function receives the raw value
 * (an array for a multi-value variable), an explicit `${var:format}` wins over the caller's
 * format, and unknown variables stay as written.
 */
export class FakeTemplateSrv implements TemplateSrv {
  private variables: Record<string, Value> = {};

  /** The dashboard's variables and their current values (an array for a multi-value one). */
  setVariables(variables: Record<string, Value>): this {
    this.variables = { ...variables };
    return this;
  }

  getVariables(): TypedVariableModel[] {
    return Object.keys(this.variables).map(
      (name) => ({ name, type: 'custom' }) as unknown as TypedVariableModel,
    );
  }

  replace(
    target?: string,
    scopedVars?: ScopedVars,
    format?: string | ((value: Value, variable: object) => string),
  ): string {
    if (!target) return target ?? '';
    return target.replace(
      VARIABLE,
      (match, dollar?: string, bracket?: string, bracketFmt?: string, brace?: string, braceFmt?: string) => {
        const name = dollar ?? bracket ?? brace ?? '';
        const scoped = scopedVars?.[name];
        const value: Value | undefined = scoped ? String(scoped.value) : this.variables[name];
        if (value === undefined) return match;
        const fmt = bracketFmt ?? braceFmt ?? format;
        if (typeof fmt === 'function') return fmt(value, { name, multi: Array.isArray(value) });
        if (fmt === 'csv') return Array.isArray(value) ? value.join(',') : value;
        if (fmt === 'json') return JSON.stringify(value);
        // Grafana's default for a multi-value variable is a glob.
        return Array.isArray(value) ? (value.length > 1 ? `{${value.join(',')}}` : (value[0] ?? '')) : value;
      },
    );
  }

  containsTemplate(target?: string): boolean {
    if (!target) return false;
    return [...target.matchAll(VARIABLE)].some((m) => (m[1] ?? m[2] ?? m[4] ?? '') in this.variables);
  }

  updateTimeRange(_timeRange: TimeRange): void {}
}
