// jsdom lacks a few browser APIs that @grafana/ui touches when its modules load or its
// components mount. These stand-ins do nothing; no test asserts on them.
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

class NoopResizeObserver {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}
window.ResizeObserver ??= NoopResizeObserver;

// @grafana/ui measures option labels on a 2D canvas to size menus; jsdom has no canvas.
HTMLCanvasElement.prototype.getContext = function getContext() {
  return { font: '', measureText: (text: string) => ({ width: text.length * 8 }) };
} as unknown as HTMLCanvasElement['getContext'];
