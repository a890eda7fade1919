// ragkit's web page: ask (streamed), check each citation against its exact passage, add and remove documents.
// It talks to the public /v1 routes of the server that serves it. Everything that comes from the server (answers,
// document text, file names, error messages) is inserted as text nodes, never parsed as HTML.

const $ = (id) => document.getElementById(id);
const KEY = "ragkit.apiKey"; // sessionStorage: this tab only, gone when it closes
const FINISHED = new Set(["done", "failed", "cancelled"]);
const CONTEXT_CHARS = 240; // document text shown either side of a cited span in the side panel
const KINDS = {
  cited: "cited: the model cited this source and it supports the sentence",
  corrected: "corrected: the model cited another source; this one supports the sentence",
  inferred: "inferred: the model cited nothing; this source supports the sentence best",
  entry: "entry: the model cited nothing; it read this source's entry of the option it names as the answer",
  retrieved: "retrieved: given to the model, not cited by the answer",
};
const state = { me: null, answer: null, controller: null, docsOffset: 0, opener: null };

// -- small helpers --------------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child); // strings become text nodes
  }
  return node;
}

const baseName = (uri) => String(uri || "").replace(/[\\/]+$/, "").split(/[\\/]/).pop() || String(uri || "");
const seconds = (s) => (typeof s === "number" ? `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s` : "");
const percent = (x) => `${Math.round(x * 100)}%`;

function bytes(n) {
  if (!(n >= 0)) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function setStatus(text) { $("status").textContent = text; }

// -- the API --------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, detail = "") {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

function authHeaders(key = sessionStorage.getItem(KEY)) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function explain(status, detail, retryAfter) {
  if (status === 401) return "Your API key was refused. Enter a valid key (ask an admin: ragkit keys create).";
  if (status === 403) return detail || "This API key may not do that.";
  if (status === 404) return detail || "Not found (it may have been deleted).";
  if (status === 429) return `The server is busy${retryAfter ? `; try again in ${retryAfter} s` : ""}. ${detail}`.trim();
  return detail || `The server answered with status ${status}.`;
}

async function failure(response) {
  let detail = "";
  try { detail = (await response.json()).error || ""; } catch { /* not JSON */ }
  return new ApiError(response.status, explain(response.status, detail, response.headers.get("Retry-After")), detail);
}

async function api(path, { method = "GET", body, signal, key } = {}) {
  const headers = key === undefined ? authHeaders() : authHeaders(key);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Cannot reach the ragkit server. Is it still running?");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

const getJSON = async (path) => (await api(path)).json();

// Shows `err` in `target`; a refused key (401) asks for a key instead.
function report(err, target) {
  if (err.status === 401) {
    sessionStorage.removeItem(KEY);
    askForKey(err.message);
  } else if (target) {
    target.textContent = err.message;
  }
}

// Server-sent events from a fetch body: yields [event name, parsed data].
async function* events(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield [name, JSON.parse(data.join("\n"))];
    }
  }
}

// -- the API key ----------------------------------------------------------------------------------------------

function askForKey(message = "") {
  $("key-panel").hidden = false;
  $("key-error").textContent = message;
  $("key-input").focus();
}

async function useKey(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  try {
    const me = await (await api("/v1/me", { key })).json();
    sessionStorage.setItem(KEY, key);
    $("key-input").value = "";
    signedIn(me);
  } catch (err) {
    $("key-error").textContent =
      err.status === 401
        ? "That API key was refused: it is unknown, revoked or mistyped. Check it, or ask an admin for a new one."
        : err.message;
    $("key-input").select();
  }
}

function signedIn(me) {
  state.me = me;
  $("key-panel").hidden = true;
  $("key-error").textContent = "";
  $("main").hidden = false;
  $("who").textContent = me.keys_required
    ? `Signed in as ${me.name} (${me.scope} key)`
    : "Local server: no API key needed";
  $("forget-key").hidden = !sessionStorage.getItem(KEY);
  $("dropzone").hidden = !me.can_write;
  loadDocuments(true);
  loadJobs();
  route();
}

// -- asking ---------------------------------------------------------------------------------------------------

function askBody() {
  const body = { question: $("question").value.trim() };
  const k = parseInt($("k").value, 10);
  if (k > 0) body.k = k;
  if ($("mode").value) body.mode = $("mode").value;
  const filters = [];
  const glob = $("source-glob").value.trim();
  if (glob) filters.push(`source=${glob}`);
  for (const line of $("meta-filters").value.split("\n")) if (line.trim()) filters.push(line.trim());
  if (filters.length) body.filters = filters;
  return body;
}

