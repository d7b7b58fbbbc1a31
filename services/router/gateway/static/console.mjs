// Dynamolog console: Preact + htm (no build step) and uPlot, all vendored (decision 0037).
import { html, render, useState, useEffect, useRef } from "./vendor/preact-htm-3.1.1.mjs";
import uPlot from "./vendor/uPlot-1.6.32.esm.js";

async function api(method, path, body) {
  const r = await fetch(path, { method, credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const e = new Error((data && data.message) || r.statusText);
    e.status = r.status; e.type = data && data.error;
    throw e;
  }
  return data;
}
const op = (name, params) => api("POST", `/console/api/op/${name}`, params);

// DynamoDB typed values <-> plain JSON, as the document clients map them
function plain(v) {
  if ("S" in v) return v.S;
  if ("N" in v) { const n = Number(v.N); return Number.isSafeInteger(n) || !/^-?\d+$/.test(v.N) ? n : v.N; }
  if ("BOOL" in v) return v.BOOL;
  if ("NULL" in v) return null;
  if ("B" in v) return v.B;
  if ("L" in v) return v.L.map(plain);
  if ("M" in v) return Object.fromEntries(Object.entries(v.M).map(([k, x]) => [k, plain(x)]));
  if ("SS" in v) return v.SS; if ("NS" in v) return v.NS.map(Number); if ("BS" in v) return v.BS;
  return v;
}
const plainItem = (it) => Object.fromEntries(Object.entries(it).map(([k, v]) => [k, plain(v)]));
function typedScalar(text, type) {
  if (type === "N" || (type === undefined && text.trim() !== "" && !isNaN(Number(text)))) return { N: String(text) };
  if (type === "B") return { B: text };
  return { S: text };
}
const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));
function Sel({ id, value, onChange, options }) {
  return html`<select id=${id} onChange=${onChange}>${options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return html`<option value=${v} selected=${v === value}>${label}</option>`; })}</select>`;
}

function SignIn({ onDone }) {
  const [key, setKey] = useState(""); const [secret, setSecret] = useState(""); const [err, setErr] = useState("");
  const submit = async (e) => {
    e.preventDefault(); setErr("");
    try { await api("POST", "/v1/session", { accessKeyId: key, secretAccessKey: secret }); onDone(); }
    catch (x) { setErr(x.message); }
  };
  return html`<div class="card signin"><h2>Sign in to Dynamolog</h2>
    <p class="muted">With an access key: the administrator's is in &lt;data-dir&gt;/credentials.env; more with <code>dynamolog keys create</code>.</p>
    <form onSubmit=${submit}>
      <input id="access-key" placeholder="Access key id" value=${key} onInput=${(e) => setKey(e.target.value)} />
      <input id="secret-key" type="password" placeholder="Secret access key" value=${secret} onInput=${(e) => setSecret(e.target.value)} />
      <button id="sign-in" class="act" type="submit">Sign in</button>
      ${err && html`<div class="err" id="sign-in-error">${err}</div>`}
    </form></div>`;
}

