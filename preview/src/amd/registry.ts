/**
 * A small AMD registry: the part of Grafana's plugin loader (SystemJS with its AMD extra) that a
 * plugin's dist/module.js meets. Grafana's own packages are provided under the names plugins
 * import them by; a module file is loaded with a script tag and its anonymous `define(deps,
 * factory)` is matched to that script; its dependencies come from the registry only, so a
 * plugin that needs something Grafana does not share fails with a message naming it.
 */

type Factory = (...deps: unknown[]) => unknown;

interface Definition {
  deps: string[];
  factory: Factory | object;
}

/** What the loader records for each module file it evaluated (the page shows it). */
export interface LoadedModule {
  url: string;
  deps: string[];
}

export class AmdError extends Error {
  override readonly name = 'AmdError';
}

const SPECIAL = new Set(['require', 'module', 'exports']);

export class AmdRegistry {
  private readonly modules = new Map<string, unknown>();
  private readonly files = new Map<string, Promise<unknown>>();
  private readonly anonymous = new Map<Element, Definition>();
  /** A define() outside a script this registry loaded (or without currentScript): kept for the next load. */
  private orphan: Definition | undefined;
  readonly loaded: LoadedModule[] = [];

  /** Registers an evaluated module under a name, as Grafana's loader shares its packages. */
  provide(name: string, value: unknown): void {
    this.modules.set(name, value);
  }

  has(name: string): boolean {
    return this.modules.has(name);
  }

  names(): string[] {
    return [...this.modules.keys()].sort();
  }

  /** The global `define`: `define(factory)`, `define(deps, factory)`, `define(id, deps?, factory)`. */
  readonly define = (...args: unknown[]): void => {
    let id: string | undefined;
    if (typeof args[0] === 'string') id = args.shift() as string;
    const deps = Array.isArray(args[0])
      ? (args.shift() as unknown[]).map(String)
      : ['require', 'exports', 'module'];
    const factory = args[0];
    if (factory === undefined || factory === null) throw new AmdError('define() needs a factory');
    const definition: Definition = { deps, factory: factory as Factory | object };
    if (id !== undefined) {
      this.modules.set(id, this.evaluate(id, definition));
      return;
    }
    const script = typeof document === 'undefined' ? null : document.currentScript;
    if (script) this.anonymous.set(script, definition);
    else this.orphan = definition;
  };

  /**
   * Loads a module file by URL (relative URLs resolve against the page's `<base href>`, as
   * Grafana's do) and resolves to its value: for a plugin, the object whose `plugin` export is
   * the DataSourcePlugin.
   */
  load(url: string): Promise<unknown> {
    let pending = this.files.get(url);
    if (!pending) {
      pending = this.loadScript(url);
      this.files.set(url, pending);
      // A failed load may be retried (after a rebuild, say).
      pending.catch(() => this.files.delete(url));
    }
    return pending;
  }

  private loadScript(url: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = url;
      script.async = true;
      script.dataset['amdModule'] = url;
      script.onload = () => {
        const definition = this.anonymous.get(script) ?? this.orphan;
        this.anonymous.delete(script);
        this.orphan = undefined;
        script.remove();
        if (!definition) {
          reject(new AmdError(`${url} loaded but did not call define(): it is not an AMD module`));
          return;
        }
        try {
          resolve(this.evaluate(url, definition));
        } catch (err) {
          reject(err instanceof Error ? err : new AmdError(String(err)));
        }
      };
      script.onerror = () => {
        script.remove();
        reject(new AmdError(`could not load ${url}`));
      };
      document.head.appendChild(script);
    });
  }

  private evaluate(id: string, { deps, factory }: Definition): unknown {
    const missing = deps.filter((d) => !SPECIAL.has(d) && !this.modules.has(d));
    if (missing.length > 0) {
      throw new AmdError(
        `${id} depends on ${missing.map((m) => `"${m}"`).join(', ')}, which Grafana does not share with plugins here`,
      );
    }
    const module = { id, exports: {} as unknown };
    const localRequire = (name: string): unknown => {
      if (!this.modules.has(name)) throw new AmdError(`${id} requires "${name}", which is not loaded`);
      return this.modules.get(name);
    };
    const args = deps.map((d) => {
      if (d === 'require') return localRequire;
      if (d === 'module') return module;
      if (d === 'exports') return module.exports;
      return this.modules.get(d);
    });
    const value = typeof factory === 'function' ? (factory as Factory)(...args) : factory;
    this.loaded.push({ url: id, deps: deps.filter((d) => !SPECIAL.has(d)) });
    return value === undefined ? module.exports : value;
  }
}

declare global {
  interface Window {
    define?: AmdRegistry['define'] & { amd: object };
    __amd?: AmdRegistry;
  }
}

/**
 * Creates the page's registry and installs it as the global `define`. The vendor bundle calls it
 * after every shared package has been evaluated: UMD packages (lodash among them) look for an AMD
 * `define` as they load and, finding one, would register themselves there instead of exporting.
 */
export function installRegistry(): AmdRegistry {
  const registry = window.__amd ?? new AmdRegistry();
  window.__amd = registry;
  window.define = Object.assign(registry.define, { amd: {} });
  return registry;
}

/** The registry the vendor bundle installed. */
export function pageRegistry(): AmdRegistry {
  if (!window.__amd) throw new AmdError('the AMD registry is not installed: vendor.js must load first');
  return window.__amd;
}