function busy(on) {
  $("ask-button").disabled = on;
  $("stop-button").hidden = !on;
  $("answer").setAttribute("aria-busy", on ? "true" : "false");
}

async function ask(event) {
  event.preventDefault();
  const body = askBody();
  if (!body.question) return;
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  state.answer = null;
  closePanel(false);
  $("result").hidden = false;
  $("notice").hidden = true;
  $("answer-meta").textContent = "";
  $("sources").hidden = true;
  const draft = el("p", { id: "draft", class: "draft" });
  $("answer").replaceChildren(el("p", { class: "draft-label small", text: "Draft: checked against the sources when it is done" }), draft);
  busy(true);
  setStatus("Searching the documents…");
  let finished = false;
  try {
    const response = await api("/v1/ask/stream", { method: "POST", body, signal: controller.signal });
    for await (const [name, data] of events(response.body)) {
      if (name === "sources") {
        setStatus(`${data.hits.length} sources found; writing the answer…`);
        showSources(data.hits, null);
      } else if (name === "token") {
        draft.append(data.text);
      } else if (name === "answer") {
        finished = true;
        showAnswer(data);
      } else if (name === "error") {
        finished = true;
        setStatus("");
        $("answer").replaceChildren(el("p", { class: "error", text: data.error }));
      }
    }
    if (!finished) setStatus("The answer stream ended early; ask again.");
  } catch (err) {
    if (err.name === "AbortError") setStatus("Stopped.");
    else {
      setStatus("");
      $("answer").replaceChildren(el("p", { class: "error", text: err.message }));
      report(err, null);
    }
  } finally {
    if (state.controller === controller) {
      state.controller = null;
      busy(false);
    }
  }
}

function abstention(a) {
  const flag = (kind) => (a.flags || []).find((f) => f.kind === kind);
  if (flag("low_relevance")) {
    return ["No answer: nothing in the documents is relevant enough to this question, so the model was not asked.",
      flag("low_relevance").detail];
  }
  if (flag("unsourced")) {
    return ["Answer withheld: no source supports the model's answer.", flag("unsourced").detail];
  }
  if (flag("restated")) {
    return ["Answer withheld: the model only repeated the question.", flag("restated").detail];
  }
  if (flag("unquantified")) {
    return ["Answer withheld: the question asks for a number and the model's answer gives none.", flag("unquantified").detail];
  }
  if (flag("no_default")) {
    return ["Answer withheld: the question asks for a default, and no source calls the model's answer one.", flag("no_default").detail];
  }
  if (flag("no_limit")) {
    return ["Answer withheld: the question asks for a limit, and no source states the model's answer as one.", flag("no_limit").detail];
  }
  if (flag("off_question")) {
    return ["Answer withheld: the sources do not back the model's answer to this question.", flag("off_question").detail];
  }
  if (flag("ungrounded")) {
    return ["Answer withheld: the model's answer states something the sources do not support.", flag("ungrounded").detail];
  }
  if (flag("unverified")) {
    return ["Answer withheld: the model that read it does not find the answer in the sources.", flag("unverified").detail];
  }
  if (flag("unsure")) {
    return ["Answer withheld: the model was guessing the key fact of its answer.", flag("unsure").detail];
  }
  return ["No answer: the model found nothing in the sources that answers this question.", ""];
}

function showAnswer(a) {
  state.answer = a;
  setStatus("");
  const box = $("answer");
  box.replaceChildren();
  if (a.abstained) {
    const [headline, detail] = abstention(a);
    const notice = $("notice");
    notice.className = "notice abstain";
    notice.replaceChildren(el("strong", { text: headline }), detail ? el("span", { class: "small", text: ` (${detail})` }) : "");
    if (a.draft) {
      notice.append(el("details", {}, el("summary", { text: "Show the withheld answer" }), el("p", { text: a.draft })));
    }
    notice.hidden = false;
  }
  const text = el("p", { id: "answer-text", class: a.abstained ? "final abstained" : "final" });
  renderAnswer(text, a);
  box.append(text);
  if (!a.abstained && a.unsupported.length) {
    const n = a.unsupported.length;
    box.append(el("p", { class: "warn small", text: `${n} sentence${n > 1 ? "s are" : " is"} supported by no source (marked "no source"): check before relying on ${n > 1 ? "them" : "it"}.` }));
  }
  const notes = (a.flags || []).filter((f) => ["injection", "echoed_instruction", "truncated", "invalid_citation", "fallback"].includes(f.kind) || (f.kind === "released" && !a.abstained));
  if (notes.length) box.append(el("ul", { class: "notes small" }, notes.map((f) => el("li", { text: flagNote(f) }))));
  const t = a.timings || {};
  const parts = a.generator && a.completion_tokens ? [`Answered by ${a.generator}`] : ["No model ran"];
  if (t.retrieve !== undefined) parts.push(`retrieval ${seconds(t.retrieve)}`);
  if (t.generate) parts.push(`generation ${seconds(t.generate)}`);
  if (t.total !== undefined) parts.push(`total ${seconds(t.total)}`);
  if (a.completion_tokens) parts.push(`${a.completion_tokens} tokens`);
  if (typeof a.relevance === "number") parts.push(`best source similarity ${a.relevance.toFixed(2)}`);
  $("answer-meta").textContent = parts.join(" · ");
  showSources(a.hits, a);
}