function CreateTable({ onMade }) {
  const [f, setF] = useState({ name: "", pk: "pk", pkt: "S", sk: "", skt: "S", billing: "PAY_PER_REQUEST", rcu: 5, wcu: 5 });
  const [err, setErr] = useState("");
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault(); setErr("");
    const keys = [{ AttributeName: f.pk, KeyType: "HASH" }], defs = [{ AttributeName: f.pk, AttributeType: f.pkt }];
    if (f.sk) { keys.push({ AttributeName: f.sk, KeyType: "RANGE" }); defs.push({ AttributeName: f.sk, AttributeType: f.skt }); }
    const p = { TableName: f.name, KeySchema: keys, AttributeDefinitions: defs, BillingMode: f.billing };
    if (f.billing === "PROVISIONED") p.ProvisionedThroughput = { ReadCapacityUnits: +f.rcu, WriteCapacityUnits: +f.wcu };
    try { await op("CreateTable", p); onMade(f.name); } catch (x) { setErr(x.message); }
  };
  const T = (k) => html`<${Sel} value=${f[k]} onChange=${set(k)} options=${["S", "N", "B"]} />`;
  return html`<form class="row" id="create-table" onSubmit=${submit}>
    <input id="new-table-name" placeholder="table name" value=${f.name} onInput=${set("name")} />
    <input placeholder="partition key" value=${f.pk} onInput=${set("pk")} />${T("pkt")}
    <input placeholder="sort key (optional)" value=${f.sk} onInput=${set("sk")} />${T("skt")}
    <${Sel} value=${f.billing} onChange=${set("billing")} options=${["PAY_PER_REQUEST", "PROVISIONED"]} />
    ${f.billing === "PROVISIONED" && html`RCU <input size="4" value=${f.rcu} onInput=${set("rcu")} /> WCU <input size="4" value=${f.wcu} onInput=${set("wcu")} />`}
    <button class="act" type="submit">Create table</button>${err && html`<span class="err">${err}</span>`}</form>`;
}

function CreateIndex({ table, onMade }) {
  const [f, setF] = useState({ name: "", pk: "", pkt: "S", sk: "", skt: "S" }); const [err, setErr] = useState("");
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault(); setErr("");
    const keys = [{ AttributeName: f.pk, KeyType: "HASH" }], defs = [{ AttributeName: f.pk, AttributeType: f.pkt }];
    if (f.sk) { keys.push({ AttributeName: f.sk, KeyType: "RANGE" }); defs.push({ AttributeName: f.sk, AttributeType: f.skt }); }
    const create = { IndexName: f.name, KeySchema: keys, Projection: { ProjectionType: "ALL" } };
    if (table.BillingModeSummary?.BillingMode !== "PAY_PER_REQUEST" && table.ProvisionedThroughput?.ReadCapacityUnits)
      create.ProvisionedThroughput = { ReadCapacityUnits: table.ProvisionedThroughput.ReadCapacityUnits, WriteCapacityUnits: table.ProvisionedThroughput.WriteCapacityUnits };
    try { await op("UpdateTable", { TableName: table.TableName, AttributeDefinitions: defs, GlobalSecondaryIndexUpdates: [{ Create: create }] }); onMade(); }
    catch (x) { setErr(x.message); }
  };
  const T = (k) => html`<${Sel} value=${f[k]} onChange=${set(k)} options=${["S", "N", "B"]} />`;
  return html`<form class="row" id="create-index" onSubmit=${submit}>
    <input id="new-index-name" placeholder="index name" value=${f.name} onInput=${set("name")} />
    <input id="new-index-pk" placeholder="partition key" value=${f.pk} onInput=${set("pk")} />${T("pkt")}
    <input placeholder="sort key (optional)" value=${f.sk} onInput=${set("sk")} />${T("skt")}
    <button class="act" type="submit">Create GSI</button>${err && html`<span class="err">${err}</span>`}</form>`;
}

function keyNames(table, index) {
  let ks = table.KeySchema;
  const all = [...(table.GlobalSecondaryIndexes || []), ...(table.LocalSecondaryIndexes || [])];
  const ix = all.find((i) => i.IndexName === index);
  if (ix) ks = ix.KeySchema;
  return { pk: ks.find((k) => k.KeyType === "HASH").AttributeName, sk: ks.find((k) => k.KeyType === "RANGE")?.AttributeName };
}

