/* sungrow dashboard: sign-in with a device token, the live power flow from
   /v1/stream (polling /v1/realtime while the stream is down) and history charts from
   /v1/series. Plain JavaScript with no build step
   and no framework; it talks to this server's /v1 API only. Charts are uPlot
   (uPlot.iife.min.js beside this file). */
'use strict';

(function () {
  const TOKEN_KEY = 'sungrow.token';
  const POLL_MS = 5000;
  // The stream's reconnect backoff starts at the server's retry: and doubles up to this.
  const STREAM_BACKOFF_MAX_MS = 30000;
  // A stream silent this long (three default keepalives) is taken for dead.
  const STREAM_SILENT_MS = 45000;
  // An inverter is read every 5 s; a minute without a sample means something is down.
  const STALE_AFTER_S = 60;
  // Below this a flow is noise, not power moving.
  const IDLE_W = 5;
  const FRAMES = ['day', 'week', 'month', 'year', 'all'];

  const $ = (id) => document.getElementById(id);

  const st = {
    token: null,
    device: null,
    latest: null, // newest sample from /v1/realtime
    liveError: null,
    skewMs: 0, // server clock − browser clock, from the Date header; ages use the server's
    pollTimer: 0,
    tickTimer: 0,
    live: null, // the open stream: { abort, seen (ms of its last bytes), lastId }
    streaming: false, // the stream is delivering: no polling
    streamRetryMs: 2000,
    streamBackoffMs: 2000,
    streamTimer: 0,
    frame: 'day',
    date: null, // YYYY-MM-DD inside the period the user chose; null: the server's today
    shownDate: null, // a date inside the period on screen
    seriesSeq: 0,
    plot: null,
    view: null, // what the chart shows, kept to redraw on resize or theme change
    quarantineTimer: 0,
    alertsTimer: 0,
  };

  class HttpError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(path, token) {
    let res;
    try {
      res = await fetch(path, {
        headers: { Authorization: 'Bearer ' + (token || st.token) },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      throw new HttpError(0, 'the server cannot be reached');
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok) {
      throw new HttpError(res.status, (body && body.detail) || res.statusText || 'HTTP ' + res.status);
    }
    return { body, res };
  }

  // ---- sign-in ----------------------------------------------------------------

  async function start() {
    bindUI();
    const saved = localStorage.getItem(TOKEN_KEY);
    if (!saved) {
      showSignIn('');
      return;
    }
    try {
      await signIn(saved);
    } catch (e) {
      if (e.status === 401) localStorage.removeItem(TOKEN_KEY);
      showSignIn(e.status === 401 ? 'The saved token is no longer accepted; paste it again.' : 'Sign-in failed: ' + e.message);
    }
  }

  async function signIn(token) {
    const { body } = await api('/v1/me', token);
    st.token = token;
    st.device = body.device_id;
    localStorage.setItem(TOKEN_KEY, token);
    showDash();
  }

  function signOut(message) {
    localStorage.removeItem(TOKEN_KEY);
    clearTimeout(st.pollTimer);
    clearInterval(st.tickTimer);
    stopStream();
    clearInterval(st.quarantineTimer);
    $('quarantine').hidden = true;
    clearInterval(st.alertsTimer);
    $('alerts').hidden = true;
    if (st.plot) st.plot.destroy();
    Object.assign(st, { token: null, device: null, latest: null, liveError: null, plot: null, view: null, date: null, shownDate: null });
    st.seriesSeq++;
    showSignIn(message || '');
  }

  function showSignIn(message) {
    document.body.dataset.view = 'signin';
    $('dash').hidden = true;
    $('signout').hidden = true;
    $('device').textContent = '';
    $('signin').hidden = false;
    $('token').value = '';
    const err = $('signin-error');
    err.textContent = message;
    err.hidden = !message;
    $('token').focus();
  }

  function showDash() {
    document.body.dataset.view = 'dash';
    $('signin').hidden = true;
    $('dash').hidden = false;
    $('signout').hidden = false;
    $('device').textContent = st.device;
    selectFrame(st.frame);
    startLive();
    loadSeries();
    startQuarantine();
    startAlerts();
  }

  function bindUI() {
    $('signin-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const token = $('token').value.trim();
      if (!token) return;
      $('signin-btn').disabled = true;
      try {
        await signIn(token);
      } catch (e) {
        const err = $('signin-error');
        err.textContent = e.status === 401 ? 'This token is not accepted by the server.' : 'Sign-in failed: ' + e.message;
        err.hidden = false;
      } finally {
        $('signin-btn').disabled = false;
      }
    });
    $('signout').addEventListener('click', () => signOut(''));
    for (const b of document.querySelectorAll('.tabs button')) {
      b.addEventListener('click', () => {
        selectFrame(b.dataset.frame);
        loadSeries();
      });
    }
    $('prev').addEventListener('click', () => navigate(-1));
    $('next').addEventListener('click', () => navigate(1));
    $('csv').addEventListener('click', downloadCSV);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && st.token && !st.streaming) poll();
    });
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      if (st.view) drawChart(st.view);
    });
    new ResizeObserver(() => {
      if (st.plot) st.plot.setSize(chartSize());
    }).observe($('chart'));
  }

  // ---- live view --------------------------------------------------------------

  function startLive() {
    clearTimeout(st.pollTimer);
    clearInterval(st.tickTimer);
    stopStream();
    st.streamBackoffMs = st.streamRetryMs;
    openStream();
    st.tickTimer = setInterval(() => {
      renderAge();
      if (st.live && st.streaming && Date.now() - st.live.seen > STREAM_SILENT_MS) st.live.abort.abort();
    }, 1000);
  }

  // ---- live stream: GET /v1/stream through fetch(), so the token travels in the
  // Authorization header (EventSource cannot send one, and a token in a URL ends up in
  // proxy logs). While it is down the page polls /v1/realtime and retries with backoff.

  async function openStream() {
    clearTimeout(st.streamTimer);
    const token = st.token;
    const live = { abort: new AbortController(), seen: Date.now(), lastId: st.live ? st.live.lastId : '' };
    st.live = live;
    const headers = { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' };
    if (live.lastId) headers['Last-Event-ID'] = live.lastId;
    try {
      const res = await fetch('/v1/stream?device_id=' + encodeURIComponent(st.device), {
        headers, cache: 'no-store', credentials: 'omit', signal: live.abort.signal,
      });
      if (res.status === 401) {
        if (token === st.token) signOut('The server no longer accepts this token.');
        return;
      }
      if (!res.ok || !res.body) throw new HttpError(res.status, 'stream refused');
      const serverNow = Date.parse(res.headers.get('Date') || '');
      if (!Number.isNaN(serverNow)) st.skewMs = serverNow - Date.now();
      setStreaming(true);
      clearTimeout(st.pollTimer);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done || st.live !== live) break;
        live.seen = Date.now();
        buf += value.replace(/\r\n?/g, '\n');
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          streamBlock(live, buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch (e) {
      // a network error, a refusal or an abort: fall through to the fallback
    }
    if (st.live !== live || token !== st.token) return; // replaced or signed out
    setStreaming(false);
    poll(); // until the stream is back
    st.streamTimer = setTimeout(openStream, st.streamBackoffMs);
    st.streamBackoffMs = Math.min(st.streamBackoffMs * 2, STREAM_BACKOFF_MAX_MS);
  }

  function streamBlock(live, block) {
    let event = 'message';
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line[0] === ':') continue; // keepalive comments
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
      else if (field === 'retry' && /^\d+$/.test(value)) st.streamRetryMs = Number(value);
    }
    if (event !== 'sample' || data.length === 0) return;
    let sample;
    try {
      sample = JSON.parse(data.join('\n'));
    } catch (e) {
      return;
    }
    if (id !== null) live.lastId = id;
    st.streamBackoffMs = st.streamRetryMs; // it works again
    st.latest = sample;
    st.liveError = null;
    renderLive();
  }

  function stopStream() {
    clearTimeout(st.streamTimer);
    if (st.live) st.live.abort.abort();
    st.live = null;
    setStreaming(false);
  }

  // data-stream on <body> says how the live view is fed: "open" or "polling".
  function setStreaming(on) {
    st.streaming = on;
    document.body.dataset.stream = on ? 'open' : 'polling';
  }

  async function poll() {
    clearTimeout(st.pollTimer);
    const token = st.token;
    try {
      const { body, res } = await api('/v1/realtime?device_id=' + encodeURIComponent(st.device));
      if (token !== st.token) return;
      const serverNow = Date.parse(res.headers.get('Date') || '');
      if (!Number.isNaN(serverNow)) st.skewMs = serverNow - Date.now();
      st.latest = body;
      st.liveError = null;
    } catch (e) {
      if (token !== st.token) return;
      if (e.status === 401) {
        signOut('The server no longer accepts this token.');
        return;
      }
      st.liveError = e;
      if (e.status === 404) st.latest = null;
    }
    renderLive();
    if (st.streaming) return; // the stream took over meanwhile
    if (document.visibilityState !== 'hidden') st.pollTimer = setTimeout(poll, POLL_MS);
  }

  function renderLive() {
    const s = st.latest;
    const err = st.liveError;
    const msg = $('live-msg');
    if (!s) {
      setLiveState(err && err.status === 404 ? 'nodata' : 'error');
      msg.textContent = err && err.status === 404 ? 'No readings from this device yet.' : 'Could not load the live reading: ' + (err ? err.message : '');
      msg.hidden = false;
      $('age').textContent = '–';
      $('stale').hidden = true;
      return;
    }
    msg.hidden = !err;
    if (err) msg.textContent = 'Lost contact with the server (' + err.message + '); showing the last reading.';
    setFlow(s);
    renderAge();
  }

  function setLiveState(state) {
    $('live').dataset.state = state;
    document.body.dataset.live = state;
  }

  function renderAge() {
    const s = st.latest;
    if (!s) return;
    const ageS = Math.max(0, Math.round((Date.now() + st.skewMs - Date.parse(s.ts)) / 1000));
    const stale = ageS > STALE_AFTER_S;
    setLiveState(stale ? 'stale' : 'fresh');
    $('age').textContent = ageS < 5 ? 'just now' : humanAge(ageS) + ' ago';
    $('age').title = 'Newest reading: ' + new Date(s.ts).toLocaleString();
    $('stale').hidden = !stale;
    if (stale) {
      $('stale-text').textContent = 'The newest reading is ' + humanAge(ageS) + ' old (' +
        new Date(s.ts).toLocaleString() + '). The inverter or its edge daemon may be offline.';
    }
  }

  function humanAge(s) {
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
    return Math.floor(h / 24) + ' days';
  }

  function fmtW(w) {
    const a = Math.abs(w);
    if (a < 1000) return Math.round(a) + ' W';
    return (a / 1000).toFixed(2) + ' kW';
  }

  function setText(id, text, value) {
    const el = $(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = value === null ? '' : String(value);
  }

  // setLine shows power moving along a line; forward is the direction the line's path
  // is drawn in (towards the hub for solar and grid, away from it for home and battery).
  function setLine(id, w, forward) {
    const el = $(id);
    const on = Math.abs(w) >= IDLE_W;
    el.classList.toggle('on', on);
    el.classList.toggle('rev', on && !forward);
  }

  function setFlow(s) {
    setText('pv-value', fmtW(s.pv_power_w), s.pv_power_w);
    setText('pv-sub', s.pv_power_w >= IDLE_W ? 'producing' : 'no sun');
    setLine('line-pv', s.pv_power_w, true);

    const g = s.export_power_w; // positive: export
    setText('grid-value', fmtW(g), g);
    const dir = g <= -IDLE_W ? 'import' : g >= IDLE_W ? 'export' : 'idle';
    setText('grid-dir', dir === 'import' ? 'importing' : dir === 'export' ? 'exporting' : 'idle');
    $('grid-dir').setAttribute('class', 'sub ' + dir);
    setLine('line-grid', g, g < 0);

    setText('house-value', fmtW(s.load_power_w), s.load_power_w);
    setLine('line-house', s.load_power_w, true);

    const b = s.battery_power_w; // positive: charging
    setText('battery-soc', Math.round(s.battery_soc_pct) + ' %', s.battery_soc_pct);
    setText('battery-value', (b >= IDLE_W ? 'charging ' : b <= -IDLE_W ? 'discharging ' : 'idle ') + fmtW(b), b);
    setLine('line-battery', b, b > 0);
    const h = (22 * Math.min(100, Math.max(0, s.battery_soc_pct))) / 100;
    const fill = $('soc-fill');
    fill.setAttribute('height', h.toFixed(1));
    fill.setAttribute('y', (11 - h).toFixed(1));

    setText('pv-daily', s.pv_daily_kwh == null ? '–' : s.pv_daily_kwh.toFixed(1) + ' kWh', s.pv_daily_kwh);
    setText('battery-temp', s.battery_temp_c == null ? '–' : s.battery_temp_c.toFixed(1) + ' °C', s.battery_temp_c);
    const ts = new Date(s.ts);
    const sameDay = ts.toDateString() === new Date(Date.now() + st.skewMs).toDateString();
    setText('reading-time', sameDay ? ts.toLocaleTimeString() : ts.toLocaleString(), s.ts);
  }

  // ---- history ----------------------------------------------------------------

  // Plain dates (YYYY-MM-DD) are handled as UTC midnights so no zone shifts them.
  const parseDay = (s) => {
    const [y, m, d] = s.split('-').map(Number);
    return new Date(Date.UTC(y, m - 1, d));
  };
  const isoDay = (d) => d.toISOString().slice(0, 10);
  const pad = (n) => String(n).padStart(2, '0');
  const utcFmt = (opts) => new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: 'UTC' }, opts));
  const fmtWeekday = utcFmt({ weekday: 'short' });
  const fmtMonthShort = utcFmt({ month: 'short' });
  const fmtDayLong = utcFmt({ weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
  const fmtDayMonth = utcFmt({ day: 'numeric', month: 'short' });
  const fmtMonthYear = utcFmt({ month: 'long', year: 'numeric' });
  const fmtMonthYearShort = utcFmt({ month: 'short', year: 'numeric' });
  const fmtDayShort = utcFmt({ weekday: 'short', day: 'numeric', month: 'short' });

  function todayHere() {
    const n = new Date(Date.now() + st.skewMs);
    return isoDay(new Date(Date.UTC(n.getFullYear(), n.getMonth(), n.getDate())));
  }

  function periodStart(frame, day) {
    const d = parseDay(day);
    if (frame === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7)); // Monday
    if (frame === 'month') d.setUTCDate(1);
    if (frame === 'year') d.setUTCMonth(0, 1);
    return d;
  }

  function shiftPeriod(frame, day, n) {
    const d = periodStart(frame, day);
    if (frame === 'day') d.setUTCDate(d.getUTCDate() + n);
    if (frame === 'week') d.setUTCDate(d.getUTCDate() + 7 * n);
    if (frame === 'month') d.setUTCMonth(d.getUTCMonth() + n);
    if (frame === 'year') d.setUTCFullYear(d.getUTCFullYear() + n);
    return isoDay(d);
  }

  function selectFrame(frame) {
    if (!FRAMES.includes(frame)) frame = 'day';
    st.frame = frame;
    for (const b of document.querySelectorAll('.tabs button')) {
      b.setAttribute('aria-selected', String(b.dataset.frame === frame));
    }
  }

  function navigate(n) {
    if (st.frame === 'all') return;
    st.date = shiftPeriod(st.frame, st.shownDate || st.date || todayHere(), n);
    loadSeries();
  }

  function renderPeriod(frame, day) {
    let name = 'All time';
    if (frame === 'day') name = fmtDayLong.format(parseDay(day));
    if (frame === 'week') {
      const a = periodStart('week', day);
      const b = new Date(a);
      b.setUTCDate(b.getUTCDate() + 6);
      name = fmtDayMonth.format(a) + ' – ' + fmtDayMonth.format(b) + ' ' + b.getUTCFullYear();
    }
    if (frame === 'month') name = fmtMonthYear.format(parseDay(day));
    if (frame === 'year') name = String(parseDay(day).getUTCFullYear());
    $('period').textContent = name;
    const all = frame === 'all';
    $('prev').disabled = all;
    $('next').disabled = all || periodStart(frame, day) >= periodStart(frame, todayHere());
  }

  async function loadSeries() {
    const seq = ++st.seriesSeq;
    const frame = st.frame;
    const date = frame === 'all' ? null : st.date;
    renderPeriod(frame, date || st.shownDate || todayHere());
    $('chart').dataset.state = 'loading';
    let q = '/v1/series?device_id=' + encodeURIComponent(st.device) + '&frame=' + frame;
    if (date) q += '&date=' + date;
    try {
      const { body } = await api(q);
      if (seq !== st.seriesSeq) return;
      showSeries(frame, date, body.series || [], body.totals);
      renderMoney(body);
    } catch (e) {
      if (seq !== st.seriesSeq) return;
      if (e.status === 401) {
        signOut('The server no longer accepts this token.');
        return;
      }
      if (st.plot) st.plot.destroy();
      st.plot = null;
      st.view = null;
      $('totals').replaceChildren();
      $('money').hidden = true;
      $('chart').dataset.state = 'error';
      $('chart-msg').textContent = 'Could not load the history: ' + e.message;
      $('chart-msg').hidden = false;
    }
  }

  // Buckets are RFC 3339 with the server zone's offset; the wall-clock part is where
  // the server's day, month and year begin, so labels are read from it directly.
  const BUCKET_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

  function parseBucket(b) {
    const m = BUCKET_RE.exec(b.bucket);
    if (!m) return null;
    return { b, t: Date.parse(b.bucket), day: m[1] + '-' + m[2] + '-' + m[3], month: m[1] + '-' + m[2], hour: Number(m[4]) };
  }

  // slotKeys lists every bucket the period should have, so missing ones show as gaps.
  function slotKeys(frame, day, parsed) {
    const keys = [];
    if (frame === 'day') {
      for (let h = 0; h < 24; h++) keys.push(day + 'T' + pad(h));
    } else if (frame === 'week' || frame === 'month') {
      const d = periodStart(frame, day);
      const end = new Date(d);
      if (frame === 'week') end.setUTCDate(end.getUTCDate() + 7);
      else end.setUTCMonth(end.getUTCMonth() + 1);
      for (; d < end; d.setUTCDate(d.getUTCDate() + 1)) keys.push(isoDay(d));
    } else {
      let from = day.slice(0, 4) + '-01';
      let to = day.slice(0, 4) + '-12';
      if (frame === 'all') {
        if (!parsed.length) return keys;
        from = parsed[0].month;
        to = parsed[parsed.length - 1].month;
      }
      let [y, m] = from.split('-').map(Number);
      for (let k = from; k <= to; k = y + '-' + pad(m)) {
        keys.push(k);
        if (++m > 12) {
          m = 1;
          y++;
        }
      }
    }
    return keys;
  }

  function keyOf(frame, p) {
    if (frame === 'day') return p.day + 'T' + pad(p.hour);
    if (frame === 'week' || frame === 'month') return p.day;
    return p.month;
  }

  function buildSlots(frame, day, rows) {
    const parsed = rows.map(parseBucket).filter(Boolean).sort((a, b) => a.t - b.t);
    // Energy in kWh as the server integrated it: per sample, flows split by sign.
    parsed.forEach((p) => {
      p.pv = p.b.pv_kwh;
      p.house = p.b.load_kwh;
      p.soc = p.b.avg_battery_soc_pct;
    });
    const byKey = new Map();
    for (const p of parsed) {
      const k = keyOf(frame, p);
      if (!byKey.has(k)) byKey.set(k, []);
      byKey.get(k).push(p);
    }
    const slots = [];
    const add = (k, p, dup) => slots.push(Object.assign({ key: k, pv: null, house: null, soc: null }, p || {}, labels(frame, k, p, dup)));
    for (const k of slotKeys(frame, day, parsed)) {
      const ps = byKey.get(k);
      byKey.delete(k);
      if (!ps) add(k, null, false);
      else ps.forEach((p) => add(k, p, ps.length > 1)); // two buckets for one wall hour: the DST fall-back
    }
    for (const [k, ps] of byKey) ps.forEach((p) => add(k, p, false)); // outside the period: show, never hide
    return { slots, parsed };
  }

  function labels(frame, key, p, dup) {
    if (frame === 'day') {
      const h = key.slice(11, 13);
      return { short: h, long: h + ':00' + (dup ? ' (' + p.b.bucket.slice(19) + ')' : '') };
    }
    if (frame === 'week' || frame === 'month') {
      const d = parseDay(key);
      return { short: frame === 'week' ? fmtWeekday.format(d) + ' ' + d.getUTCDate() : String(d.getUTCDate()), long: fmtDayShort.format(d) };
    }
    const d = parseDay(key + '-01');
    return { short: frame === 'all' ? fmtMonthShort.format(d) + ' ' + String(d.getUTCFullYear()).slice(2) : fmtMonthShort.format(d), long: fmtMonthYearShort.format(d) };
  }

  function showSeries(frame, requested, rows, totals) {
    // Without a date the server showed its today; the first bucket says which day that is.
    const first = rows.length ? parseBucket(rows[0]) : null;
    const day = requested || (first ? first.day : todayHere());
    const { slots, parsed } = buildSlots(frame, day, rows);
    st.shownDate = frame === 'all' ? st.shownDate : day;
    renderPeriod(frame, day);
    renderTotals(parsed, frame, totals);
    drawChart({ frame, day: frame === 'all' ? '' : day, slots, count: parsed.length });
  }

  // renderTotals shows the frame's energy from the server's totals, each tile carrying
  // its field and exact value (data-field, data-value) for whoever checks the page.
  function renderTotals(parsed, frame, totals) {
    const t = parsed.length && totals ? totals : null;
    const tiles = [
      ['pv', 'Solar', 'pv_kwh'],
      ['house', 'Home', 'load_kwh'],
      ['import', 'Grid import', 'grid_import_kwh'],
      ['export', 'Grid export', 'grid_export_kwh'],
      ['battery', 'Battery charge', 'battery_charge_kwh'],
      ['battery', 'Battery discharge', 'battery_discharge_kwh'],
      ['pv', 'Self-consumption', 'self_consumption_pct'],
      ['house', 'Autarky', 'autarky_pct'],
    ];
    const nodes = tiles.map(([cls, k, field]) => {
      const v = t ? t[field] : null;
      const text = v == null ? '–' : field.endsWith('_pct') ? Math.round(v) + ' %' : fmtKWh(v);
      const node = tile(cls, k, text);
      node.dataset.field = field;
      if (v != null) node.dataset.value = String(v);
      return node;
    });
    const peak = parsed.reduce((a, p) => Math.max(a, p.b.max_pv_power_w || 0), 0);
    if (frame === 'day' || frame === 'week') nodes.push(tile('pv', 'Solar peak', parsed.length ? fmtW(peak) : '–'));
    $('totals').replaceChildren(...nodes);
    $('csv').disabled = !parsed.length;
  }

  // renderMoney shows what the period's energy cost, earned and saved at the device's
  // prices (the server's totals, priced hour by hour), beside the kWh; hidden for a
  // device without prices.
  function renderMoney(body) {
    const t = body.totals;
    const box = $('money');
    if (!body.currency || !t || !(body.series || []).length) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    const fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency: body.currency });
    const nodes = [
      ['import', 'Grid cost', 'grid_import_cost'],
      ['export', 'Export revenue', 'grid_export_revenue'],
      ['pv', 'Savings', 'savings'],
      ['house', 'Net cost', 'net_cost'],
    ].map(([cls, k, field]) => {
      const v = t[field];
      const node = tile(cls, k, v == null ? '–' : fmt.format(v));
      node.dataset.field = field;
      if (v != null) node.dataset.value = String(v);
      return node;
    });
    if (body.unpriced_hours > 0) nodes.push(tile('house', 'Hours without a price', String(body.unpriced_hours)));
    if (body.price_fallback_hours > 0) nodes.push(tile('house', 'Hours without an hourly price', String(body.price_fallback_hours)));
    box.replaceChildren(...nodes);
    box.hidden = false;
  }

  // downloadCSV fetches the frame on screen as CSV with the token in the header (never
  // in a URL) and saves it under the name the server gives.
  async function downloadCSV() {
    const frame = st.frame;
    let q = '/v1/series?device_id=' + encodeURIComponent(st.device) + '&frame=' + frame + '&format=csv';
    if (frame !== 'all' && (st.date || st.shownDate)) q += '&date=' + (st.date || st.shownDate);
    const btn = $('csv');
    btn.disabled = true;
    try {
      const res = await fetch(q, { headers: { Authorization: 'Bearer ' + st.token }, cache: 'no-store', credentials: 'omit' });
      if (!res.ok) throw new HttpError(res.status, 'HTTP ' + res.status);
      const blob = await res.blob();
      const m = /filename="?([^";]+)"?/.exec(res.headers.get('Content-Disposition') || '');
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = m ? m[1] : 'sungrow-' + frame + '.csv';
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60e3);
    } catch (e) {
      if (e.status === 401) signOut('The server no longer accepts this token.');
      else $('chart-msg').textContent = 'Could not download the CSV: ' + e.message;
    } finally {
      btn.disabled = false;
    }
  }

  function tile(cls, k, v) {
    const div = document.createElement('div');
    div.className = 'total ' + cls;
    const a = document.createElement('div');
    a.className = 'k';
    a.textContent = k;
    const b = document.createElement('div');
    b.className = 'v';
    b.textContent = v;
    div.append(a, b);
    return div;
  }

  function fmtKWh(v) {
    if (Math.abs(v) >= 10000) return (v / 1000).toFixed(1) + ' MWh';
    if (Math.abs(v) >= 100) return Math.round(v) + ' kWh';
    return v.toFixed(1) + ' kWh';
  }

  function chartSize() {
    const w = Math.max(260, $('chart').clientWidth);
    return { width: w, height: w < 560 ? 250 : 330 };
  }

  function drawChart(view) {
    st.view = view;
    const el = $('chart');
    if (st.plot) st.plot.destroy();
    st.plot = null;
    const { frame, slots } = view;
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim();
    const n = slots.length;
    const bars = uPlot.paths.bars;
    const kwhVal = (u, v) => (v == null ? '–' : v.toFixed(2) + ' kWh');
    const data = [slots.map((_, i) => i), slots.map((s) => s.pv), slots.map((s) => s.house)];
    const series = [
      { label: frame === 'day' ? 'Hour' : frame === 'year' || frame === 'all' ? 'Month' : 'Day', value: (u, i) => (i == null || !slots[i] ? '–' : slots[i].long) },
      { label: 'Solar', scale: 'kWh', fill: color('--pv'), stroke: color('--pv'), width: 0, paths: bars({ size: [0.38, 36], align: -1 }), points: { show: false }, value: kwhVal },
      { label: 'Home', scale: 'kWh', fill: color('--house'), stroke: color('--house'), width: 0, paths: bars({ size: [0.38, 36], align: 1 }), points: { show: false }, value: kwhVal },
    ];
    const axis = {
      stroke: color('--muted'),
      font: '12px system-ui, sans-serif',
      grid: { stroke: color('--border'), width: 1 },
      ticks: { stroke: color('--border'), width: 1, size: 4 },
    };
    const axes = [
      Object.assign({}, axis, {
        grid: { show: false },
        splits: (u) => {
          const room = Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / (frame === 'all' ? 58 : 38)));
          const step = Math.max(1, Math.ceil(n / room));
          const out = [];
          for (let i = 0; i < n; i += step) out.push(i);
          return out;
        },
        values: (u, splits) => splits.map((i) => (slots[i] ? slots[i].short : '')),
      }),
      Object.assign({}, axis, { scale: 'kWh', size: 52, values: (u, splits) => splits.map((v) => (v === 0 ? '0' : v < 1 ? v.toFixed(1) : String(Math.round(v * 10) / 10))), label: 'kWh', labelSize: 16 }),
    ];
    const scales = {
      x: { time: false, range: () => [-0.5, Math.max(0.5, n - 0.5)] },
      kWh: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] },
    };
    if (frame === 'day') {
      data.push(slots.map((s) => s.soc));
      series.push({ label: 'Battery', scale: '%', stroke: color('--battery'), width: 2.5, points: { show: true, size: 5, fill: color('--battery') }, value: (u, v) => (v == null ? '–' : Math.round(v) + ' %') });
      axes.push(Object.assign({}, axis, { scale: '%', side: 1, size: 44, grid: { show: false }, values: (u, splits) => splits.map((v) => v + '%') }));
      scales['%'] = { range: [0, 100] };
    }
    el.dataset.state = 'drawing';
    el.dataset.frame = frame;
    el.dataset.date = view.day || '';
    el.dataset.buckets = String(view.count);
    const msg = $('chart-msg');
    msg.textContent = 'No data for this period.';
    msg.hidden = view.count > 0;
    st.plot = new uPlot(
      Object.assign(chartSize(), {
        series,
        axes,
        scales,
        cursor: { points: { show: false }, drag: { x: false, y: false } },
        legend: { live: true },
        hooks: {
          draw: [
            () => {
              el.dataset.state = view.count > 0 ? 'drawn' : 'empty';
            },
          ],
        },
      }),
      data,
      el,
    );
  }

  // ---- quarantine notice ------------------------------------------------------
  // Readings the server set aside as implausible (a wrong clock, a failed register
  // read) instead of storing them: the owner should know their edge needs a look.

  const QUARANTINE_MS = 60000;
  // What each reason says about the house, for the notice.
  const QUARANTINE_CAUSES = {
    clock_behind: "the inverter's clock was wrong",
    clock_ahead: "the inverter's clock was wrong",
    soc_out_of_range: "the battery's state of charge read outside 0–100 %",
    sample_count_below: 'the edge daemon sent a sample count below 1',
  };

  function startQuarantine() {
    clearInterval(st.quarantineTimer);
    loadQuarantine();
    st.quarantineTimer = setInterval(loadQuarantine, QUARANTINE_MS);
  }

  function loadQuarantine() {
    return loadNotice('/v1/quarantine', renderQuarantine);
  }

  // loadNotice reads a notice's endpoint for the signed-in device and renders the
  // answer, unless the user signed out meanwhile.
  async function loadNotice(path, render) {
    const token = st.token;
    let body;
    try {
      ({ body } = await api(path + '?device_id=' + encodeURIComponent(st.device)));
    } catch (e) {
      return; // a notice is a hint; the live view reports the server being away
    }
    if (token !== st.token) return;
    render(body);
  }

  function quarantineText(q) {
    const causes = [];
    for (const reason of Object.keys(q.reasons || {}).sort()) {
      const cause = QUARANTINE_CAUSES[reason] || reason;
      if (!causes.includes(cause)) causes.push(cause);
    }
    const n = q.readings;
    return n + (n === 1 ? ' reading was' : ' readings were') + ' set aside since ' +
      new Date(q.since).toLocaleString() + ': ' + causes.join('; ') + '.';
  }

  function renderQuarantine(q) {
    const box = $('quarantine');
    box.hidden = !q || !q.readings;
    if (box.hidden) return;
    $('quarantine-text').textContent = quarantineText(q);
    const rows = $('quarantine-rows');
    rows.replaceChildren();
    for (const e of q.entries) {
      const tr = document.createElement('tr');
      for (const text of [new Date(e.received_at).toLocaleString(), e.ts, e.field, e.detail]) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      rows.append(tr);
    }
  }

  // ---- alert banner -----------------------------------------------------------
  // A firing alert (`sungrow alert add`: the device went quiet, its clock is wrong, the
  // battery runs hot or low) shows above everything until it resolves.

  const ALERTS_MS = 15000;

  function startAlerts() {
    clearInterval(st.alertsTimer);
    loadAlerts();
    st.alertsTimer = setInterval(loadAlerts, ALERTS_MS);
  }

  function loadAlerts() {
    return loadNotice('/v1/alerts', renderAlerts);
  }

  function renderAlerts(body) {
    const firing = [];
    for (const a of (body && body.alerts) || []) {
      for (const d of a.devices) {
        if (d.state === 'firing') firing.push(d.summary + ' (since ' + new Date(d.since).toLocaleString() + ')');
      }
    }
    const box = $('alerts');
    box.hidden = firing.length === 0;
    $('alerts-text').textContent = (firing.length === 1 ? 'Alert: ' : firing.length + ' alerts: ') + firing.join('; ');
  }

  document.addEventListener('DOMContentLoaded', start);
})();