function flagNote(f) {
  const where = f.source ? ` (source [${f.source}])` : "";
  if (f.kind === "injection") return `A source held instruction-like text; it was neutralised before the model saw it${where}.`;
  if (f.kind === "echoed_instruction") return `A sentence copied from an instruction in a source, which does not answer the question, was removed${where}.`;
  if (f.kind === "truncated") return "The answer hit the token limit; its unfinished last sentence was dropped.";
  if (f.kind === "fallback") return `A second model was asked: ${f.detail}.`;
  if (f.kind === "released") return `Delivered after a second look: ${f.detail}.`;
  return `The model cited a source that does not exist${where}; the marker was dropped.`;
}

// The checked answer: [n] markers become buttons (the k-th marker is the k-th citation), unsupported sentences marked.
function renderAnswer(parent, a) {
  const text = a.text;
  const ranges = [];
  let from = 0;
  for (const sentence of a.unsupported || []) {
    let at = text.indexOf(sentence, from);
    if (at < 0) at = text.indexOf(sentence);
    if (at >= 0 && !ranges.some(([s, e]) => at < e && at + sentence.length > s)) {
      ranges.push([at, at + sentence.length]);
      from = at + sentence.length;
    }
  }
  ranges.sort((x, y) => x[0] - y[0]);
  const counter = { k: 0 };
  let pos = 0;
  for (const [start, end] of ranges) {
    appendWithMarkers(parent, text.slice(pos, start), a, counter);
    const span = el("span", { class: "unsupported", title: "No source supports this sentence" });
    appendWithMarkers(span, text.slice(start, end), a, counter);
    span.append(" ", el("span", { class: "badge", text: "no source" }));
    parent.append(span);
    pos = end;
  }
  appendWithMarkers(parent, text.slice(pos), a, counter);
}