function Items({ table }) {
  const types = Object.fromEntries(table.AttributeDefinitions.map((a) => [a.AttributeName, a.AttributeType]));
  const base = keyNames(table, "");
  const [q, setQ] = useState({ mode: "scan", index: "", pk: "", skop: "=", sk: "", sk2: "", fattr: "", fop: "=", fval: "", limit: 25 });
  const [page, setPage] = useState(null); const [starts, setStarts] = useState([]); const [err, setErr] = useState("");
  const [edit, setEdit] = useState(null);
  const set = (k) => (e) => setQ({ ...q, [k]: e.target.value });
  const run = async (start, history) => {
    setErr("");
    const names = {}, vals = {}; const p = { TableName: table.TableName, Limit: +q.limit || 25 };
    if (q.index) p.IndexName = q.index;
    if (start) p.ExclusiveStartKey = start;
    const { pk, sk } = keyNames(table, q.index);
    if (q.mode === "query") {
      names["#pk"] = pk; vals[":pk"] = typedScalar(q.pk, types[pk]); let kc = "#pk = :pk";
      if (sk && q.sk !== "") {
        names["#sk"] = sk; vals[":sk"] = typedScalar(q.sk, types[sk]);
        if (q.skop === "begins_with") kc += " AND begins_with(#sk, :sk)";
        else if (q.skop === "between") { vals[":sk2"] = typedScalar(q.sk2, types[sk]); kc += " AND #sk BETWEEN :sk AND :sk2"; }
        else kc += ` AND #sk ${q.skop} :sk`;
      }
      p.KeyConditionExpression = kc;
    }
    if (q.fattr) {
      names["#f"] = q.fattr;
      if (q.fop === "exists") p.FilterExpression = "attribute_exists(#f)";
      else if (q.fop === "contains") { vals[":f"] = typedScalar(q.fval); p.FilterExpression = "contains(#f, :f)"; }
      else { vals[":f"] = typedScalar(q.fval); p.FilterExpression = `#f ${q.fop} :f`; }
    }
    if (Object.keys(names).length) p.ExpressionAttributeNames = names;
    if (Object.keys(vals).length) p.ExpressionAttributeValues = vals;
    try { const out = await op(q.mode === "query" ? "Query" : "Scan", p); setPage(out); setStarts(history); }
    catch (x) { setErr(x.message); }
  };
  useEffect(() => { setPage(null); run(null, []); }, [table.TableName]);
  const items = (page?.Items || []).map(plainItem);
  const cols = [...new Set([base.pk, base.sk, ...items.flatMap((i) => Object.keys(i))].filter(Boolean))].slice(0, 12);
  const keyOf = (it) => { const k = { [base.pk]: typedScalar(String(it[base.pk]), types[base.pk]) };
    if (base.sk) k[base.sk] = typedScalar(String(it[base.sk]), types[base.sk]); return k; };
  const del = async (it) => { if (!confirm("Delete this item?")) return;
    try { await op("DeleteItem", { TableName: table.TableName, Key: keyOf(it) }); run(starts[starts.length - 1] || null, starts); } catch (x) { setErr(x.message); } };
  const save = async () => {
    setErr("");
    try {
      const it = JSON.parse(edit.text);
      const path = [it[base.pk], base.sk ? it[base.sk] : undefined].filter((x) => x !== undefined)
        .map((x) => encodeURIComponent(String(x))).join("/");
      await api("PUT", `/v1/tables/${encodeURIComponent(table.TableName)}/items/${path}`, it);
      setEdit(null); run(starts[starts.length - 1] || null, starts);
    } catch (x) { setErr(x.message); }
  };
  const indexes = [...(table.GlobalSecondaryIndexes || []), ...(table.LocalSecondaryIndexes || [])].map((i) => i.IndexName);
  const cur = keyNames(table, q.index);
  return html`<div class="card" id="item-browser"><h2>Items</h2>
    <div class="row">
      <${Sel} id="mode" value=${q.mode} onChange=${set("mode")} options=${[["scan", "Scan"], ["query", "Query"]]} />
      <${Sel} id="index" value=${q.index} onChange=${set("index")} options=${[["", "table"], ...indexes]} />
      ${q.mode === "query" && html`<span>${cur.pk} =</span><input id="pk-value" value=${q.pk} onInput=${set("pk")} />
        ${cur.sk && html`<span>${cur.sk}</span><${Sel} value=${q.skop} onChange=${set("skop")} options=${["=", "<", "<=", ">", ">=", "begins_with", "between"]} />
        <input id="sk-value" value=${q.sk} onInput=${set("sk")} />${q.skop === "between" && html`<input value=${q.sk2} onInput=${set("sk2")} />`}`}`}
      <span>filter</span><input id="filter-attr" size="10" placeholder="attribute" value=${q.fattr} onInput=${set("fattr")} />
      <${Sel} value=${q.fop} onChange=${set("fop")} options=${["=", "<>", "<", "<=", ">", ">=", "contains", "exists"]} />
      <input id="filter-value" size="10" placeholder="value" value=${q.fval} onInput=${set("fval")} />
      <span>limit</span><input size="3" value=${q.limit} onInput=${set("limit")} />
      <button id="run" class="act" onClick=${() => run(null, [])}>Run</button>
      <button id="new-item" class="lite" onClick=${() => setEdit({ text: JSON.stringify({ [base.pk]: "", ...(base.sk ? { [base.sk]: "" } : {}) }, null, 2) })}>New item</button>
    </div>
    ${err && html`<div class="err" id="items-error">${err}</div>`}
    ${edit && html`<div><textarea id="item-editor" value=${edit.text} onInput=${(e) => setEdit({ text: e.target.value })}></textarea>
      <div class="row"><button id="save-item" class="act" onClick=${save}>Save</button><button class="lite" onClick=${() => setEdit(null)}>Cancel</button>
      <span class="muted">plain JSON; numbers, strings, true/false, null, arrays and objects</span></div></div>`}
    <table class="grid" id="items"><thead><tr>${cols.map((c) => html`<th>${c}</th>`)}<th></th></tr></thead>
      <tbody>${items.map((it) => html`<tr>${cols.map((c) => html`<td class="v" title=${show(it[c])}>${it[c] === undefined ? "" : show(it[c])}</td>`)}
        <td><button class="lite edit" onClick=${() => setEdit({ text: JSON.stringify(it, null, 2) })}>Edit</button> <button class="lite delete" onClick=${() => del(it)}>Delete</button></td></tr>`)}</tbody></table>
    <div class="row"><span class="muted" id="page-info">${page ? `${page.Count} item(s) on this page, ${page.ScannedCount} read` : ""}</span>
      ${starts.length > 0 && html`<button class="lite" onClick=${() => run(null, [])}>First page</button>`}
      ${page?.LastEvaluatedKey && html`<button id="next-page" class="lite" onClick=${() => run(page.LastEvaluatedKey, [...starts, page.LastEvaluatedKey])}>Next page</button>`}</div>
  </div>`;
}

