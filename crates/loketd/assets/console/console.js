// Loket's operations page: one tenant's queues, agents, stats and live
// decisions, from the /v1 API of the daemon that serves this file. The
// measures (service level now, SLA warnings and breaches, today's charts)
// are in reports.js, served with this file as one script.
//
// Contracts kept here:
// - The token lives in sessionStorage and goes only in the Authorization
//   header, the event stream included (read with fetch, not EventSource,
//   which cannot send headers), never in a URL.
// - Every string from the server is rendered with textContent; nothing
//   here writes HTML (SVG is built with createElementNS).
// - The DOM stays small whatever the tenant's size: at most MAX_EVENT_ROWS
//   event rows, AGENT_PAGE agent rows and SLA_ROWS SLA rows, charts of at
//   most a day's 96 intervals; agents are counted in JS.
'use strict';

const TOKEN_KEY = 'loket.token';
const MAX_EVENT_ROWS = 200;      // event rows in the DOM
const KEPT_EVENTS = 1000;        // events kept in memory, for the filters
const AGENT_PAGE = 25;           // agent rows per page
const STATS_EVERY_MS = 2000;     // stats and queues
const AGENTS_MIN_MS = 3000;      // agents: at least this apart, more with many pages
const RECONNECT_MAX_MS = 15000;

const $ = (id) => document.getElementById(id);
const numberFormat = new Intl.NumberFormat();
const fmt = (n) => numberFormat.format(n);

/// Element helper: el('td', {className: 'num'}, 'text', childNode).
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) Object.assign(node, props);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/// "850 ms", "12 s", "3 min 5 s", "2 h 10 min".
function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function clock(at) {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], {hour12: false});
}

function bar(used, total) {
  const ratio = total > 0 ? Math.min(1, used / total) : 0;
  const fill = el('span', {className: 'fill'});
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  const node = el('span', {className: 'bar'}, fill);
  if (ratio >= 0.9) node.classList.add('hot');
  else if (ratio >= 0.7) node.classList.add('warm');
  return node;
}

class Unauthorized extends Error {}

