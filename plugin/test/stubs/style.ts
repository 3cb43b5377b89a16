// Stylesheets imported by @grafana/ui modules mean nothing to jsdom.
export {};