function Tables() {
  const [names, setNames] = useState([]); const [sel, setSel] = useState(null); const [desc, setDesc] = useState(null); const [err, setErr] = useState("");
  const load = async () => { try { setNames((await api("GET", "/v1/tables")).tables); } catch (x) { setErr(x.message); } };
  const describe = async (n) => { setSel(n); try { setDesc(await api("GET", `/v1/tables/${encodeURIComponent(n)}`)); } catch (x) { setErr(x.message); } };
  useEffect(() => { load(); }, []);
  const made = async (n) => { await load(); setTimeout(() => describe(n), 300); };
  return html`<div class="cols"><div class="card tables"><h2>Tables</h2>
      ${names.map((n) => html`<button class=${n === sel ? "on" : ""} onClick=${() => describe(n)}>${n}</button>`)}
      <button class="lite" onClick=${load}>Refresh</button>${err && html`<div class="err">${err}</div>`}</div>
    <div><div class="card"><h2>Create a table</h2><${CreateTable} onMade=${made} /></div>
      ${desc && html`<div class="card" id="table-detail"><h2>${desc.TableName} <span class="muted">${desc.TableStatus}, ${desc.ItemCount} items, ${desc.BillingModeSummary?.BillingMode || "PROVISIONED"}</span></h2>
        <div>Keys: ${desc.KeySchema.map((k) => `${k.AttributeName} (${k.KeyType})`).join(", ")}</div>
        <table class="grid"><thead><tr><th>index</th><th>kind</th><th>keys</th><th>status</th></tr></thead><tbody>
          ${(desc.GlobalSecondaryIndexes || []).map((i) => html`<tr><td>${i.IndexName}</td><td>global</td><td>${i.KeySchema.map((k) => k.AttributeName).join(", ")}</td><td>${i.IndexStatus}</td></tr>`)}
          ${(desc.LocalSecondaryIndexes || []).map((i) => html`<tr><td>${i.IndexName}</td><td>local</td><td>${i.KeySchema.map((k) => k.AttributeName).join(", ")}</td><td>ACTIVE</td></tr>`)}
        </tbody></table><${CreateIndex} table=${desc} onMade=${() => describe(desc.TableName)} /></div>
        <${Items} table=${desc} />`}</div></div>`;
}