/// A refused request: its HTTP status and the API's error code.
class HttpError extends Error {
  constructor(path, status, code) {
    super(`${path}: HTTP ${status}${code ? ` ${code}` : ''}`);
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------- state

const state = {
  token: null,
  abort: null,          // AbortController of the signed-in session
  lastSeq: 0,           // the last event seq seen on the stream
  liveFrom: 0,          // events after this seq arrived live (not history)
  events: [],           // the last KEPT_EVENTS events, oldest first
  pendingRows: [],      // events not yet rendered
  paused: false,
  unseen: 0,            // events that arrived while paused
  perSecond: new Map(), // arrival second -> events, for the rate
  agents: [],
  agentPage: 0,
  agentsBusy: false,
  refreshSoon: null,
};

/// GETs a JSON answer for the session that `signal` belongs to.
async function api(path, signal) {
  const response = await fetch(path, {
    headers: {Authorization: `Bearer ${state.token}`},
    signal,
    cache: 'no-store',
  });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new HttpError(path, response.status, body && body.error ? body.error.code : null);
  }
  return response.json();
}

function setStatus(kind, text) {
  const node = $('status');
  node.dataset.state = kind;
  node.textContent = text;
}

// ---------------------------------------------------------------- sign in

function signIn(token) {
  signOut(null);
  state.token = token;
  state.abort = new AbortController();
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login').hidden = true;
  $('console').hidden = false;
  $('signout').hidden = false;
  setStatus('connecting', 'connecting…');
  start(state.abort.signal);
}

function signOut(error) {
  if (state.abort) state.abort.abort();
  clearTimeout(state.refreshSoon);
  state.refreshSoon = null;
  state.abort = null;
  state.token = null;
  state.lastSeq = 0;
  state.events = [];
  state.pendingRows = [];
  state.agents = [];
  state.perSecond.clear();
  $('events').tBodies[0].replaceChildren();
  resetReports();
  sessionStorage.removeItem(TOKEN_KEY);
  $('console').hidden = true;
  $('signout').hidden = true;
  $('login').hidden = false;
  $('tenant').textContent = '';
  $('login-error').textContent = error || '';
  setStatus('idle', 'not signed in');
  document.title = 'Loket operations';
}

function failed(error, signal) {
  if (signal.aborted) return true;
  if (error instanceof Unauthorized) {
    signOut('The server refused this token.');
    return true;
  }
  return false;
}

async function start(signal) {
  let stats;
  try {
    stats = await api('/v1/stats', signal);
  } catch (error) {
    if (!failed(error, signal)) signOut(`Cannot reach the server: ${error.message}`);
    return;
  }
  showStats(stats);
  // Start with the last rows' worth of history, then follow live.
  state.lastSeq = Math.max(0, stats.last_seq - MAX_EVENT_ROWS);
  state.liveFrom = stats.last_seq;
  follow(signal);
  pollStats(signal);
  pollAgents(signal);
  pollReports(signal);
}

// ---------------------------------------------------------------- stats and queues

function showStats(stats) {
  $('tenant').textContent = stats.tenant;
  document.title = `${stats.tenant} · Loket operations`;
  const router = stats.router;
  $('stat-agents').textContent = fmt(router.agents);
  $('stat-conversations').textContent = fmt(router.conversations);
  $('stat-queued').textContent = fmt(router.queued);
  $('stat-seq').textContent = fmt(stats.last_seq);
}

function showQueues(queues) {
  const body = $('queues').tBodies[0];
  const deepest = Math.max(1, ...queues.map((q) => q.depth));
  body.replaceChildren(...queues.map((q) => el('tr', null,
    el('td', {className: 'channel'}, q.channel),
    el('td', null, q.language),
    el('td', {className: 'num strong'}, fmt(q.depth)),
    el('td', {className: 'num'}, duration(q.oldest_wait_ms)),
    serviceLevelCell(q.channel),
    el('td', {className: 'bar-col'}, bar(q.depth, deepest)),
  )));
  $('queues-empty').hidden = queues.length > 0;
  const lanes = queues.length;
  $('stat-queued-sub').textContent = lanes ? `in ${lanes} lane${lanes > 1 ? 's' : ''}` : 'nobody waiting';
  const oldest = queues.reduce((a, q) => (q.oldest_wait_ms > (a ? a.oldest_wait_ms : -1) ? q : a), null);
  $('stat-wait').textContent = oldest ? duration(oldest.oldest_wait_ms) : '–';
  $('stat-wait-sub').textContent = oldest ? `${oldest.channel} · ${oldest.language}` : 'nobody waiting';
}

async function refreshStats(signal) {
  const [stats, queues] = await Promise.all([api('/v1/stats', signal), api('/v1/queues', signal)]);
  if (signal.aborted) return;
  showStats(stats);
  showQueues(queues.queues);
}

async function pollStats(signal) {
  while (!signal.aborted) {
    try {
      await refreshStats(signal);
    } catch (error) {
      if (failed(error, signal)) return;
      setStatus('down', 'server unreachable, retrying');
    }
    await sleep(STATS_EVERY_MS, signal);
  }
}

/// After live events, refresh the numbers soon (at most once a second).
function refreshSoon() {
  if (state.refreshSoon || !state.abort) return;
  const signal = state.abort.signal;
  state.refreshSoon = setTimeout(() => {
    state.refreshSoon = null;
    refreshStats(signal).catch((error) => failed(error, signal));
  }, 1000);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, {once: true});
  });
}

// ---------------------------------------------------------------- agents

/// Fetches every agent, 1,000 a page, and redraws the agent views; with
/// many agents the pause between rounds grows with the number of pages.
async function pollAgents(signal) {
  while (!signal.aborted) {
    let pages = 1;
    try {
      const agents = [];
      for (let offset = 0; ; pages++) {
        const page = await api(`/v1/agents?limit=1000&offset=${offset}`, signal);
        agents.push(...page.agents);
        if (page.next_offset === undefined || page.next_offset <= offset) break;
        offset = page.next_offset;
      }
      if (signal.aborted) return;
      state.agents = agents;
      $('agents-updated').textContent = `updated ${clock(Date.now())}`;
      showAgents();
    } catch (error) {
      if (failed(error, signal)) return;
    }
    await sleep(Math.max(AGENTS_MIN_MS, pages * 1000), signal);
  }
}

const PRESENCES = [
  ['available', 'Available'], ['away', 'Away'],
  ['not_responding', 'Not responding'], ['offline', 'Offline'],
];

