/*
 * Maestro service worker (generated at build time from
 * html/sw/sw.template.js). Keeps the app shell available offline:
 * precaches index.html and the hashed assets; navigations are network
 * first with the cached shell as fallback; /assets/ are cache first (their
 * names change with their content). The API (/api/, /healthz) is never
 * cached or intercepted, so live event streams go straight to nginx.
 */
const VERSION = '__VERSION__';
const CACHE = `maestro-shell-${VERSION}`;
const SHELL = __SHELL__;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE)
    .then((c) => c.addAll(SHELL))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys
      .filter((k) => k.startsWith('maestro-shell-') && k !== CACHE)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin
      || url.pathname.startsWith('/api/') || url.pathname === '/healthz') {
    return;
  }
  if (req.mode === 'navigate') {
    event.respondWith(fetch(req).catch(() =>
      caches.match('/index.html', { cacheName: CACHE })));
    return;
  }
  event.respondWith(caches.match(req, { cacheName: CACHE }).then((hit) =>
    hit || fetch(req).then((res) => {
      if (res.ok && url.pathname.startsWith('/assets/')) {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put(req, copy));
      }
      return res;
    })));
});