// live plots: one per partition leader, fed by the server-sent snapshots
const WINDOW = 600; // points kept (5 minutes at 0.5 s)
function Plot({ title, series, data, id }) {
  const ref = useRef(null), chart = useRef(null);
  useEffect(() => {
    const right = series.some((x) => x.scale === "m");
    chart.current = new uPlot({ width: 440, height: 180, title, series: [{}, ...series.map((x) => ({ points: { show: false }, ...x }))],
      axes: [{}, { scale: "y" }, ...(right ? [{ scale: "m", side: 1, grid: { show: false } }] : [])],
      scales: { x: { time: true } } }, data, ref.current);
    return () => chart.current.destroy();
  }, []);
  useEffect(() => { chart.current && chart.current.setData(data); }, [data]);
  return html`<div class="plot" id=${id} data-points=${data[0].length} data-last=${JSON.stringify(data.map((s) => s[s.length - 1]))} ref=${ref}></div>`;
}

// figures whose series come and go (partitions, indexes, jobs): a series is added when first
// seen (its earlier points empty) and kept while the page is open
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
function track(store, id, t, pairs) {
  const h = store[id] ||= { labels: [], opts: [], rows: [[]] };
  if (h.rows[0].length && t <= h.rows[0][h.rows[0].length - 1]) return;
  const row = new Array(h.labels.length).fill(null);
  for (const [label, value, opts] of pairs) {
    let i = h.labels.indexOf(label);
    if (i < 0) { i = h.labels.push(label) - 1; h.opts.push(opts || {}); h.rows.push(new Array(h.rows[0].length).fill(null)); row.push(null); }
    row[i] = value ?? null;
  }
  [t, ...row].forEach((v, i) => { h.rows[i].push(v); if (h.rows[i].length > WINDOW) h.rows[i].shift(); });
}
function Tracked({ store, id, title }) {
  const h = store[id];
  if (!h || h.rows[0].length < 2) return null;
  const series = h.labels.map((label, i) => ({ label, stroke: PALETTE[i % PALETTE.length], width: 2, ...h.opts[i] }));
  return html`<${Plot} key=${id + "/" + h.labels.length} id=${id} title=${title} series=${series} data=${h.rows.map((r) => r.slice())} />`;
}
const stepped = uPlot.paths.stepped({ align: 1 }); // counts and capacities change in steps
const when = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");
const pct = (j) => (j.parts ? Math.round((100 * j.parts_done) / j.parts) : j.state === "IN_PROGRESS" ? 0 : 100);

