// The Transcribe tab: a dropped file → POST /v1/audio/transcriptions; with word timestamps the words light up as
// the clip plays.

import { api, dropZone, el, fillSelect, reporting } from "./api.js";

const $ = (id) => document.getElementById(id);

export function initTranscribe() {
  let file = null;
  dropZone($("tr-drop"), $("tr-file"), (f) => {
    file = f;
    $("tr-audio").src = URL.createObjectURL(f);
    $("tr-go").disabled = false;
    $("tr-state").textContent = f.name;
  });
  $("tr-format").addEventListener("change", syncGranularity);
  $("tr-go").addEventListener("click", () => reporting(() => transcribe(file), $("tr-state")));
  $("tr-audio").addEventListener("timeupdate", highlight);
  $("tr-audio").addEventListener("seeked", highlight);
  syncGranularity();
  return { refresh: () => reporting(loadModels) };
}

async function loadModels() {
  const models = await api("/v1/models");
  const asr = models.data.filter((m) => m.capability === "transcription").map((m) => [m.id, m.id]);
  fillSelect($("tr-model"), [["whisper-1", "whisper-1 (server default)"], ...asr], $("tr-model").value);
}

// Timestamps exist only in verbose_json (as at OpenAI); other formats grey the boxes out instead of failing later.
function syncGranularity() {
  const verbose = $("tr-format").value === "verbose_json";
  for (const id of ["tr-words", "tr-segments"]) $(id).disabled = !verbose;
}

async function transcribe(file) {
  if (!file) throw new Error("Choose or drop an audio file first.");
  const format = $("tr-format").value;
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", $("tr-model").value || "whisper-1");
  form.append("response_format", format);
  if ($("tr-language").value.trim()) form.append("language", $("tr-language").value.trim());
  if (format === "verbose_json") {
    if ($("tr-words").checked) form.append("timestamp_granularities[]", "word");
    if ($("tr-segments").checked) form.append("timestamp_granularities[]", "segment");
  }
  $("tr-state").textContent = "Transcribing…";
  const started = performance.now();
  const result = await api("/v1/audio/transcriptions", { form });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  $("tr-words-view").replaceChildren();
  if (typeof result === "string") {
    $("tr-text").textContent = result;
  } else {
    $("tr-text").textContent = format === "verbose_json" ? segmentsText(result) : result.text;
    if (result.words && result.words.length) renderWords(result.words);
  }
  const audio = result.duration ? ` (${result.duration.toFixed(1)} s of audio)` : "";
  $("tr-state").textContent = `Done in ${seconds} s${audio}`;
}

function segmentsText(result) {
  if (!result.segments || !result.segments.length || !$("tr-segments").checked) return result.text;
  const t = (s) => s.toFixed(2).padStart(6);
  return result.segments.map((s) => `[${t(s.start)} → ${t(s.end)}] ${s.text.trim()}`).join("\n");
}

function renderWords(words) {
  $("tr-words-view").replaceChildren(...words.map((w) => {
    const span = el("span", { class: "word", "data-start": w.start, "data-end": w.end,
      title: `${w.start.toFixed(2)}–${w.end.toFixed(2)} s` }, w.word.trim());
    // Clicking a word plays from there.
    span.addEventListener("click", () => { $("tr-audio").currentTime = w.start; $("tr-audio").play(); });
    return span;
  }));
  // timeupdate fires only ~4 times a second: follow playback per frame for a highlight that keeps up.
  const audio = $("tr-audio");
  audio.onplay = () => {
    const tick = () => { highlight(); if (!audio.paused) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  };
}

function highlight() {
  const t = $("tr-audio").currentTime;
  for (const span of $("tr-words-view").children) {
    const on = t >= Number(span.dataset.start) && t < Number(span.dataset.end);
    span.classList.toggle("current", on);
    span.classList.toggle("spoken", t >= Number(span.dataset.end));
  }
}
