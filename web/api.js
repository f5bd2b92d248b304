// Calls to the voxloop API from the page: the key lives only in sessionStorage (gone when the tab closes), and
// every failure becomes a sentence a person can read (the server's OpenAI error `message` when there is one).

const KEY = "voxloop.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// The server's words when it sent an OpenAI error body, else a plain description of what went wrong.
export async function errorMessage(response) {
  let text = "";
  try {
    text = await response.text();
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON: fall through to the status line */ }
  if (response.status === 401) return "The server needs an API key: enter it at the top of the page.";
  return `The server answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`;
}

export async function api(path, { method, json, form, raw = false } = {}) {
  const init = { method: method || (json !== undefined || form !== undefined ? "POST" : "GET"), headers: headers() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;  // the browser sets the multipart boundary itself
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new Error(`Could not reach the voxloop server (${err.message}). Is it still running?`);
  }
  if (!response.ok) throw new Error(await errorMessage(response));
  if (raw) return response;
  const type = response.headers.get("content-type") || "";
  return type.includes("application/json") ? response.json() : response.text();
}

// Browsers cannot set headers on a WebSocket: the key travels as a subprotocol, as OpenAI's browser clients do.
export function realtimeSocket(query) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const protocols = ["realtime"];
  if (apiKey()) protocols.push(`openai-insecure-api-key.${apiKey()}`);
  return new WebSocket(`${scheme}://${location.host}/v1/realtime?${new URLSearchParams(query)}`, protocols);
}

export function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

export function clearError() {
  showError("");
}

// Run an async action and report its failure on the page instead of the console.
export async function reporting(action, stateEl) {
  clearError();
  try {
    return await action();
  } catch (err) {
    showError(err.message || String(err));
    if (stateEl) stateEl.textContent = "failed";
    return undefined;
  }
}

export function fillSelect(select, options, selected) {
  select.replaceChildren(...options.map(([value, label]) => {
    const opt = document.createElement("option");
    opt.value = value;
    opt.textContent = label;
    if (value === selected) opt.selected = true;
    return opt;
  }));
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Horizontal bars: [[label, value]] with value in 0..max; used for emotion scores and latency breakdowns.
export function barChart(rows, { max = 1, unit = "", format = (v) => v.toFixed(2) } = {}) {
  const top = Math.max(max, ...rows.map(([, v]) => v));
  return el("div", { class: "bars" }, ...rows.map(([label, value]) =>
    el("div", { class: "bar-row", "data-label": label },
      el("span", { class: "bar-label" }, label),
      el("span", { class: "bar-track" },
        el("span", { class: "bar-fill", style: `width:${(100 * value / top).toFixed(1)}%` })),
      el("span", { class: "bar-value" }, `${format(value)}${unit}`))));
}

export function base64FromBytes(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function bytesFromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Wire files onto a drop zone and its file input; `onFile` gets the File.
export function dropZone(zone, input, onFile) {
  input.addEventListener("change", () => input.files[0] && onFile(input.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files[0]) onFile(e.dataTransfer.files[0]);
  });
}
