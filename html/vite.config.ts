/// <reference types="vitest/config" />
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

/*
 * Emits dist/sw.js from sw/sw.template.js with the build's file list, so
 * the service worker precaches the app shell (index.html and the hashed
 * assets) and the UI opens offline after a first visit.
 */
function serviceWorker(): Plugin {
  return {
    name: 'maestro-sw',
    apply: 'build',
    generateBundle(_opts, bundle) {
      const files = Object.keys(bundle)
        .filter((f) => !f.endsWith('.map'))
        .map((f) => '/' + f);
      const shell = ['/', '/index.html', '/manifest.webmanifest',
                     '/icon.svg', ...files];
      const version = createHash('sha256').update(shell.join('\n'))
        .digest('hex').slice(0, 12);
      const src = readFileSync(new URL('./sw/sw.template.js',
                                       import.meta.url), 'utf8')
        .replace('__SHELL__', JSON.stringify(shell))
        .replace('__VERSION__', version);
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: src });
    },
  };
}

export default defineConfig({
  plugins: [react(), serviceWorker()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  css: {
    preprocessorOptions: {
      scss: { quietDeps: true },
    },
  },
  server: { proxy: { '/api': 'http://127.0.0.1:18080',
                     '/healthz': 'http://127.0.0.1:18080' } },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
  },
});