function appendWithMarkers(parent, text, a, counter) {
  // inline `code` is quoted text, never a marker (ragkit.citations.strip_markers): `arr[1]` stays as written
  const marker = /(``[^\n]*?``|`[^`\n]*`)|\[(\d+)\]/g;
  let pos = 0;
  let m;
  while ((m = marker.exec(text))) {
    if (m[1]) continue;
    parent.append(text.slice(pos, m.index));
    const n = Number(m[2]);
    const exact = a.citations[counter.k];
    const citation = exact && exact.n === n ? exact : a.citations.find((c) => c.n === n);
    counter.k += 1;
    parent.append(citation ? citeButton(citation, a) : m[0]);
    pos = m.index + m[0].length;
  }
  parent.append(text.slice(pos));
}

function citeButton(c, a) {
  const name = baseName(c.uri);
  return el("button", {
    type: "button", class: "cite", text: `[${c.n}]`, "aria-label": `[${c.n}] source ${c.n}: ${name}`,
    "aria-controls": "citation-panel", dataset: { n: c.n },
    onclick: (ev) => openSource(fromCitation(c, a), ev.currentTarget),
  });
}

function hitOf(a, chunkId, n) {
  return a.hits.find((h) => h.chunk.id === chunkId) || a.hits[n - 1];
}

function fromCitation(c, a) {
  const hit = hitOf(a, c.chunk_id, c.n);
  return { n: c.n, uri: c.uri, page: c.page, section: c.section, start: c.start, end: c.end, kind: c.kind,
    support: c.support, sentence: c.sentence, docId: hit?.chunk.doc_id, chunkText: hit?.chunk.text, score: hit?.score };
}

function fromHit(hit, n) {
  const ch = hit.chunk;
  return { n, uri: ch.uri, page: ch.page, section: ch.section, start: ch.start, end: ch.end, kind: "retrieved",
    support: null, sentence: "", docId: ch.doc_id, chunkText: ch.text, score: hit.score };
}

function showSources(hits, a) {
  const list = $("source-list");
  list.replaceChildren();
  hits.forEach((hit, i) => {
    const n = i + 1;
    const ch = hit.chunk;
    const cited = a ? a.citations.find((c) => c.n === n) : null;
    const where = [ch.page != null ? `page ${ch.page}` : "", ch.section ? `“${ch.section}”` : ""].filter(Boolean).join(", ");
    const source = cited ? fromCitation(cited, a) : fromHit(hit, n);
    list.append(el("li", {},
      el("button", { type: "button", class: "source-btn", "aria-controls": "citation-panel",
        onclick: (ev) => openSource(source, ev.currentTarget) }, `[${n}] ${baseName(ch.uri)}`),
      where ? el("span", { class: "muted small", text: ` ${where}` }) : "",
      a ? el("span", { class: `badge ${cited ? "ok" : ""}`, text: cited ? "cited" : "not cited" }) : ""));
  });
  $("sources").hidden = hits.length === 0;
}

// -- the side panel: a source and its exact passage -----------------------------------------------------------

async function openSource(s, opener) {
  state.opener = opener || null;
  const panel = $("citation-panel");
  $("cite-title").textContent = `Source [${s.n}]: ${baseName(s.uri)}`;
  const facts = [["File", baseName(s.uri)], ["Page", s.page ?? "—"], ["Section", s.section || "—"],
    ["Kind", KINDS[s.kind] || s.kind]];
  const dl = $("cite-facts");
  dl.replaceChildren();
  for (const [term, value] of facts) dl.append(el("dt", { text: term }), el("dd", { text: String(value), title: term === "File" ? s.uri : null }));
  if (s.support != null) {
    dl.append(el("dt", { text: "Support" }), el("dd", {},
      el("meter", { min: 0, max: 1, low: 0.5, high: 0.8, optimum: 1, value: s.support, "aria-label": "support" }),
      ` ${percent(s.support)} of the sentence's content words are in this passage`));
  }
  $("cite-sentence").textContent = s.sentence ? `Answer sentence: “${s.sentence}”` : "";
  $("open-doc").href = `#doc=${s.docId}&start=${s.start}&end=${s.end}`;
  const passage = $("passage");
  passage.replaceChildren(el("span", { class: "muted", text: "Loading the passage…" }));
  panel.hidden = false;
  panel.focus();
  try {
    const from = Math.max(0, s.start - CONTEXT_CHARS);
    const doc = await getJSON(`/v1/documents/${s.docId}/text?start=${from}&end=${s.end + CONTEXT_CHARS}`);
    const cut = (i) => Math.min(Math.max(i - doc.start, 0), doc.text.length);
    const cited = doc.text.slice(cut(s.start), cut(s.end));
    passage.replaceChildren(
      doc.start > 0 ? "…" : "", doc.text.slice(0, cut(s.start)),
      el("mark", { id: "cited-span", dataset: { doc: s.docId, start: s.start, end: s.end }, text: cited }),
      doc.text.slice(cut(s.end)), doc.end < doc.length ? "…" : "");
    if (s.chunkText && cited !== s.chunkText) {
      passage.append(el("p", { class: "warn small", text: "The document changed since this answer: the highlighted text differs from what the answer was checked against." }));
    }
    $("cited-span").scrollIntoView({ block: "nearest" });
  } catch (err) {
    passage.replaceChildren(el("p", { class: "warn small", text: `${err.message} The text the answer was checked against:` }),
      el("mark", { text: s.chunkText || "" }));
    report(err, null);
  }
}

function closePanel(restoreFocus = true) {
  $("citation-panel").hidden = true;
  if (restoreFocus && state.opener && document.contains(state.opener)) state.opener.focus();
  state.opener = null;
}

// -- the whole document, scrolled to a span (#doc=ID&start=S&end=E) --------------------------------------------

function route() {
  if (!state.me) return;
  const m = /^#doc=(\d+)(?:&start=(\d+)&end=(\d+))?$/.exec(location.hash);
  $("home").hidden = Boolean(m);
  $("doc-view").hidden = !m;
  if (m) showDocument(Number(m[1]), m[2] === undefined ? null : Number(m[2]), m[3] === undefined ? null : Number(m[3]));
}

