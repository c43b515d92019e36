import { afterEach } from 'vitest';
import { cleanup } from '@testing-library/react';
import { resetAuthForTests } from '../api/auth';

afterEach(() => {
  cleanup();
  resetAuthForTests();
  localStorage.clear();
  sessionStorage.clear();
});

class RO {
  observe() {}
  unobserve() {}
  disconnect() {}
}
if (!('ResizeObserver' in globalThis)) {
  (globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = RO;
}
if (!window.matchMedia) {
  window.matchMedia = ((q: string) => ({
    matches: false, media: q, onchange: null,
    addListener() {}, removeListener() {},
    addEventListener() {}, removeEventListener() {},
    dispatchEvent: () => false,
  })) as unknown as typeof window.matchMedia;
}
