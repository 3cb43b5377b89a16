import { TextDecoder as NodeTextDecoder, TextEncoder as NodeTextEncoder } from 'node:util';

// jsdom lacks a few browser APIs that @grafana/ui touches when its modules load or its
// components mount. These stand-ins are as small as the components allow; no test asserts on them.
Object.defineProperty(window, 'matchMedia', {
  writable: true,
  value: (query: string): MediaQueryList =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => undefined,
      removeListener: () => undefined,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      dispatchEvent: () => false,
    }) as MediaQueryList,
});

class NoopObserver {
  readonly root = null;
  readonly rootMargin = '';
  readonly thresholds: number[] = [];
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
  takeRecords(): [] {
    return [];
  }
}
window.ResizeObserver ??= NoopObserver;
window.IntersectionObserver ??= NoopObserver;

// @grafana/ui measures option labels on a 2D canvas to size menus; jsdom has no canvas.
HTMLCanvasElement.prototype.getContext = function getContext() {
  return { font: '', measureText: (text: string) => ({ width: text.length * 8 }) };
} as unknown as HTMLCanvasElement['getContext'];

// Combobox menus are virtualised: in jsdom's zero-sized layout they would render no option at
// all. A modest box lets the visible window hold a few dozen rows.
Object.defineProperties(HTMLElement.prototype, {
  clientHeight: { configurable: true, get: () => 500 },
  clientWidth: { configurable: true, get: () => 400 },
});

// Every browser Grafana supports decodes streams with TextDecoder (the SSE reader does); jsdom has none.
globalThis.TextDecoder ??= NodeTextDecoder as unknown as typeof TextDecoder;
globalThis.TextEncoder ??= NodeTextEncoder as unknown as typeof TextEncoder;
