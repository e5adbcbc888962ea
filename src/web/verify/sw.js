// 一扫知 offline verifier: keeps the page, its script and style, the keys
// and the signed status list, and serves them when the network is gone.
// Online, every one of them is fetched fresh (and kept); a scan address
// (/S/…) opened offline gets the verifier page, which checks that code.
'use strict';

const CACHE = 'ysz-verify-v1';
const KEPT = ['/verify', '/verify/app.js', '/verify/style.css', '/api/v1/keys', '/api/v1/status-list'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(KEPT)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const res = await fetch(request);
    if (res.ok) await cache.put(key, res.clone());
    return res;
  } catch (err) {
    const kept = await cache.match(key);
    if (kept) return kept;
    throw err;
  }
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || event.request.method !== 'GET') return;
  if (KEPT.includes(url.pathname)) {
    event.respondWith(networkFirst(event.request, url.pathname));
  } else if (event.request.mode === 'navigate' && /^\/[sS]\/[0-9]+\/?$/.test(url.pathname)) {
    event.respondWith(fetch(event.request).catch(() => caches.match('/verify')));
  }
});