function Figures({ snap, figs }) {
  const regions = snap.regions || { linked: [] };
  const jobs = snap.backups?.jobs || [];
  const byTable = (rows) => [...new Set(rows.map((r) => r.table))];
  return html`<div>
    <div class="card" id="splits"><h2>Partitions and splits <span class="muted">partitions serving each table and global index; every split with its step</span></h2>
      <div class="plots">${byTable(snap.splits || []).map((t) => html`<${Tracked} store=${figs} id=${"splits-" + t} title=${`${t}: partitions`} />`)}</div>
      ${(snap.split_events || []).length ? html`<table class="grid" id="split-events"><thead><tr><th>table</th><th>index</th><th>split partition</th><th>children</th><th>step</th></tr></thead><tbody>
        ${snap.split_events.map((e) => html`<tr><td>${e.table}</td><td>${e.index}</td><td>${e.parent}</td><td>${e.children.join(", ")}</td><td>${e.step}</td></tr>`)}</tbody></table>`
        : html`<div class="muted" id="split-events">no partition has been split</div>`}</div>
    <div class="card" id="adaptive"><h2>Adaptive capacity <span class="muted">each provisioned partition's multiplier of its even share (1: even)</span></h2>
      <div class="plots">${byTable(snap.adaptive || []).map((t) => html`<${Tracked} store=${figs} id=${"adaptive-" + t} title=${`${t}: multipliers`} />`)}</div>
      ${!(snap.adaptive || []).length && html`<div class="muted">no provisioned table</div>`}</div>
    <div class="card" id="scaling"><h2>Auto scaling <span class="muted">provisioned units of each scalable target, its bounds, and its latest activities</span></h2>
      <div class="plots">${(snap.scaling || []).map((g) => html`<${Tracked} store=${figs} id=${`scaling-${g.resource_id}-${g.kind}`} title=${`${g.resource_id} ${g.kind}`} />`)}</div>
      ${(snap.scaling || []).length ? html`<table class="grid" id="scaling-activities"><thead><tr><th>target</th><th>started</th><th>activity</th><th>status</th></tr></thead><tbody>
        ${snap.scaling.flatMap((g) => g.activities.map((a) => html`<tr><td>${g.resource_id} ${g.kind}</td><td>${when(a.start_ms)}</td><td title=${a.cause}>${a.description}</td><td class=${a.status === "Successful" ? "ok" : "bad"}>${a.status}${a.message ? `: ${a.message}` : ""}</td></tr>`))}</tbody></table>`
        : html`<div class="muted">no scalable target registered</div>`}</div>
    <div class="card" id="gsi-lag"><h2>Global index propagation <span class="muted">table-log records each index's indexer has not applied yet</span></h2>
      <div class="plots">${(snap.gsi_lag || []).map((g) => html`<${Tracked} store=${figs} id=${`gsi-lag-${g.table}-${g.index}`} title=${`${g.table} / ${g.index} (${g.status})`} />`)}</div>
      ${!(snap.gsi_lag || []).length && html`<div class="muted">no global secondary index</div>`}</div>
    <div class="card" id="regions"><h2>Streams and regions <span class="muted">the stream reader's (RepOut) records not read yet, RepIn's changes not applied yet and its write-to-applied milliseconds (right axis)</span></h2>
      ${regions.linked.length ? html`<div class="plots">${regions.linked.map((r) => html`<${Tracked} store=${figs} id=${"region-" + r} title=${`${snap.region} ⇄ ${r}`} />`)}</div>`
        : html`<div class="muted" id="no-regions">no linked region (dynamolog regions add): RepOut and RepIn idle. DynamoDB Streams are read from the committed partition logs, so a change is in its stream once acknowledged.</div>`}</div>
    <div class="card" id="backups"><h2>Backups and restores <span class="muted">partitions copied (backup) or loaded (restore) of all, running and in the last minutes</span></h2>
      ${snap.backups?.error && html`<div class="err">${snap.backups.error}</div>`}
      ${jobs.length ? html`<div class="plots"><${Tracked} store=${figs} id="backup-progress" title="progress, %" /></div>
        <table class="grid" id="backup-jobs"><thead><tr><th>job</th><th>table</th><th>started</th><th>progress</th><th>state</th></tr></thead><tbody>
        ${jobs.map((j) => html`<tr data-job=${j.job} data-progress=${pct(j)}><td>${j.kind}</td><td>${j.table}</td><td>${when(j.started_ms)}</td>
          <td><progress max="100" value=${pct(j)}></progress> ${j.parts_done}/${j.parts} partitions${j.items ? `, ${j.items} items` : ""}</td>
          <td class=${j.state === "FAILED" ? "bad" : j.state === "IN_PROGRESS" ? "" : "ok"}>${j.state}</td></tr>`)}</tbody></table>`
        : html`<div class="muted">${snap.backups?.service ? "no backup or restore in the last minutes" : "the backup service is not running"}</div>`}</div>
  </div>`;
}

