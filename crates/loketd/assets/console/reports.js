// The operations page's measures: the service level now per channel (in
// the Queues card), SLA warnings and breaches from the event stream, and
// today's charts, from GET /v1/reports. Served after console.js as one
// script and under its contracts: the token only in the Authorization
// header, every server string as text, SVG built with createElementNS,
// a bounded DOM (SLA_ROWS rows, charts of at most a day's 96 intervals).
'use strict';

const SLA_ROWS = 8;              // SLA rows in the DOM
const SLA_KEPT = 5000;           // SLA events kept in memory for the hour's counts
const CHANNELS_KEPT = 500;       // conversation -> channel answers kept
const HOUR_MS = 3_600_000;
const SLOT_MS = 15 * 60_000;     // the reports' interval, aligned to UTC
const LEVELS_EVERY_MS = 10_000;  // service level now
const TODAY_EVERY_MS = 60_000;   // today's charts
const SVG_NS = 'http://www.w3.org/2000/svg';
const BANDS = ['<1m', '1-5m', '5-15m', '15-60m', '>1h'];

const reports = {
  measured: null,       // null: not known yet; false: 404 reports_off
  levels: new Map(),    // channel -> service level now (null: nobody to judge)
  levelsFrom: 0,        // the start of the report the levels come from
  sla: [],              // SLA events seen, oldest first
  slaSince: null,       // the time of the first event the page saw
  slaFromStart: false,  // the page saw the stream from its first event
  channels: new Map(),  // conversation -> channel ('' not open, null asking)
  closedAt: new Map(),  // conversation shown -> the time it closed
  slaQueued: false,
};

function resetReports() {
  Object.assign(reports, {measured: null, levelsFrom: 0, sla: [], slaSince: null, slaFromStart: false});
  reports.levels.clear();
  reports.channels.clear();
  reports.closedAt.clear();
  $('sla').tBodies[0].replaceChildren();
  for (const id of ['chart-service', 'chart-response', 'chart-conversion']) $(id).replaceChildren();
}

/// A report, or null when the tenant does not measure (404 reports_off).
async function reportOrOff(path, signal) {
  try {
    const report = await api(path, signal);
    reports.measured = true;
    return report;
  } catch (error) {
    if (!(error instanceof HttpError) || error.code !== 'reports_off') throw error;
    reports.measured = false;
    return null;
  }
}

/// Service level now and the SLA counts every LEVELS_EVERY_MS, today's
/// charts every TODAY_EVERY_MS.
async function pollReports(signal) {
  let today = 0;
  while (!signal.aborted) {
    try {
      await refreshLevels(signal);
      if (reports.measured === false) showToday(null);
      else if (Date.now() - today >= TODAY_EVERY_MS) {
        await refreshToday(signal);
        today = Date.now();
      }
      showSla();
    } catch (error) {
      if (failed(error, signal)) return;
    }
    await sleep(LEVELS_EVERY_MS, signal);
  }
}

const percent = (ratio) => (typeof ratio === 'number' ? `${Math.round(ratio * 100)}%` : '–');

