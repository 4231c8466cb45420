// streamqc dashboard: follows /api/live (Server-Sent Events: a snapshot,
// then events at once and coalesced deltas), renders only what changed.
// No framework, no build step; every text goes in with textContent.
"use strict";
(function () {
  const DEFECTS = ["black", "freeze", "blockiness", "silence", "clipping", "loudness", "av_sync",
    "signal_loss", "decode_error", "tr101290", "detail_loss"];
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const agents = new Map();   // key -> {view, row}
  const tiles = new Map();    // key -> {view, el, parts}
  const seen = new Set();     // event ids in the timeline
  const stats = { snapshotMs: 0, deltas: 0, deltaMs: 0, deltaMaxMs: 0, events: 0, latency: [] };
  window.sqc = { stats, tiles, agents };
  let pending = [];           // stream views to render on the next frame
  let frameAsked = false;
  let nextCursor = "";
  let loadSeq = 0;

  // --- agents -------------------------------------------------------------
  function fmtAge(iso) {
    if (!iso) return "-";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 90 ? s + " s ago" : Math.round(s / 60) + " min ago";
  }
  function renderAgent(v) {
    let a = agents.get(v.key);
    if (!a) {
      const row = el("tr");
      for (let i = 0; i < 9; i++) row.appendChild(el("td"));
      a = { row };
      agents.set(v.key, a);
      const body = $("agents").tBodies[0];
      const after = [...agents.keys()].sort().indexOf(v.key);
      body.insertBefore(row, body.rows[after] || null);
      addOption($("f-agent"), v.agent);
    }
    a.view = v;
    const c = a.row.cells;
    c[0].textContent = v.key;
    c[1].textContent = v.state + (v.state === "offline" && v.reason ? " (" + v.reason + ")" : "");
    c[1].className = "state-" + v.state;
    c[2].textContent = v.version || "-";
    c[3].textContent = v.running + "/" + v.streams;
    c[4].textContent = v.alarms;
    c[4].className = v.alarms > 0 ? "bad" : "";
    c[5].textContent = v.cpu.toFixed(1);
    c[6].textContent = (v.rss / 1048576).toFixed(0);
    c[7].textContent = v.spool + (v.dropped ? " (" + v.dropped + " dropped)" : "");
    c[7].className = v.spool > 0 ? "warn" : "";
    c[8].textContent = fmtAge(v.metrics_time);
    c[8].dataset.time = v.metrics_time || "";
  }

  // --- mosaic -------------------------------------------------------------
  function newTile(v) {
    const t = el("div", "tile");
    t.dataset.key = v.key;
    const pic = el("div", "pic");
    const img = el("img");
    img.alt = "";
    img.loading = "lazy";
    img.decoding = "async";
    img.hidden = true;
    const none = el("span", "nopic", "no picture");
    pic.append(img, none);
    const name = el("div", "name", v.stream);
    const where = el("div", "where muted", v.fleet + "/" + v.agent);
    const info = el("div", "info");
    const badges = el("div", "badges");
    t.append(pic, name, where, info, badges);
    const parts = { img, none, info, badges };
    tiles.set(v.key, { el: t, parts, view: null, text: (v.agent + "/" + v.stream).toLowerCase() });
    addOption($("f-stream"), v.stream);
    applyTileFilter(tiles.get(v.key));
    return t;
  }
  function renderTile(v) {
    let t = tiles.get(v.key);
    if (!t) {
      const node = newTile(v);
      $("mosaic").appendChild(node);
      t = tiles.get(v.key);
    }
    const old = t.view || {};
    t.view = v;
    const p = t.parts;
    const alarmed = v.alarms.length > 0;
    t.el.classList.toggle("alarm", alarmed);
    t.el.classList.toggle("offline", !!v.offline);
    const info = (v.offline ? "agent offline · " : "") + v.state +
      (v.fps ? " · " + v.fps.toFixed(1) + " fps" : "") + (v.decoder ? " · " + v.decoder : "") +
      (v.error ? " · " + v.error : "");
    if (p.info.textContent !== info) p.info.textContent = info;
    const b = v.alarms.map((a) => a.key).join(" ");
    if (b !== (old.alarms || []).map((a) => a.key).join(" ")) {
      p.badges.replaceChildren(...v.alarms.map((a) => {
        const badge = el("span", "badge", a.defect);
        badge.title = a.defect + (a.reason ? ": " + a.reason : "") + (a.since ? " since " + fmtTime(a.since) : "");
        return badge;
      }));
    }
    if (v.thumb !== old.thumb) {
      if (v.thumb) {
        p.img.src = "/api/thumbnails/" + encodeURIComponent(v.thumb);
        p.img.hidden = false;
        p.none.hidden = true;
      } else {
        p.img.removeAttribute("src");
        p.img.hidden = true;
        p.none.hidden = false;
      }
    }
    p.img.classList.toggle("live", v.thumb_kind === "live");
    applyTileFilter(t);
  }
  function removeTile(key) {
    const t = tiles.get(key);
    if (t) {
      t.el.remove();
      tiles.delete(key);
    }
  }
  function applyTileFilter(t) {
    const f = $("tile-filter").value.trim().toLowerCase();
    t.el.hidden = f !== "" && !t.text.includes(f);
  }
  function countTiles() {
    let shown = 0;
    let alarms = 0;
    const only = $("only-alarms").checked;
    for (const t of tiles.values()) {
      const a = t.view && t.view.alarms.length > 0;
      if (a) alarms += t.view.alarms.length;
      if (!t.el.hidden && (!only || a)) shown++;
    }
    $("tiles-shown").textContent = shown + " shown";
    $("n-streams").textContent = tiles.size;
    $("n-alarms").textContent = alarms;
    $("summary").classList.toggle("has-alarms", alarms > 0);
    let online = 0;
    for (const a of agents.values()) if (a.view.state === "online") online++;
    $("n-agents").textContent = agents.size;
    $("n-online").textContent = online;
  }
  function queueStreams(list) {
    pending.push(...list);
    if (!frameAsked) {
      frameAsked = true;
      requestAnimationFrame(flushStreams);
    }
  }
  function flushStreams() {
    frameAsked = false;
    const t0 = performance.now();
    const list = pending;
    pending = [];
    for (const v of list) renderTile(v);
    countTiles();
    const ms = performance.now() - t0;
    stats.deltaMs = ms;
    stats.deltaMaxMs = Math.max(stats.deltaMaxMs, ms);
  }

  // --- timeline -----------------------------------------------------------
  function addOption(sel, value) {
    if (!value || [...sel.options].some((o) => o.value === value)) return;
    const opts = [...sel.options].slice(1).map((o) => o.value);
    opts.push(value);
    opts.sort();
    const o = el("option", "", value);
    o.value = value;
    sel.insertBefore(o, sel.options[1 + opts.indexOf(value)] || null);
  }
  function filters() {
    return { agent: $("f-agent").value, stream: $("f-stream").value, defect: $("f-defect").value, state: $("f-state").value };
  }
  function matches(e, f) {
    return (!f.agent || e.agent === f.agent) && (!f.stream || e.stream === f.stream) &&
      (!f.defect || e.defect === f.defect) && (!f.state || e.state === f.state);
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso || "";
    const p = (n, w) => String(n).padStart(w || 2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3);
  }
  function eventRow(e) {
    const r = el("tr", "ev " + e.state);
    r.dataset.id = e.id;
    r.dataset.defect = e.defect;
    r.dataset.stream = e.stream;
    r.dataset.agent = e.agent;
    r.dataset.time = e.time;
    const when = el("td", "when", fmtTime(e.time));
    when.title = e.time;
    const detail = "at " + Number(e.start).toFixed(1) + " s" +
      (e.duration != null ? ", lasted " + Number(e.duration).toFixed(1) + " s" : "") +
      (e.cause && e.cause !== "recovered" ? " (" + e.cause + ")" : "") + (e.reason ? " · " + e.reason : "");
    const pic = el("td", "tl-pic");
    if (e.thumbnail) {
      const img = el("img");
      img.alt = "";
      img.loading = "lazy";
      img.src = "/api/thumbnails/" + encodeURIComponent(e.thumbnail);
      img.addEventListener("error", () => img.remove(), { once: true });
      pic.appendChild(img);
    }
    r.append(when, el("td", "", e.agent + "/" + e.stream), el("td", "st", e.state), el("td", "", e.defect), el("td", "detail muted", detail), pic);
    return r;
  }
  function addLive(e) {
    stats.events++;
    if (seen.has(e.id)) return;
    addOption($("f-agent"), e.agent);
    addOption($("f-stream"), e.stream);
    if (!matches(e, filters())) return;
    seen.add(e.id);
    const r = eventRow(e);
    r.classList.add("new");
    const body = $("timeline").tBodies[0];
    body.insertBefore(r, body.firstChild);
    $("tl-empty").hidden = true;
    while (body.rows.length > 500) {
      const last = body.lastChild;
      seen.delete(last.dataset.id);
      last.remove();
      $("older").hidden = false;
    }
    // Shown: the frame that paints the row (the next animation frame).
    requestAnimationFrame(() => {
      const now = Date.now();
      r.dataset.shown = String(now);
      const agentMs = now - Date.parse(e.time);
      const entry = { id: e.id, agentMs, serverMs: e.recv ? now - e.recv : null };
      stats.latency.push(entry);
      if (stats.latency.length > 1000) stats.latency.shift();
      $("latency").textContent = "last event on this page " + agentMs + " ms after its agent's time";
    });
  }
  async function loadTimeline(more) {
    const seq = ++loadSeq;
    const f = filters();
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
    q.set("limit", "100");
    if (more && nextCursor) q.set("before", nextCursor);
    let page;
    try {
      const res = await fetch("/api/events?" + q.toString(), { cache: "no-store" });
      if (!res.ok) throw new Error(res.status + " " + res.statusText);
      page = await res.json();
    } catch (err) {
      $("tl-empty").textContent = "timeline unavailable: " + err.message;
      $("tl-empty").hidden = false;
      return;
    }
    if (seq !== loadSeq) return; // a newer filter won
    const body = $("timeline").tBodies[0];
    if (!more) {
      body.replaceChildren();
      seen.clear();
    }
    const frag = document.createDocumentFragment();
    for (const e of page.events) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      addOption($("f-agent"), e.agent);
      addOption($("f-stream"), e.stream);
      frag.appendChild(eventRow(e));
    }
    body.appendChild(frag);
    nextCursor = page.next || "";
    $("older").hidden = !nextCursor;
    $("tl-empty").textContent = "no events";
    $("tl-empty").hidden = body.rows.length > 0;
    $("timeline").dataset.loaded = String(seq);
  }

  // --- live ---------------------------------------------------------------
  function connect() {
    const es = new EventSource("/api/live");
    es.addEventListener("open", () => {
      $("conn").textContent = "live";
      $("conn").className = "on";
    });
    es.addEventListener("error", () => {
      $("conn").textContent = "reconnecting";
      $("conn").className = "off";
    });
    es.addEventListener("snapshot", (m) => {
      const t0 = performance.now();
      const sn = JSON.parse(m.data);
      const keep = new Set(sn.streams.map((s) => s.key));
      for (const k of [...tiles.keys()]) if (!keep.has(k)) removeTile(k);
      for (const a of sn.agents) renderAgent(a);
      const frag = document.createDocumentFragment();
      for (const v of sn.streams) {
        if (!tiles.has(v.key)) frag.appendChild(newTile(v));
      }
      $("mosaic").appendChild(frag);
      for (const v of sn.streams) renderTile(v);
      countTiles();
      stats.snapshotMs = performance.now() - t0;
      stats.snapshotAt = Date.now();
      document.body.dataset.ready = "1";
      loadTimeline(false); // what happened while away
    });
    es.addEventListener("delta", (m) => {
      const d = JSON.parse(m.data);
      stats.deltas++;
      if (d.agents) for (const a of d.agents) renderAgent(a);
      if (d.removed) for (const k of d.removed) removeTile(k);
      if (d.streams) queueStreams(d.streams);
      else countTiles();
    });
    es.addEventListener("event", (m) => addLive(JSON.parse(m.data)));
  }

  function init() {
    for (const d of DEFECTS) addOption($("f-defect"), d);
    $("filters").addEventListener("change", () => loadTimeline(false));
    $("filters").addEventListener("submit", (ev) => ev.preventDefault());
    $("older").addEventListener("click", () => loadTimeline(true));
    $("tile-filter").addEventListener("input", () => {
      for (const t of tiles.values()) applyTileFilter(t);
      countTiles();
    });
    $("only-alarms").addEventListener("change", () => {
      $("mosaic").classList.toggle("only-alarms", $("only-alarms").checked);
      countTiles();
    });
    setInterval(() => {
      for (const a of agents.values()) a.row.cells[8].textContent = fmtAge(a.view.metrics_time);
    }, 5000);
    connect();
  }
  init();
})();
