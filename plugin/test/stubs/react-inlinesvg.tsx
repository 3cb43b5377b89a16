// @grafana/ui's icons fetch their SVG over the network through react-inlinesvg; in jsdom
// that is a stray asynchronous state update after every test. An empty <svg> stands in.
import type { SVGProps } from 'react';

type Props = SVGProps<SVGSVGElement> & { src: string; innerRef?: unknown; cacheRequests?: boolean };

export default function InlineSVG({ src: _src, innerRef: _ref, cacheRequests: _cache, ...rest }: Props) {
  return <svg {...rest} />;
}

export const cacheStore = {};