function record(figs, s) {
  const t = s.time_ms / 1000;
  for (const table of new Set((s.splits || []).map((r) => r.table)))
    track(figs, "splits-" + table, t, s.splits.filter((r) => r.table === table).map((r) => [r.index ? `index ${r.index}` : "table", r.partitions, { paths: stepped }]));
  for (const table of new Set((s.adaptive || []).map((r) => r.table)))
    track(figs, "adaptive-" + table, t, s.adaptive.filter((r) => r.table === table).flatMap((r) =>
      [[`${r.partition} write`, r.write], [`${r.partition} read`, r.read, { dash: [6, 4] }]]));
  for (const g of s.scaling || [])
    track(figs, `scaling-${g.resource_id}-${g.kind}`, t, [["provisioned", g.capacity, { paths: stepped }], ["min", g.min, { dash: [4, 4], width: 1 }], ["max", g.max, { dash: [4, 4], width: 1 }]]);
  for (const g of s.gsi_lag || []) track(figs, `gsi-lag-${g.table}-${g.index}`, t, [["records behind", g.lag_records]]);
  for (const r of s.regions?.linked || []) {
    const out = s.regions.repout[r] || {}, inn = s.regions.repin[r] || {};
    track(figs, "region-" + r, t, [["stream reader lag", out.lag_records], ["RepIn lag", inn.lag_records],
      ["RepIn p50 ms", inn.lag_ms_p50, { scale: "m", dash: [6, 4] }], ["RepIn p99 ms", inn.lag_ms_p99, { scale: "m", dash: [2, 3] }]]);
  }
  if ((s.backups?.jobs || []).length) track(figs, "backup-progress", t, s.backups.jobs.map((j) => [`${j.kind} ${j.table}`, pct(j)]));
}