function showAgents() {
  const agents = state.agents;
  const byPresence = new Map(PRESENCES.map(([p]) => [p, 0]));
  const teams = new Map();
  // Load: people's conversations over the places of people not offline
  // (bots, with hundreds of places each, would hide it; their teams show).
  let humans = 0, load = 0, capacity = 0;
  for (const a of agents) {
    byPresence.set(a.presence, (byPresence.get(a.presence) || 0) + 1);
    const name = a.team || '(no team)';
    let team = teams.get(name);
    if (!team) teams.set(name, team = {name, agents: 0, available: 0, load: 0, capacity: 0});
    team.agents++;
    team.load += a.total_load;
    if (a.presence === 'available') team.available++;
    if (a.presence !== 'offline') team.capacity += a.capacity.total;
    if (a.kind !== 'human') continue;
    humans++;
    load += a.total_load;
    if (a.presence !== 'offline') capacity += a.capacity.total;
  }
  $('stat-agents-sub').textContent =
    `${fmt(byPresence.get('available'))} available · ${fmt(agents.length - humans)} bots`;
  $('stat-load').textContent = capacity ? `${Math.round((100 * load) / capacity)}%` : '–';
  $('stat-load-sub').textContent = `${fmt(load)} held of ${fmt(capacity)} places`;

  $('presence-chips').replaceChildren(...PRESENCES.map(([p, label]) => {
    const chip = el('button', {type: 'button', className: `chip presence-${p}`},
      el('span', {className: 'dot'}), label, el('strong', null, fmt(byPresence.get(p) || 0)));
    chip.dataset.presence = p;
    chip.addEventListener('click', () => { $('agent-presence').value = p; state.agentPage = 0; showAgentPage(); });
    return chip;
  }));

  const rows = [...teams.values()].sort((a, b) => a.name.localeCompare(b.name));
  $('teams').tBodies[0].replaceChildren(...rows.map((t) => el('tr', null,
    el('td', null, t.name),
    el('td', {className: 'num'}, fmt(t.agents)),
    el('td', {className: 'num'}, fmt(t.available)),
    el('td', {className: 'num'}, `${fmt(t.load)} / ${fmt(t.capacity)}`),
    el('td', {className: 'bar-col'}, bar(t.load, t.capacity)),
  )));
  showAgentPage();
}

function filteredAgents() {
  const query = $('agent-search').value.trim().toLowerCase();
  const presence = $('agent-presence').value;
  const kind = $('agent-kind').value;
  let list = state.agents.filter((a) =>
    (!presence || a.presence === presence) &&
    (!kind || a.kind === kind) &&
    (!query || a.id.toLowerCase().includes(query) ||
      (a.team || '').toLowerCase().includes(query) ||
      a.holding.some((c) => c.toLowerCase().includes(query))));
  const sort = $('agent-sort').value;
  if (sort === 'load') {
    const ratio = (a) => (a.capacity.total ? a.total_load / a.capacity.total : 0);
    list = list.slice().sort((a, b) => ratio(b) - ratio(a) || b.total_load - a.total_load);
  } else if (sort === 'missed') {
    list = list.slice().sort((a, b) => b.missed_offers - a.missed_offers);
  }
  return list;
}