/// A target or an axis value: "0", "500 ms", "20 s", "1 min", "4 min 30 s", "2 h".
function span(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms === 0) return '0';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${Math.floor(m / 60)} h`;
}

const hourMinute = (at) => new Date(at).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', hour12: false});

// ---------------------------------------------------------------- service level now

/// The service level per channel of the conversations that arrived in the
/// current 15-minute interval and the one before it.
async function refreshLevels(signal) {
  const from = Date.now() - SLOT_MS;
  const report = await reportOrOff(`/v1/reports?from=${from}&interval=15m&group_by=channel`, signal);
  if (signal.aborted) return;
  reports.levels.clear();
  if (report) {
    reports.levelsFrom = report.from;
    for (const row of report.groups) {
      if (row.group === 'channel') reports.levels.set(row.key, row.service_level);
    }
  }
  showLevels();
}

function levelTitle(channel) {
  if (reports.measured === false) return 'This tenant does not measure.';
  if (!reports.levels.has(channel)) return `No conversation on ${channel} since ${clock(reports.levelsFrom)}.`;
  if (reports.levels.get(channel) === null) return `Nobody to judge on ${channel} since ${clock(reports.levelsFrom)}.`;
  return `Answered within target, of the ${channel} conversations since ${clock(reports.levelsFrom)}.`;
}

/// The Queues table's cell for a lane of `channel`.
function serviceLevelCell(channel) {
  const cell = el('td', {className: 'num level', title: levelTitle(channel)},
    percent(reports.levels.get(channel)));
  cell.dataset.channel = channel;
  return cell;
}

function showLevels() {
  for (const cell of document.querySelectorAll('#queues td.level')) {
    cell.replaceWith(serviceLevelCell(cell.dataset.channel));
  }
  const line = $('levels');
  if (reports.measured === false) {
    line.replaceChildren('Service level: not measured (reports are off for this tenant).');
    return;
  }
  const channels = [...reports.levels.keys()].sort();
  line.replaceChildren(
    `Service level now, since ${hourMinute(reports.levelsFrom)}: `,
    ...(channels.length ? [] : ['no conversations.']),
    ...channels.map((channel) => {
      const chip = el('span', {className: 'level-chip', title: levelTitle(channel)},
        el('span', {className: 'channel'}, channel), ' ', el('strong', null, percent(reports.levels.get(channel))));
      chip.dataset.channel = channel;
      return chip;
    }),
  );
}

// ---------------------------------------------------------------- SLA warnings and breaches

/// Takes every event of the stream: keeps SLA events, notes closes of the
/// conversations shown.
function slaSeen(e) {
  if (e.type === 'gap') return;
  if (reports.slaSince === null) {
    reports.slaSince = e.at;
    reports.slaFromStart = e.seq === 1;
  }
  if (e.type === 'closed' || e.type === 'erased') {
    const shown = reports.sla.slice(-SLA_ROWS);
    if (shown.some((s) => s.conversation === e.conversation)) reports.closedAt.set(e.conversation, e.at);
    return;
  }
  if (e.type !== 'sla_warning' && e.type !== 'sla_breached') return;
  reports.sla.push({at: e.at, type: e.type, conversation: e.conversation || '', clock: e.clock, target_ms: e.target_ms});
  if (reports.sla.length >= 2 * SLA_KEPT) {
    reports.sla = reports.sla.slice(-SLA_KEPT);
    reports.slaSince = reports.sla[0].at;
    reports.slaFromStart = false;
  }
  if (!reports.slaQueued) {
    reports.slaQueued = true;
    setTimeout(() => { reports.slaQueued = false; showSla(); }, 250);
  }
}

/// The channel of a conversation, asked once of the API ('' until known,
/// and for one no longer open).
function channelOf(conversation) {
  if (!conversation || !state.abort) return '';
  if (reports.channels.has(conversation)) return reports.channels.get(conversation) || '';
  reports.channels.set(conversation, null);
  if (reports.channels.size > CHANNELS_KEPT) reports.channels.delete(reports.channels.keys().next().value);
  const signal = state.abort.signal;
  api(`/v1/conversations/${encodeURIComponent(conversation)}`, signal)
    .then((found) => { reports.channels.set(conversation, found.channel); showSla(); })
    .catch((error) => { if (!failed(error, signal)) reports.channels.set(conversation, ''); });
  return '';
}

function showSla() {
  if (!state.token) return;
  const now = Date.now();
  const hourAgo = now - HOUR_MS;
  const old = reports.sla.findIndex((s) => s.at > hourAgo);
  // Older than an hour: dropped, but for the rows shown.
  const drop = Math.min(old < 0 ? reports.sla.length : old, reports.sla.length - SLA_ROWS);
  if (drop > 0) reports.sla = reports.sla.slice(drop);
  const counts = {first_reply: 0, next_reply: 0, warnings: 0};
  for (const s of reports.sla) {
    if (s.at <= hourAgo) continue;
    if (s.type === 'sla_warning') counts.warnings++;
    else counts[s.clock] = (counts[s.clock] || 0) + 1;
  }
  const since = reports.slaFromStart || reports.slaSince === null ? hourAgo : Math.max(hourAgo, reports.slaSince);
  const period = since > hourAgo + 60_000 ? `from ${hourMinute(since)}` : 'last hour';
  const off = reports.measured === false;
  $('stat-sla').textContent = off ? '–' : fmt(counts.first_reply + counts.next_reply);
  $('stat-sla-sub').textContent = off ? 'not measured' : `${fmt(counts.warnings)} warned · ${period}`;
  $('stat-sla-sub').title = off ? '' : `Breaches and warnings seen on the event stream, ${period}.`;
  $('sla-since').textContent = off ? '' : period;
  const chip = (kind, label, n) => {
    const node = el('span', {className: `count sla-${kind}`}, label, el('strong', null, fmt(n)));
    node.dataset.kind = kind;
    return node;
  };
  $('sla-counts').replaceChildren(...(off ? [] : [
    chip('first_reply', 'Breached, first reply', counts.first_reply),
    chip('next_reply', 'Breached, next reply', counts.next_reply),
    chip('warnings', 'Warnings', counts.warnings),
  ]));

  const shown = reports.sla.slice(-SLA_ROWS).reverse();
  for (const conversation of reports.closedAt.keys()) {
    if (!shown.some((s) => s.conversation === conversation)) reports.closedAt.delete(conversation);
  }
  $('sla').tBodies[0].replaceChildren(...shown.map((s) => {
    const breached = s.type === 'sla_breached';
    const end = reports.closedAt.get(s.conversation) ?? now;
    const channel = channelOf(s.conversation);
    const row = el('tr', null,
      el('td', {className: 'time'}, clock(s.at)),
      el('td', null, el('span', {className: `type type-${s.type}`}, breached ? 'breached' : 'warning')),
      el('td', {className: 'ids', title: s.conversation}, s.conversation),
      el('td', {className: 'channel'}, channel || '–'),
      el('td', null, `${(s.clock || '').replace('_', ' ')}, ${span(s.target_ms)}`),
      el('td', {className: 'num'}, breached ? `+${span(Math.max(0, end - s.at + 1))}` : ''),
    );
    row.dataset.type = s.type;
    return row;
  }));
  $('sla-empty').hidden = shown.length > 0;
  $('sla-empty').textContent = off ? 'This tenant does not measure SLAs.' : 'No warning or breach.';
}

// ---------------------------------------------------------------- today's charts

async function refreshToday(signal) {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const path = `/v1/reports?from=${midnight.getTime()}&interval=15m&group_by=total,channel`;
  const report = await reportOrOff(path, signal);
  if (!signal.aborted) showToday(report);
}

function showToday(report) {
  $('today-charts').hidden = !report;
  $('today-note').hidden = !!report;
  if (!report) {
    $('today-sub').textContent = '';
    $('today-note').textContent = 'This tenant does not measure ([tenants.reports] enabled = false): no report charts.';
    return;
  }
  const t = report.totals;
  $('today-sub').textContent = `since ${hourMinute(report.from)}: ${fmt(t.offered)} offered, ` +
    `${fmt(t.answered)} answered, ${percent(t.service_level)} in target · updated ${clock(Date.now())}`;
  drawService(report.intervals.filter((r) => r.group === 'total'), report.from);
  drawResponse(report.groups.filter((r) => r.group === 'channel'));
  drawConversion(t.conversion_by_first_response);
}

/// An SVG element: svg('rect', {x: 1}, children...); children as text.
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const W = 400, H = 200;
const PLOT = {left: 46, right: 46, top: 22, bottom: 36};

/// Clears a chart and sets its coordinates; returns the plot's box.
function frame(id, left = PLOT.left, right = PLOT.right) {
  const chart = $(id);
  chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  chart.replaceChildren();
  return {chart, x0: left, x1: W - right, y0: PLOT.top, y1: H - PLOT.bottom};
}

function label(x, y, text, anchor = 'middle', className = 'tick') {
  return svg('text', {x, y, 'text-anchor': anchor, class: className}, text);
}

function nothing(box, text) {
  box.chart.append(label((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2, text, 'middle', 'none'));
}

/// The smallest step from `steps` that covers `max` in at most `ticks` steps.
function step(max, ticks, steps) {
  return steps.find((s) => s * ticks >= max) ?? steps[steps.length - 1] * Math.ceil(max / ticks / steps[steps.length - 1]);
}
const COUNT_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
const PERCENT_STEPS = [1, 2, 5, 10, 20, 25];
const MS_STEPS = [100, 250, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000,
  600000, 900000, 1800000, 3600000, 7200000, 14400000];

/// Horizontal grid lines and the left axis' labels for 0..max by `by`.
function yGrid(box, max, by, text) {
  for (let v = 0; v <= max + 1e-9; v += by) {
    const y = box.y1 - (v / max) * (box.y1 - box.y0);
    box.chart.append(svg('line', {x1: box.x0, x2: box.x1, y1: y, y2: y, class: v ? 'gridline' : 'axis'}),
      label(box.x0 - 5, y + 3.5, text(v), 'end'));
  }
}

/// Offered per 15 minutes (bars, left axis) and the service level (line,
/// right axis), from the first interval with conversations (at most the
/// last 3 hours back) to the current one.
function drawService(rows, from) {
  const box = frame('chart-service');
  const now = Math.floor(Date.now() / SLOT_MS) * SLOT_MS;
  const first = Math.max(from, Math.min(now - 11 * SLOT_MS, ...rows.map((r) => r.start)));
  const slots = Math.max(1, (now - first) / SLOT_MS + 1);
  const width = (box.x1 - box.x0) / slots;
  const max = Math.max(1, ...rows.map((r) => r.offered));
  const by = step(max, 4, COUNT_STEPS);
  const top = by * Math.ceil(max / by);
  yGrid(box, top, by, fmt);
  const height = box.y1 - box.y0;
  for (const v of [0, 0.5, 1]) box.chart.append(label(box.x1 + 5, box.y1 - v * height + 3.5, percent(v), 'start'));
  box.chart.append(label(4, 11, 'offered', 'start', 'unit'), label(W - 4, 11, 'service level', 'end', 'unit'));

  const every = [1, 2, 4, 8, 12, 16, 24, 48, 96].find((n) => slots / n <= 6);
  for (let i = 0; i < slots; i++) {
    const start = new Date(first + i * SLOT_MS);
    if ((start.getHours() * 4 + start.getMinutes() / 15) % every !== 0) continue;
    const x = box.x0 + i * width;
    box.chart.append(svg('line', {x1: x, x2: x, y1: box.y1, y2: box.y1 + 4, class: 'axis'}),
      label(x, box.y1 + 15, hourMinute(start)));
  }
  box.chart.append(label((box.x0 + box.x1) / 2, H - 4, 'arrival time (local), 15-minute intervals', 'middle', 'unit'));

  let path = '';
  let previous = -2;
  for (const r of rows) {
    const i = (r.start - first) / SLOT_MS;
    if (i < 0) continue;
    const x = box.x0 + i * width;
    const h = (r.offered / top) * height;
    box.chart.append(svg('rect', {x: x + width * 0.15, y: box.y1 - h, width: width * 0.7, height: h, class: 'bar-offered'},
      svg('title', null, `${clock(r.start)}: ${fmt(r.offered)} offered, ${percent(r.service_level)} in target`)));
    if (typeof r.service_level !== 'number') continue;
    const cx = x + width / 2;
    const cy = box.y1 - r.service_level * height;
    path += `${i === previous + 1 ? 'L' : 'M'}${cx.toFixed(1)},${cy.toFixed(1)}`;
    previous = i;
    box.chart.append(svg('circle', {cx, cy, r: 3, class: 'dot-level'},
      svg('title', null, `${clock(r.start)}: ${percent(r.service_level)} in target`)));
  }
  if (path) box.chart.append(svg('path', {d: path, class: 'line-level'}));
  if (!rows.length) nothing(box, 'no conversations yet today');
}

/// First response p50 and p90 per channel (horizontal bars).
function drawResponse(rows) {
  const box = frame('chart-response', 70, 24);
  const shown = rows.slice().sort((a, b) => b.offered - a.offered).slice(0, 6);
  const replied = shown.filter((r) => r.first_response_ms.p50 !== null);
  const max = Math.max(1000, ...replied.map((r) => r.first_response_ms.p90 ?? r.first_response_ms.p50));
  const by = step(max, 4, MS_STEPS);
  const top = by * Math.ceil(max / by);
  const width = box.x1 - box.x0;
  for (let v = 0; v <= top; v += by) {
    const x = box.x0 + (v / top) * width;
    box.chart.append(svg('line', {x1: x, x2: x, y1: box.y0, y2: box.y1, class: v ? 'gridline' : 'axis'}),
      label(x, box.y1 + 15, span(v)));
  }
  box.chart.append(label((box.x0 + box.x1) / 2, H - 4, 'time to the first reply by a person', 'middle', 'unit'));
  const row = (box.y1 - box.y0) / Math.max(1, shown.length);
  shown.forEach((r, i) => {
    const y = box.y0 + i * row;
    const bar = Math.min(12, row * 0.34);
    box.chart.append(label(box.x0 - 6, y + row / 2 + 3.5, r.key, 'end', 'tick channel-name'));
    const q = r.first_response_ms;
    if (q.p50 === null) {
      box.chart.append(label(box.x0 + 6, y + row / 2 + 3.5, 'no reply by a person yet', 'start', 'none'));
      return;
    }
    [['p50', q.p50, row / 2 - bar - 1], ['p90', q.p90 ?? q.p50, row / 2 + 1]].forEach(([name, ms, dy]) => {
      const w = Math.max(1, (ms / top) * width);
      box.chart.append(svg('rect', {x: box.x0, y: y + dy, width: w, height: bar, class: `bar-${name}`},
        svg('title', null, `${r.key} ${name}: ${span(ms)}`)),
      label(box.x0 + w + 4, y + dy + bar - 2, span(ms), 'start', 'value'));
    });
  });
  if (!shown.length) nothing(box, 'no conversations yet today');
}

/// Conversion rate per first-response band (bars, n under each band).
function drawConversion(bands) {
  const box = frame('chart-conversion', PLOT.left, 12);
  const data = BANDS.map((band) => ({band, ...(bands[band] || {conversations: 0, conversions: 0, rate: null})}));
  const max = Math.max(1, ...data.map((d) => (d.rate ?? 0) * 100));
  const by = step(max, 4, PERCENT_STEPS);
  const top = by * Math.ceil(max / by);
  yGrid(box, top, by, (v) => `${v}%`);
  box.chart.append(label(4, 11, 'converted (ordered)', 'start', 'unit'));
  const width = (box.x1 - box.x0) / data.length;
  data.forEach((d, i) => {
    const x = box.x0 + i * width;
    box.chart.append(label(x + width / 2, box.y1 + 14, d.band), label(x + width / 2, box.y1 + 27, `n = ${fmt(d.conversations)}`, 'middle', 'unit'));
    if (typeof d.rate !== 'number') return;
    const h = Math.max(1, ((d.rate * 100) / top) * (box.y1 - box.y0));
    box.chart.append(svg('rect', {x: x + width * 0.2, y: box.y1 - h, width: width * 0.6, height: h, class: 'bar-conversion'},
      svg('title', null, `first response ${d.band}: ${fmt(d.conversions)} of ${fmt(d.conversations)} converted`)),
    label(x + width / 2, box.y1 - h - 4, percent(d.rate), 'middle', 'value'));
  });
  if (data.every((d) => d.conversations === 0)) nothing(box, 'no first response by a person yet today');
}
