// The Emotion tab: record from the microphone or drop a clip → POST /v1/emotion; the scores as a bar chart.

import { api, barChart, dropZone, el, fillSelect, reporting } from "./api.js";

const $ = (id) => document.getElementById(id);

export function initEmotion() {
  const recorder = { media: null, chunks: [] };
  dropZone($("em-drop"), $("em-file"), (file) => reporting(() => recognize(file), $("em-state")));
  $("em-record").addEventListener("click", () => reporting(() => toggleRecording(recorder), $("em-state")));
  return {
    refresh: () => reporting(async () => {
      const models = await api("/v1/models");
      const emo = models.data.filter((m) => m.capability === "emotion").map((m) => [m.id, m.id]);
      fillSelect($("em-model"), [["default", "default (server's choice)"], ...emo], $("em-model").value);
    }),
  };
}

async function toggleRecording(recorder) {
  if (recorder.media) {
    recorder.media.stop();  // onstop sends the clip
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    throw new Error(`The microphone is not available (${err.name}): allow it for this page, or drop a file instead.`);
  }
  recorder.chunks = [];
  recorder.media = new MediaRecorder(stream);
  recorder.media.ondataavailable = (e) => recorder.chunks.push(e.data);
  recorder.media.onstop = () => {
    stream.getTracks().forEach((t) => t.stop());
    const type = recorder.media.mimeType || "audio/webm";
    recorder.media = null;
    $("em-record").textContent = "Record";
    const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "mp4" : "webm";
    reporting(() => recognize(new File(recorder.chunks, `recording.${ext}`, { type })), $("em-state"));
  };
  recorder.media.start();
  $("em-record").textContent = "Stop and analyse";
  $("em-state").textContent = "Recording… speak for a few seconds";
}

async function recognize(file) {
  $("em-audio").src = URL.createObjectURL(file);
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", $("em-model").value || "default");
  form.append("response_format", "verbose_json");
  $("em-state").textContent = "Listening to the clip…";
  const r = await api("/v1/emotion", { form });
  $("em-label").textContent = r.no_speech ? "No speech heard in this clip"
    : `${r.label} — valence ${r.valence.toFixed(2)}, arousal ${r.arousal.toFixed(2)}`;
  const rows = Object.entries(r.scores).sort((a, b) => b[1] - a[1]);
  $("em-bars").replaceChildren(barChart(rows, { max: 1 }),
    r.text ? el("p", { class: "muted" }, `Heard: “${r.text.trim()}”`) : null);
  $("em-state").textContent = `${r.model}, ${r.duration.toFixed(1)} s of audio`;
}