function channelLoads(agent) {
  return Object.entries(agent.load).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${n}`).join(' · ');
}

function showAgentPage() {
  const list = filteredAgents();
  const pages = Math.max(1, Math.ceil(list.length / AGENT_PAGE));
  state.agentPage = Math.min(state.agentPage, pages - 1);
  const first = state.agentPage * AGENT_PAGE;
  const page = list.slice(first, first + AGENT_PAGE);
  $('agents').tBodies[0].replaceChildren(...page.map((a) => {
    const shown = a.holding.slice(0, 3).join(', ');
    const more = a.holding.length > 3 ? ` +${a.holding.length - 3}` : '';
    const conversations = el('td', {className: 'ids', title: a.holding.join(', ')}, shown + more);
    return el('tr', null,
      el('td', {className: 'ids'}, a.id, a.kind === 'bot' ? el('span', {className: 'tag'}, 'bot') : null),
      el('td', null, a.team || ''),
      el('td', null, el('span', {className: `presence presence-${a.presence}`},
        el('span', {className: 'dot'}), a.presence.replace('_', ' '))),
      el('td', {className: 'load', title: channelLoads(a)},
        bar(a.total_load, a.capacity.total), ` ${a.total_load} / ${a.capacity.total}`),
      conversations,
      el('td', {className: 'num'}, a.missed_offers || ''),
    );
  }));
  $('agents-range').textContent = list.length
    ? `${fmt(first + 1)}–${fmt(first + page.length)} of ${fmt(list.length)}`
    : 'no agent matches';
  $('agents-prev').disabled = state.agentPage === 0;
  $('agents-next').disabled = state.agentPage >= pages - 1;
}

// ---------------------------------------------------------------- events

/// Follows /v1/events from state.lastSeq + 1, reconnecting with the last
/// seq seen (so nothing is missed or repeated) after a pause that doubles
/// up to RECONNECT_MAX_MS.
async function follow(signal) {
  let backoff = 1000;
  while (!signal.aborted) {
    try {
      const response = await fetch(`/v1/events?from=${state.lastSeq + 1}`, {
        headers: {Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream'},
        signal,
        cache: 'no-store',
      });
      if (response.status === 401) throw new Unauthorized();
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setStatus('live', 'live');
      backoff = 1000;
      await readStream(response.body, signal);
      if (signal.aborted) return;
      setStatus('down', 'stream ended, reconnecting');
    } catch (error) {
      if (failed(error, signal)) return;
      setStatus('down', `disconnected, retrying in ${Math.round(backoff / 1000)} s`);
    }
    await sleep(backoff, signal);
    backoff = Math.min(RECONNECT_MAX_MS, backoff * 2);
  }
}

/// Parses Server-Sent Events (id, event, data fields; comments ignored).
async function readStream(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let message = {id: null, event: 'message', data: []};
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done || signal.aborted) return;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          if (message.data.length) dispatch(message);
          message = {id: null, event: 'message', data: []};
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') message.data.push(val);
        else if (field === 'id') message.id = val;
        else if (field === 'event') message.event = val;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function dispatch(message) {
  let data;
  try {
    data = JSON.parse(message.data.join('\n'));
  } catch {
    return;
  }
  if (message.event === 'gap') {
    data = {type: 'gap', seq: data.oldest - 1, from: data.from, oldest: data.oldest};
  } else if (typeof data.seq !== 'number' || data.seq <= state.lastSeq) {
    return;
  } else {
    state.lastSeq = data.seq;
    if (data.seq > state.liveFrom) {
      const second = Math.floor(Date.now() / 1000);
      state.perSecond.set(second, (state.perSecond.get(second) || 0) + 1);
    }
  }
  // Both lists are trimmed when twice their size: amortised O(1) an event.
  state.events.push(data);
  if (state.events.length >= 2 * KEPT_EVENTS) state.events = state.events.slice(-KEPT_EVENTS);
  state.pendingRows.push(data);
  if (state.pendingRows.length >= 2 * MAX_EVENT_ROWS) state.pendingRows = state.pendingRows.slice(-MAX_EVENT_ROWS);
  if (state.paused) state.unseen++;
  slaSeen(data);
  scheduleRender();
  refreshSoon();
}

const FILTERS = {
  waiting: (e) => e.type === 'queued' || e.why !== undefined,
  assigned: (e) => e.type === 'assigned' || e.type.startsWith('offer'),
  escalated: (e) => e.type === 'escalated' || e.type === 'overflow_step',
  closed: (e) => ['closed', 'released', 'erased'].includes(e.type),
  sla: (e) => e.type === 'sla_warning' || e.type === 'sla_breached',
};

function matches(event) {
  const filter = FILTERS[$('event-filter').value];
  return !filter || event.type === 'gap' || filter(event);
}

function eventDetails(e) {
  const parts = [];
  if (e.reason) parts.push(e.reason.replaceAll('_', ' '));
  if (e.trigger) parts.push(e.trigger.replaceAll('_', ' '));
  if (e.strategy) parts.push(e.strategy.replaceAll('_', ' '));
  if (e.step !== undefined) parts.push(`step ${e.step}`);
  if (e.position !== undefined) parts.push(`#${e.position + 1} in line`);
  if (e.priority !== undefined) parts.push(`priority ${e.priority}`);
  if (e.waited_ms) parts.push(`waited ${duration(e.waited_ms)}`);
  if (e.skill_name) parts.push(e.skill_name);
  if (e.clock) parts.push(`${e.clock.replaceAll('_', ' ')}, target ${span(e.target_ms)}`);
  const cell = el('td', {className: 'details'}, parts.join(' · '));
  if (e.why) {
    const why = el('span', {className: 'why'}, e.why.message || e.why.code);
    why.title = `why: ${e.why.code}`;
    cell.append(why);
  }
  return cell;
}

