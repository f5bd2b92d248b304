// The Speak tab: text → POST /v1/audio/speech with engine, voice, speed and format; play it and offer a download.
// Tag buttons insert the paralinguistic tags the server understands ([laughs], [sigh], ...).

import { api, el, fillSelect, reporting } from "./api.js";

const $ = (id) => document.getElementById(id);
const MIME = { mp3: "audio/mpeg", wav: "audio/wav", opus: "audio/ogg", flac: "audio/flac", aac: "audio/aac" };

export function initSpeak() {
  let voices = [];
  const showVoices = () => {
    const model = $("sp-model").value;
    const own = voices.filter((v) => v.model === model);
    // The router (voxloop-duet) has no voices of its own: it takes OpenAI names and picks an engine per turn.
    const options = own.length ? own.map((v) => [v.id, `${v.name} — ${v.id} (${v.language})`])
      : [...new Set(voices.flatMap((v) => v.openai_aliases))].map((a) => [a, a]);
    fillSelect($("sp-voice"), options, $("sp-voice").value);
  };
  $("sp-model").addEventListener("change", showVoices);
  $("sp-go").addEventListener("click", () => reporting(speak, $("sp-state")));
  return {
    refresh: () => reporting(async () => {
      const [list, models] = await Promise.all([api("/v1/audio/voices"), api("/v1/models")]);
      voices = list.data;
      const speech = models.data.filter((m) => m.capability === "speech").map((m) => [m.id, m.id]);
      fillSelect($("sp-model"), speech, $("sp-model").value || "piper-joe");
      showVoices();
      $("sp-tags").replaceChildren(el("span", { class: "muted" }, "Insert a tag:"),
        ...list.tag_vocabulary.map((tag) => {
          const b = el("button", { class: "tag", type: "button" }, `[${tag}]`);
          b.addEventListener("click", () => insertTag(tag));
          return b;
        }));
    }),
  };
}

function insertTag(tag) {
  const box = $("sp-input");
  const at = box.selectionStart ?? box.value.length;
  box.value = `${box.value.slice(0, at)} [${tag}] ${box.value.slice(at)}`.replace(/ {2,}/g, " ");
  box.focus();
}

async function speak() {
  const format = $("sp-format").value;
  const body = {
    model: $("sp-model").value, input: $("sp-input").value, voice: $("sp-voice").value,
    speed: Number($("sp-speed").value) || 1, response_format: format,
  };
  if (!body.input.trim()) throw new Error("Type something to say first.");
  $("sp-state").textContent = "Synthesizing…";
  const started = performance.now();
  const response = await api("/v1/audio/speech", { method: "POST", json: body, raw: true });
  const blob = new Blob([await response.arrayBuffer()], { type: MIME[format] || "application/octet-stream" });
  const url = URL.createObjectURL(blob);
  const audio = $("sp-audio");
  audio.src = url;
  const link = $("sp-download");
  link.href = url;
  link.download = `voxloop-speech.${format}`;
  link.textContent = `Download ${link.download} (${(blob.size / 1024).toFixed(0)} KiB)`;
  link.hidden = false;
  const h = (name) => response.headers.get(`x-voxloop-${name}`);
  const tags = h("tags-mapped");
  $("sp-state").textContent = `Made in ${((performance.now() - started) / 1000).toFixed(1)} s`
    + (h("voice") ? ` by ${h("voice")} on ${h("engine")}` : "") + (h("route-reason") ? ` (${h("route-reason")})` : "")
    + (tags ? `; tags: ${tags}` : "");
  try {
    await audio.play();
  } catch (_) { /* autoplay refused: the controls are there */ }
}