function System() {
  const [snap, setSnap] = useState(null); const [err, setErr] = useState(""); const hist = useRef({}); const figs = useRef({}); const [tick, setTick] = useState(0);
  useEffect(() => {
    const es = new EventSource("/console/api/events");
    es.addEventListener("system", (e) => {
      const s = JSON.parse(e.data); setErr("");
      const t = s.time_ms / 1000;
      for (const p of s.partitions) {
        const c = p.capacity; if (!c || !c.write) continue;
        const h = hist.current[p.partition_id] ||= { prev: null, rows: [[], [], [], [], [], [], []] };
        if (h.prev && t > h.prev.t) {
          const dt = t - h.prev.t;
          const od = c.mode === "on_demand"; // an on-demand ceiling would flatten the plot: not drawn
          const vals = [t, (c.write.consumed - h.prev.w) / dt, od ? null : c.write.rate, (c.read.consumed - h.prev.r) / dt, od ? null : c.read.rate,
            (c.write.throttled + c.read.throttled - h.prev.th) / dt, c.multiplier];
          vals.forEach((v, i) => { h.rows[i].push(v); if (h.rows[i].length > WINDOW) h.rows[i].shift(); });
        }
        h.prev = { t, w: c.write.consumed, r: c.read.consumed, th: c.write.throttled + c.read.throttled };
      }
      record(figs.current, s);
      setSnap(s); setTick((x) => x + 1);
    });
    es.onerror = () => setErr("live updates interrupted; reconnecting…");
    return () => es.close();
  }, []);
  if (!snap) return html`<div class="card">waiting for the first snapshot…</div>`;
  const svc = snap.services;
  const series = [
    { label: "write used/s", stroke: "#1f77b4", width: 2 }, { label: "write rate", stroke: "#1f77b4", dash: [6, 4] },
    { label: "read used/s", stroke: "#2ca02c", width: 2 }, { label: "read rate", stroke: "#2ca02c", dash: [6, 4] },
    { label: "throttled/s", stroke: "#d62728", width: 2 }, { label: "multiplier", stroke: "#9467bd", scale: "m" }];
  return html`<div>${err && html`<div class="err">${err}</div>`}
    <div class="card" id="services"><h2>Services</h2><table class="grid"><thead><tr><th>service</th><th>where</th><th>state</th></tr></thead><tbody>
      ${svc.storage.map((n) => html`<tr><td>storage ${n.node_id}</td><td>${n.address} zone ${n.zone || "-"} pid ${n.pid}</td>
        <td class=${n.healthy ? "ok" : "bad"}>${n.healthy ? `healthy, ${n.replicas} replica(s)` : n.error || "not ready"}</td></tr>`)}
      ${(snap.brokers || []).map((b) => html`<tr><td>broker ${b.id}</td><td>${b.address} rack ${b.rack || "-"}</td><td class="ok">up${b.controller ? ", controller" : ""}</td></tr>`)}
      ${Object.entries(snap.singletons || {}).map(([k, v]) => html`<tr><td>${{ admin: "auto-admin", indexer: "indexer", backup: "backup service" }[k] || k}</td>
        <td>${v.active_pid ? `active pid ${v.active_pid}` : ""}</td><td class=${v.active_pid ? "ok" : "bad"}>${v.active_pid ? "elected" : "no active member"}</td></tr>`)}
    </tbody></table>${snap.error && html`<div class="muted">${snap.error}</div>`}</div>
    <div class="card" id="partitions"><h2>Partitions</h2><table class="grid"><thead><tr><th>table</th><th>partition</th><th>state</th><th>leader</th><th>epoch</th><th>items</th><th>replicas (role @ next offset, lag)</th></tr></thead><tbody>
      ${snap.partitions.map((p) => html`<tr><td>${p.table}</td><td>${p.partition_id}</td><td>${p.state}</td><td class=${p.leader ? "" : "bad"}>${p.leader || "none"}</td><td>${p.epoch}</td><td>${p.items ?? ""}</td>
        <td>${Object.entries(p.replica_status).map(([n, r]) => `${n} ${r.role} @${r.next_offset ?? "-"}${r.lag != null ? ` lag ${r.lag}` : ""}`).join(" | ")}</td></tr>`)}
    </tbody></table></div>
    <div class="card"><h2>Capacity per partition <span class="muted">consumed vs provisioned units a second (dashed; on-demand tables have none), throttled requests a second, adaptive multiplier (right axis); last 5 minutes</span></h2>
      <div class="plots">${snap.partitions.filter((p) => hist.current[p.partition_id]?.rows[0].length > 1).map((p) =>
        html`<${Plot} key=${p.partition_id} id=${"plot-" + p.partition_id} title=${`${p.table} ${p.partition_id}`} series=${series} data=${hist.current[p.partition_id].rows.map((r) => r.slice())} />`)}</div></div>
    <${Figures} snap=${snap} figs=${figs.current} />
  </div>`;
}

function App() {
  const [me, setMe] = useState(undefined); const [tab, setTab] = useState("tables");
  const check = async () => { try { setMe(await api("GET", "/console/api/whoami")); } catch (x) { setMe(null); } };
  useEffect(() => { check(); }, []);
  if (me === undefined) return html`<main>loading…</main>`;
  if (me === null) return html`<${SignIn} onDone=${check} />`;
  const out = async () => { await api("DELETE", "/v1/session"); setMe(null); };
  return html`<header><h1>Dynamolog</h1><nav>
      <button id="tab-tables" class=${tab === "tables" ? "on" : ""} onClick=${() => setTab("tables")}>Tables</button>
      <button id="tab-system" class=${tab === "system" ? "on" : ""} onClick=${() => setTab("system")}>System</button></nav>
      <span class="who" id="who">${me.auth ? `signed in as ${me.user}` : "authentication is off"} · ${me.region} · ${me.version}
      ${me.auth && html` <button class="lite" onClick=${out}>Sign out</button>`}</span></header>
    <main>${tab === "tables" ? html`<${Tables} />` : html`<${System} />`}</main>`;
}

render(html`<${App} />`, document.getElementById("root"));
