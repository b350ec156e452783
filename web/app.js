// filepipe's upload page: plain modules, no build step. The API it speaks is in
// shared/filepipe/openapi.yaml; the live status comes from the WebSocket gateway (/ws).
//
// The credential (an API key `fpk_…` or an upload token `fput_…`) comes from the URL fragment
// (`#token=…`, removed from the address bar at once) or the field. `#api=<origin>` points the
// page at filepipe on another origin (default: the page's own).

const MULTIPART_FROM = 16 * 1024 * 1024; // smaller files: one PUT with a declared SHA-256
const PART_CONCURRENCY = 4;
const PART_BATCH = 100; // part URLs asked for at once
const FINAL = new Set(["PROCESSED", "REJECTED", "FAILED", "EXPIRED", "QUARANTINED", "CANCELLED", "DELETED", "MISSING"]);

const $ = (selector) => document.querySelector(selector);
const state = { credential: "", api: location.origin, socket: null, rows: new Map() };

class ApiError extends Error {
  constructor(status, problem) {
    const what = [problem.title, problem.detail].filter(Boolean).join(": ");
    super(`${status} ${what || "error"}`);
    this.status = status;
  }
}

// --- credential and API -------------------------------------------------------------------

function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("api")) state.api = params.get("api").replace(/\/+$/, "");
  if (params.has("token")) setCredential(params.get("token"));
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
}

function setCredential(value) {
  state.credential = value.trim();
  $("#credential").value = state.credential;
  const isKey = state.credential !== "" && !isUploadToken();
  $("#recent").hidden = !isKey;
  if (state.socket) state.socket.then((socket) => socket.close(), () => {});
  state.socket = null;
  if (isKey) refreshFiles();
}

const isUploadToken = () => state.credential.startsWith("fput_");

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.credential}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(state.api + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

// --- uploads ------------------------------------------------------------------------------

function addRow(file) {
  const item = $("#upload-row").content.firstElementChild.cloneNode(true);
  item.querySelector(".name").textContent = file.name;
  $("#uploads").prepend(item);
  const row = { item, version: -1 };
  show(row, "STARTING");
  return row;
}

function show(row, status, reason = "") {
  row.status = status;
  row.item.dataset.status = status;
  row.item.querySelector(".status").textContent = status;
  row.item.querySelector(".reason").textContent = reason;
}

function progress(row, sent, total, started) {
  const seconds = (performance.now() - started) / 1000;
  row.item.querySelector("progress").value = total ? sent / total : 1;
  const speed = seconds > 0 ? sent / seconds : 0;
  row.item.querySelector(".speed").textContent = `${formatBytes(speed)}/s`;
}

async function upload(file) {
  const row = addRow(file);
  try {
    const large = file.size >= MULTIPART_FROM;
    const request = {
      filename: file.name,
      content_type: file.type || "application/octet-stream",
      size: file.size,
      multipart: large,
    };
    if (!large) request.sha256 = await sha256(file);
    const created = await api("POST", "/uploads", request);
    state.rows.set(created.id, row);
    await watch();
    show(row, "UPLOADING");
    const started = performance.now();
    if (created.upload.method === "MULTIPART") await sendParts(created, file, row, started);
    else await put(created.upload.url, created.upload.headers, file, (n) => progress(row, n, file.size, started));
    progress(row, file.size, file.size, started);
    if (row.status === "UPLOADING") show(row, "PENDING");
    await sync(created.id);
  } catch (error) {
    show(row, "ERROR", error.message);
  }
}

async function sha256(file) {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sendParts(created, file, row, started) {
  const { id, upload } = created;
  const sent = new Array(upload.part_count + 1).fill(0);
  const report = () => progress(row, sent.reduce((a, b) => a + b, 0), file.size, started);
  const parts = [];
  for (let first = 1; first <= upload.part_count; first += PART_BATCH) {
    const numbers = [];
    for (let n = first; n < first + PART_BATCH && n <= upload.part_count; n++) numbers.push(n);
    const presigned = (await api("POST", `/uploads/${id}/parts`, { part_numbers: numbers })).parts;
    const queue = [...presigned];
    const worker = async () => {
      for (let part; (part = queue.shift()); ) {
        const start = (part.number - 1) * upload.part_size;
        const body = file.slice(start, start + upload.part_size);
        const etag = await put(part.url, part.headers, body, (n) => { sent[part.number] = n; report(); });
        if (!etag) throw new Error("storage did not expose the part's ETag (CORS Access-Control-Expose-Headers)");
        parts.push({ number: part.number, etag });
      }
    };
    await Promise.all(Array.from({ length: PART_CONCURRENCY }, worker));
  }
  parts.sort((a, b) => a.number - b.number);
  await api("POST", `/uploads/${id}/complete`, { parts });
}

function put(url, headers, body, onProgress) {
  // XHR, not fetch: fetch reports no upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.getResponseHeader("ETag"));
      else reject(new Error(`storage refused the upload: ${xhr.status} ${storageError(xhr.responseText)}`));
    };
    xhr.onerror = () => reject(new Error("storage could not be reached (network or CORS)"));
    xhr.send(body);
  });
}