function eventRow(e, fresh) {
  if (e.type === 'gap') {
    return el('tr', {className: 'gap'}, el('td', {colSpan: 6},
      `Events ${fmt(e.from)}–${fmt(e.oldest - 1)} are no longer kept by the server.`));
  }
  const type = el('span', {className: `type type-${e.type}`}, e.type.replaceAll('_', ' '));
  const row = el('tr', null,
    el('td', {className: 'num seq'}, e.seq),
    el('td', {className: 'time'}, clock(e.at)),
    el('td', null, type),
    el('td', {className: 'ids'}, e.conversation || ''),
    el('td', {className: 'ids'}, e.agent || ''),
    eventDetails(e),
  );
  if (fresh) row.classList.add('fresh');
  return row;
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued || state.paused) return;
  renderQueued = true;
  // At most a few redraws a second, however fast events come.
  setTimeout(() => requestAnimationFrame(renderEvents), 200);
}

/// Puts the pending events on top of the list, newest first, and trims it
/// to MAX_EVENT_ROWS rows.
function renderEvents() {
  renderQueued = false;
  const body = $('events').tBodies[0];
  const fresh = state.pendingRows.slice(-MAX_EVENT_ROWS).filter(matches);
  state.pendingRows = [];
  if (fresh.length) {
    const rows = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0 && rows.childNodes.length < MAX_EVENT_ROWS; i--) {
      rows.append(eventRow(fresh[i], body.rows.length > 0));
    }
    body.prepend(rows);
    while (body.rows.length > MAX_EVENT_ROWS) body.lastElementChild.remove();
  }
  showEventCounts();
}

/// Redraws the whole list from the kept events (a filter changed).
function redrawEvents() {
  const shown = state.events.slice(-KEPT_EVENTS).filter(matches).slice(-MAX_EVENT_ROWS).reverse();
  $('events').tBodies[0].replaceChildren(...shown.map((e) => eventRow(e, false)));
  state.pendingRows = [];
  showEventCounts();
}

function showEventCounts() {
  const rows = $('events').tBodies[0].rows.length;
  $('events-empty').hidden = rows > 0;
  $('events-count').textContent = rows ? `newest ${fmt(rows)} shown` : '';
  const now = Math.floor(Date.now() / 1000);
  let minute = 0;
  for (const [second, n] of state.perSecond) {
    if (second <= now - 60) state.perSecond.delete(second);
    else minute += n;
  }
  $('stat-rate').textContent = `${fmt(minute)} in the last minute`;
  $('events-pause').textContent = state.paused
    ? (state.unseen ? `Resume (${fmt(state.unseen)} new)` : 'Resume')
    : 'Pause';
}

// ---------------------------------------------------------------- wiring

function init() {
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    if (token) signIn(token);
  });
  $('signout').addEventListener('click', () => signOut(null));
  for (const id of ['agent-presence', 'agent-kind', 'agent-sort']) {
    $(id).addEventListener('change', () => { state.agentPage = 0; showAgentPage(); });
  }
  $('agent-search').addEventListener('input', () => { state.agentPage = 0; showAgentPage(); });
  $('agent-filters').addEventListener('submit', (event) => event.preventDefault());
  $('agents-prev').addEventListener('click', () => { state.agentPage--; showAgentPage(); });
  $('agents-next').addEventListener('click', () => { state.agentPage++; showAgentPage(); });
  $('event-filter').addEventListener('change', redrawEvents);
  $('events-pause').addEventListener('click', () => {
    state.paused = !state.paused;
    state.unseen = 0;
    if (!state.paused) scheduleRender();
    showEventCounts();
  });
  setInterval(showEventCounts, 5000);
  setInterval(showSla, 5000);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
}

// After reports.js, which is served after this file, has run.
document.addEventListener('DOMContentLoaded', init);