async function showDocument(id, start, end) {
  const box = $("doc-text");
  $("doc-title").textContent = "Document";
  $("doc-info").textContent = "";
  box.replaceChildren(el("span", { class: "muted", text: "Loading…" }));
  try {
    const [info, doc] = await Promise.all([getJSON(`/v1/documents/${id}`), getJSON(`/v1/documents/${id}/text`)]);
    $("doc-title").textContent = baseName(info.uri);
    $("doc-info").textContent = `${info.uri} · ${info.chunks} chunks · ${bytes(info.size)}`;
    if (start === null) {
      box.replaceChildren(doc.text);
      $("doc-title").focus();
      return;
    }
    const mark = el("mark", { id: "doc-span", tabindex: "-1", text: doc.text.slice(start, end) });
    box.replaceChildren(doc.text.slice(0, start), mark, doc.text.slice(end));
    mark.scrollIntoView({ block: "center" });
    mark.focus({ preventScroll: true });
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: err.message }));
    report(err, null);
  }
}

// -- documents: list, delete ----------------------------------------------------------------------------------

async function loadDocuments(reset) {
  if (reset) state.docsOffset = 0;
  try {
    const page = await getJSON(`/v1/documents?limit=50&offset=${state.docsOffset}`);
    const rows = page.documents.map(documentRow);
    if (reset) $("doc-rows").replaceChildren(...rows);
    else $("doc-rows").append(...rows);
    state.docsOffset += page.documents.length;
    $("doc-count").textContent = `(${page.total})`;
    $("more-docs").hidden = state.docsOffset >= page.total;
    if (!page.total) $("doc-rows").replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No documents yet." })));
  } catch (err) {
    report(err, $("docs-error"));
  }
}

function documentRow(d) {
  const name = baseName(d.uri);
  const added = d.ingested_at ? new Date(d.ingested_at).toLocaleString() : "";
  return el("tr", { dataset: { id: d.id, uri: d.uri } },
    el("td", { class: "name" }, el("a", { href: `#doc=${d.id}`, title: d.uri, text: name })),
    el("td", { class: "num", text: String(d.chunks) }),
    el("td", { class: "num opt", text: bytes(d.size) }),
    d.status === "ok" ? el("td", { text: "ok" }) : el("td", { class: "status-error", text: `error: ${d.error || ""}` }),
    el("td", { class: "opt small", text: added }),
    el("td", {}, state.me?.can_write
      ? el("button", { type: "button", class: "quiet danger-text", "aria-label": `Delete ${name}`, text: "Delete",
        onclick: (ev) => confirmDelete(d, ev.currentTarget) })
      : ""));
}

function confirmDelete(d, opener) {
  const dialog = $("confirm-delete");
  $("confirm-text").textContent = `“${baseName(d.uri)}” (${d.chunks} chunks) will be removed from the knowledge base; answers will no longer cite it.`;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "delete") { opener.focus(); return; }
    $("docs-error").textContent = "";
    try {
      await api(`/v1/documents/${d.id}`, { method: "DELETE" });
      await loadDocuments(true);
      $("docs-status").textContent = `Deleted ${baseName(d.uri)}.`;
      $("docs-title").focus();
    } catch (err) {
      report(err, $("docs-error"));
    }
  };
  dialog.showModal();
}

// -- uploads and their ingest jobs ----------------------------------------------------------------------------

function jobItem(names) {
  const label = el("span", { class: "job-state", text: "Uploading…" });
  const bar = el("progress", { max: 1, value: 0, "aria-label": `progress of ${names.join(", ")}` });
  const report = el("div", { class: "job-report small" });
  const cancel = el("button", { type: "button", class: "quiet", text: "Cancel", hidden: true });
  const li = el("li", { class: "job", dataset: { state: "uploading" } },
    el("strong", { class: "job-files", text: names.join(", ") }), " ", label, " ", cancel, bar, report);
  $("jobs").prepend(li);
  while ($("jobs").children.length > 8) $("jobs").lastElementChild.remove();
  return { li, label, bar, report, cancel };
}