function storageError(xml) {
  const code = /<Code>([^<]*)<\/Code>/.exec(xml || "");
  return code ? code[1] : "";
}

// --- live status --------------------------------------------------------------------------

function openSocket() {
  const url = new URL("/ws", state.api);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", state.credential); // browsers cannot set headers on a WebSocket
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.onmessage = (message) => onEvent(JSON.parse(message.data));
    socket.onopen = () => resolve(socket);
    socket.onerror = () => reject(new Error("the live status connection (/ws) was refused"));
  });
}

/** Resolves once events about the page's uploads will arrive: one socket for the credential
 * (a token's gets only the events of its own files), reopened after a drop, when every
 * unfinished upload is read again. */
async function watch() {
  if (!state.socket) {
    const opening = openSocket().then((socket) => {
      socket.onclose = () => {
        if (state.socket !== opening) return; // replaced: the credential changed
        state.socket = null;
        const open = [...state.rows].filter(([, row]) => !FINAL.has(row.status)).map(([id]) => id);
        if (open.length) setTimeout(() => watch().then(() => open.forEach(sync)), 1000);
      };
      return socket;
    });
    opening.catch(() => { if (state.socket === opening) state.socket = null; });
    state.socket = opening;
  }
  await state.socket;
}

function onEvent(event) {
  const data = event.data || {};
  const row = state.rows.get(data.file_id);
  if (!row || typeof data.version !== "number" || data.version <= row.version) return;
  if (row.status === "UPLOADING" && data.status === "PENDING") return;
  row.version = data.version;
  show(row, data.status, data.reason || "");
  if (FINAL.has(data.status)) settle();
}

/** Shows the file as the API has it now (events missed while no socket was open). */
async function sync(fileId) {
  const file = await api("GET", `/files/${fileId}`).catch(() => null);
  if (file) onEvent({ data: { file_id: fileId, status: file.status, version: file.version, reason: file.error } });
}

function settle() {
  if (!$("#recent").hidden) refreshFiles();
}

// --- recent files -------------------------------------------------------------------------

async function refreshFiles() {
  const query = new URLSearchParams({ limit: "20" });
  for (const [name, value] of new FormData($("#filters"))) if (value.trim()) query.set(name, value.trim());
  try {
    const page = await api("GET", `/files?${query}`);
    $("#files").replaceChildren(...page.items.map(fileRow));
    message("");
  } catch (error) {
    message(`Listing files: ${error.message}`);
  }
}

function fileRow(file) {
  const tr = document.createElement("tr");
  tr.dataset.id = file.id;
  const cells = [file.filename, file.status, file.content_type || file.declared.content_type,
    formatBytes(file.size ?? file.declared.size), new Date(file.created_at).toLocaleString()];
  for (const text of cells) tr.insertCell().textContent = text;
  tr.cells[1].className = "status";
  tr.cells[1].dataset.status = file.status;
  const actions = tr.insertCell();
  if (file.status === "PROCESSED") actions.append(button("Download", () => download(file.id)));
  if (file.status !== "DELETED") actions.append(button("Delete", () => remove(file.id)));
  return tr;
}

function button(label, action) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.addEventListener("click", () => action().catch((error) => message(`${label}: ${error.message}`)));
  return element;
}

async function download(id) {
  const { url } = await api("GET", `/files/${id}/download`);
  const link = Object.assign(document.createElement("a"), { href: url, rel: "noopener" });
  link.click();
}

async function remove(id) {
  await api("DELETE", `/files/${id}`);
  await refreshFiles();
}

// --- page ---------------------------------------------------------------------------------

function message(text) {
  $("#message").textContent = text;
  $("#message").hidden = !text;
}

function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  for (; n >= 1024 && unit < units.length - 1; unit++) n /= 1024;
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function take(files) {
  if (!state.credential) return message("Enter an API key or upload token first.");
  message("");
  for (const file of files) upload(file);
}

function start() {
  readFragment();
  $("#credential-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setCredential($("#credential").value);
  });
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refreshFiles();
  });
  $("#picker").addEventListener("change", (event) => {
    take([...event.target.files]);
    event.target.value = "";
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    take([...event.dataTransfer.files]);
  });
}

start();
