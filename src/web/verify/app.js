// 一扫知 offline verifier: checks a code with the keys and the signed
// status list this page keeps (codes/SPEC.md §1–§4, §6 and §8), with no
// network once it has been opened. Ed25519 is the browser's (WebCrypto),
// with the strict checks of SPEC §6 step 3 added here: S < ℓ, and no
// small-order or non-canonical R or public key.
'use strict';

(() => {
  const enc = new TextEncoder();
  const CODE_PREFIX = enc.encode('YSZ-CODE-v1\0');
  const STATUS_PREFIX = enc.encode('YSZ-STATUS-v1\0');
  const ELL = (1n << 252n) + 27742317777372353535851937790883648493n;
  const P = (1n << 255n) - 19n;
  // Digits of a final chunk of k bytes (k = 0..7), SPEC §3.
  const WIDTHS = [0, 3, 5, 8, 10, 13, 15, 17];
  // The canonical encodings of the eight points of small order.
  const SMALL_ORDER = [
    '0100000000000000000000000000000000000000000000000000000000000000',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0000000000000000000000000000000000000000000000000000000000000080',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  ];

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const fromHex = (s) => new Uint8Array((s.match(/../g) || []).map((h) => parseInt(h, 16)));
  const concat = (a, b) => { const o = new Uint8Array(a.length + b.length); o.set(a); o.set(b, a.length); return o; };
  const littleEndian = (b) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);

  function fromBase64url(s) {
    if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
    try {
      return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    } catch (_) {
      return null;
    }
  }

  // SPEC §4: the token in scanned text.
  function extractToken(text) {
    let t = String(text);
    const i = Math.max(t.lastIndexOf('/S/'), t.lastIndexOf('/s/'));
    if (i >= 0) t = t.slice(i + 3);
    t = t.trim();
    for (const c of ['?', '#']) {
      const j = t.indexOf(c);
      if (j >= 0) t = t.slice(0, j);
    }
    return t.replace(/\/+$/, '');
  }

  // SPEC §3: the token's digits to the payload's bytes, or null.
  function decodeToken(t) {
    if (t.length < 190 || t.length > 265 || !/^[0-9]+$/.test(t)) return null;
    const q = Math.floor(t.length / 17);
    const k = WIDTHS.indexOf(t.length % 17);
    if (k < 0) return null;
    const out = new Uint8Array(7 * q + k);
    let at = 0;
    const chunk = (digits, bytes) => {
      let v = BigInt(digits);
      if (v >= 1n << BigInt(8 * bytes)) return false;
      for (let i = bytes - 1; i >= 0; i--) { out[at + i] = Number(v & 255n); v >>= 8n; }
      at += bytes;
      return true;
    };
    for (let c = 0; c < q; c++) if (!chunk(t.slice(17 * c, 17 * c + 17), 7)) return null;
    if (k > 0 && !chunk(t.slice(17 * q), k)) return null;
    return out;
  }

  // SPEC §1: the payload's fields, or null when malformed.
  function parsePayload(b) {
    if (b.length < 13 || b[0] !== 1) return null;
    const len = b[12];
    if (len < 1 || len > 32 || b.length !== 13 + len + 64) return null;
    const merchant = b.subarray(13, 13 + len);
    if (!merchant.every((c) => /[A-Za-z0-9._-]/.test(String.fromCharCode(c)))) return null;
    const grade = b[11];
    const issued = (b[7] << 8) | b[8];
    const expires = (b[9] << 8) | b[10];
    if (grade > 2 || expires < issued) return null;
    return {
      kid: (b[1] << 8) | b[2],
      serial: ((b[3] << 24) | (b[4] << 16) | (b[5] << 8) | b[6]) >>> 0,
      issued, expires,
      grade: ['green', 'yellow', 'red'][grade],
      merchant: String.fromCharCode(...merchant),
      signed: concat(CODE_PREFIX, b.subarray(0, 13 + len)),
      signature: b.subarray(13 + len),
    };
  }

  // A point encoding strict verification refuses: y ≥ p, or small order.
  function weakPoint(p) {
    if ((littleEndian(p) & ((1n << 255n) - 1n)) >= P) return true;
    return SMALL_ORDER.includes(hex(p));
  }

  // Strict Ed25519 (SPEC §6 step 3) over WebCrypto.
  async function ed25519(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    if (littleEndian(signature.subarray(32)) >= ELL) return false;
    if (weakPoint(publicKey) || weakPoint(signature.subarray(0, 32))) return false;
    try {
      const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
      return await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
    } catch (_) {
      return false;
    }
  }

  // `/api/v1/keys` → kid → public key bytes.
  function keyMap(doc) {
    const keys = new Map();
    for (const k of (doc && doc.keys) || []) {
      const pk = fromBase64url(k.public_key);
      if (pk && pk.length === 32 && k.alg === 'Ed25519') keys.set(k.kid, pk);
    }
    return keys;
  }

  // SPEC §8.1–§8.2 steps 1–3 on the payload and signature bytes:
  // {status: 'valid' | 'forged' | 'malformed', kid, issuedAt, revoked, superseded}.
  async function verifyStatusPayload(payload, signature, keys) {
    const b = payload;
    if (!b || !signature || signature.length !== 64 || b.length < 15 || b[0] !== 1) return { status: 'malformed' };
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n = view.getUint32(11);
    if (b.length !== 15 + 5 * n) return { status: 'malformed' };
    const revoked = [], superseded = [];
    let last = -1;
    for (let i = 0; i < n; i++) {
      const serial = view.getUint32(15 + 5 * i);
      const status = b[19 + 5 * i];
      if (serial <= last || (status !== 1 && status !== 2)) return { status: 'malformed' };
      last = serial;
      (status === 1 ? revoked : superseded).push(serial);
    }
    const kid = view.getUint16(1);
    const issuedAt = Number(view.getBigUint64(3));
    const pk = keys.get(kid);
    if (!pk || !(await ed25519(pk, concat(STATUS_PREFIX, b), signature))) return { status: 'forged', kid };
    return { status: 'valid', kid, issuedAt, revoked, superseded };
  }

  // The whole document of `/api/v1/status-list` (§8.2 steps 1–4).
  async function verifyStatusList(doc, keys) {
    if (!doc || doc.format !== 'ysz-status-list-v1') return { status: 'malformed' };
    const list = await verifyStatusPayload(fromBase64url(doc.payload), fromBase64url(doc.signature), keys);
    if (list.status !== 'valid') return list;
    const same = (a, b) => Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);
    const said = Date.parse(doc.issued_at) / 1000;
    if (doc.kid !== list.kid || said !== list.issuedAt || !same(doc.revoked, list.revoked)
        || !same(doc.superseded, list.superseded)) {
      return { status: 'forged', kid: list.kid };
    }
    return list;
  }

  // Today in Asia/Shanghai (UTC+8, no daylight saving) as a day number.
  const todayDay = () => Math.floor((Date.now() / 1000 + 8 * 3600) / 86400);
  const dayText = (d) => new Date(d * 86400000).toISOString().slice(0, 10);

  // SPEC §6 and §8.2: what a code is, given the keys document, a verified
  // status list (or null) and today's day number.
  async function verifyCode(text, keysDoc, list, today) {
    const bytes = decodeToken(extractToken(text));
    const claims = bytes && parsePayload(bytes);
    if (!claims) return { status: 'malformed' };
    const pk = keyMap(keysDoc).get(claims.kid);
    const shown = {
      kid: claims.kid, serial: claims.serial, merchant: claims.merchant, grade: claims.grade,
      issued: dayText(claims.issued), expires: dayText(claims.expires),
    };
    if (!pk) return { status: 'forged', reason: 'unknown key id', claims: shown };
    if (!(await ed25519(pk, claims.signed, claims.signature))) {
      return { status: 'forged', reason: 'signature does not verify', claims: shown };
    }
    if (list && list.status === 'valid') {
      if (list.revoked.includes(claims.serial)) return { status: 'revoked', claims: shown };
      if (list.superseded.includes(claims.serial)) return { status: 'superseded', claims: shown };
    }
    if (today > claims.expires) return { status: 'expired', claims: shown };
    return { status: 'valid', claims: shown };
  }

  window.yszVerify = {
    extractToken, decodeToken, verifyCode, verifyStatusPayload, verifyStatusList, keyMap,
    fromHex, todayDay,
  };

  // ---- the page ----

  const WORDS = {
    valid: ['有效', '此码真实有效，由市场监管部门签发。'],
    forged: ['警告：伪造的码', '此码不是市场监管部门签发的，可能是伪造的。请勿相信码上信息，可拨打12315举报。'],
    malformed: ['无法识别的码', '无法识别此码：它不完整或已损坏。请重新扫描，或向店家核实。'],
    revoked: ['此码已注销', '此码已被市场监管部门注销，不能再作为信用凭证。'],
    superseded: ['此码已被取代', '此码已被新码取代，店家应张贴最新的码。'],
    expired: ['此码已过期', '此码已过有效期，店家应更换新码。'],
  };
  const GRADES = { green: '绿码 良好', yellow: '黄码 关注', red: '红码 重点监管' };

  async function load(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(url + ': ' + res.status);
    return res.json();
  }

  const data = { keys: null, list: null };

  async function sync() {
    const synced = document.getElementById('synced');
    try {
      data.keys = await load('/api/v1/keys');
      data.list = await verifyStatusList(await load('/api/v1/status-list'), keyMap(data.keys));
    } catch (e) {
      synced.textContent = '尚无离线数据：请联网打开本页一次。';
      return;
    }
    if (data.list.status === 'valid') {
      const at = new Date(data.list.issuedAt * 1000);
      const local = new Date(at.getTime() + 8 * 3600 * 1000).toISOString().replace('T', ' ').slice(0, 16);
      synced.textContent = '数据同步于 ' + local + '（北京时间）';
      synced.dataset.syncedAt = at.toISOString();
    } else {
      synced.textContent = '注销名单无法验证，只能检查签名和有效期。';
    }
  }

  function show(result) {
    const out = document.getElementById('result');
    const [title, message] = WORDS[result.status];
    out.hidden = false;
    out.className = 'result ' + result.status;
    out.dataset.status = result.status;
    out.replaceChildren();
    const h = document.createElement('h2');
    h.textContent = title;
    const p = document.createElement('p');
    p.textContent = message;
    out.append(h, p);
    const c = result.claims;
    if (c && result.status !== 'forged') {
      const dl = document.createElement('dl');
      for (const [k, v] of [['印制等级', GRADES[c.grade]], ['商户编号', c.merchant], ['码序号', String(c.serial)],
        ['签发日期', c.issued], ['有效期至', c.expires]]) {
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.textContent = v;
        if (k === '印制等级') dd.className = 'grade ' + c.grade;
        dl.append(dt, dd);
      }
      out.append(dl);
    }
  }

  async function check(text) {
    if (!data.keys) await sync();
    show(await verifyCode(text, data.keys, data.list, todayDay()));
  }

  document.addEventListener('DOMContentLoaded', async () => {
    if ('serviceWorker' in navigator) {
      navigator.serviceWorker.register('/verify/sw.js', { scope: '/' }).catch(() => {});
    }
    await sync();
    const form = document.getElementById('form');
    const input = document.getElementById('code');
    form.addEventListener('submit', (e) => { e.preventDefault(); check(input.value); });
    // Opened from a scan (an /S/… address served from the cache) or with ?code=…
    const given = /^\/[sS]\//.test(location.pathname) ? location.pathname
      : new URLSearchParams(location.search).get('code');
    if (given) {
      input.value = given;
      await check(given);
    }
    document.body.dataset.ready = '1';
  });
})();