function upload(files) {
  if (!files.length) return;
  const item = jobItem([...files].map((f) => f.name));
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  const xhr = new XMLHttpRequest(); // fetch cannot report upload progress
  xhr.open("POST", "/v1/documents");
  for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) {
      item.bar.max = e.total;
      item.bar.value = e.loaded;
      item.label.textContent = `Uploading… ${percent(e.loaded / e.total)}`;
    }
  };
  xhr.onerror = () => finishItem(item, "failed", "Upload failed: cannot reach the server.");
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 202) {
      follow(body.job, item);
    } else {
      const err = new ApiError(xhr.status, explain(xhr.status, body.error || "", xhr.getResponseHeader("Retry-After")));
      finishItem(item, "failed", `Upload refused: ${err.message}`);
      report(err, null);
    }
  };
  xhr.send(form);
}

function finishItem(item, stateName, text) {
  item.li.dataset.state = stateName;
  item.label.textContent = text;
  item.cancel.hidden = true;
}

function showJob(job, item) {
  item.li.dataset.state = job.state;
  item.li.dataset.job = job.id;
  const p = job.progress || {};
  item.bar.max = Math.max(1, p.total || 1);
  item.bar.value = FINISHED.has(job.state) ? item.bar.max : p.done || 0;
  item.cancel.hidden = FINISHED.has(job.state);
  item.cancel.onclick = () => api(`/v1/jobs/${job.id}`, { method: "DELETE" }).catch((err) => report(err, item.report));
  if (job.state === "queued") item.label.textContent = "Waiting for the ingest worker…";
  else if (job.state === "running") item.label.textContent = `Ingesting ${p.done} of ${p.total}${p.current ? `: ${p.current}` : ""}…`;
  else item.label.textContent = { done: "Done", failed: "Failed", cancelled: "Cancelled" }[job.state] || job.state;
  const r = job.report;
  item.report.replaceChildren();
  if (r) {
    item.report.append(el("p", { text: `${r.ingested} added, ${r.unchanged} unchanged, ${r.failed.length} failed, ${r.chunks_added} chunks, ${seconds(r.seconds)}` }));
    const problems = [...r.failed.map((f) => ["failed", f]), ...(r.notes || []).map((f) => ["note", f])];
    if (problems.length) {
      item.report.append(el("ul", {}, problems.map(([kind, f]) =>
        el("li", { class: kind === "failed" ? "error" : "muted" }, el("strong", { text: baseName(f.uri) }),
          `: ${String(f.reason).replace(`${baseName(f.uri)}: `, "")}`))));
    }
  } else if (job.error) {
    item.report.append(el("p", { class: "error", text: job.error }));
  }
}

async function follow(jobId, item) {
  for (;;) {
    let job;
    try {
      job = await getJSON(`/v1/jobs/${jobId}`);
    } catch (err) {
      finishItem(item, "failed", err.message);
      report(err, null);
      return;
    }
    showJob(job, item);
    if (FINISHED.has(job.state)) {
      loadDocuments(true);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function loadJobs() {
  if (!state.me?.can_write) return;
  try {
    const { jobs } = await getJSON("/v1/jobs");
    $("jobs").replaceChildren();
    for (const job of jobs.slice(-8)) {
      const item = jobItem(job.files);
      showJob(job, item);
      if (!FINISHED.has(job.state)) follow(job.id, item);
    }
  } catch (err) {
    report(err, $("docs-error"));
  }
}

function wireUploads() {
  const zone = $("dropzone");
  const input = $("file-input");
  $("pick-files").addEventListener("click", () => input.click());
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    upload([...(e.dataTransfer?.files || [])]);
  });
  // a file dropped beside the zone must not replace the page with the file
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

// -- start ----------------------------------------------------------------------------------------------------

async function start() {
  $("key-form").addEventListener("submit", useKey);
  $("ask-form").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("stop-button").addEventListener("click", () => state.controller?.abort());
  $("close-panel").addEventListener("click", () => closePanel());
  $("more-docs").addEventListener("click", () => loadDocuments(false));
  $("forget-key").addEventListener("click", () => { sessionStorage.removeItem(KEY); location.hash = ""; location.reload(); });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("citation-panel").hidden && !$("confirm-delete").open) closePanel();
  });
  window.addEventListener("hashchange", route);
  wireUploads();
  const saved = sessionStorage.getItem(KEY);
  try {
    signedIn(await (await api("/v1/me")).json());
  } catch (err) {
    if (err.status === 401) {
      sessionStorage.removeItem(KEY);
      askForKey(saved ? "The saved API key was refused; enter a valid one." : "");
    } else {
      $("key-panel").hidden = false;
      $("key-form").hidden = true;
      $("key-title").textContent = "Cannot load";
      $("key-error").textContent = err.message;
    }
  }
}

start();
