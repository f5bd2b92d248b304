// The Talk tab: a realtime conversation, over WebRTC when the browser can (rtc.js: an ephemeral key, Opus both ways,
// the `oai-events` data channel; the server cuts a reply talked over), else over the WebSocket (the microphone's
// PCM in events, the reply played back gap-free here, barge-in by speaking truncated here). Per turn: the transcript,
// the emotion heard, which voice spoke and why, and where the time went. The same event handlers serve both.

import { api, barChart, base64FromBytes, bytesFromBase64, el, fillSelect, realtimeSocket, reporting, showError }
  from "./api.js";
import { Microphone, Player } from "./audio.js";
import { Call, canUseWebRTC, watchLevel } from "./rtc.js";

const $ = (id) => document.getElementById(id);
// Stages of voxloop_timings_ms, in the order they happen after the end of the user's speech.
const STAGES = ["transcript", "emotion", "llm_first_token", "first_audio"];

export function initTalk() {
  const talk = new Talk();
  $("talk-start").addEventListener("click", () => reporting(() => talk.start(), $("talk-state")));
  $("talk-stop").addEventListener("click", () => talk.stop("Stopped"));
  $("talk-apply").addEventListener("click", () => talk.sendSession());
  return { refresh: () => reporting(loadOptions) };
}

async function loadOptions() {
  const [voices, models] = await Promise.all([api("/v1/audio/voices"), api("/v1/models")]);
  const aliases = new Set(voices.data.flatMap((v) => v.openai_aliases || []));
  const current = $("talk-voice").value;
  fillSelect($("talk-voice"), [["", "server default"], ...[...aliases].map((a) => [a, a]),
    ...voices.data.map((v) => [v.id, `${v.id} (${v.model})`])], current);
  const chat = models.data.filter((m) => m.capability === "chat");
  fillSelect($("talk-llm"), chat.map((m) => [m.id, m.id]));
}

class Talk {
  constructor() {
    this.ws = null;
    this.turns = new Map();  // item id → its bubble's parts
    this.cut = new Set();     // reply items the person talked over: their late audio deltas are dropped
    this.replies = new Map(); // response id → its message item id (WebRTC's output_audio_buffer events name responses)
    window.voxloopTalk = this.debug = { events: {}, truncates: [], playedMs: 0, transport: null };
  }

  transport() {
    const asked = $("talk-transport").value;
    if (asked === "websocket" || !canUseWebRTC()) return "websocket";
    return "webrtc";
  }

  async start() {
    this.context = new AudioContext();
    await this.context.resume();
    this.rtc = this.transport() === "webrtc";
    this.debug.transport = this.rtc ? "webrtc" : "websocket";
    $("talk-start").disabled = true;
    $("talk-state").textContent = `Connecting (${this.debug.transport})…`;
    await (this.rtc ? this.startCall() : this.startSocket());
    $("talk-stop").disabled = false;
    $("talk-apply").disabled = false;
  }

  async startCall() {
    this.call = new Call({
      onEvent: (e) => this.onEvent(e),
      onClose: () => { if (this.call) this.stop("Disconnected"); },
      audio: $("talk-audio"),
    });
    try {
      await this.call.open({ voxloop_events: "true" });
    } catch (err) {
      this.stop("Not connected");
      throw err;
    }
    this.debug.callId = this.call.callId;
    this.unwatch = watchLevel(this.context, this.call.stream, (peak) => {
      $("talk-level").firstElementChild.style.width = `${Math.min(100, peak * 200)}%`;
    });
  }

  async startSocket() {
    this.player = new Player(this.context, (ms) => {
      this.debug.playedMs = Math.round(ms);
      $("played-ms").textContent = String(Math.round(ms));
    });
    this.ws = realtimeSocket({ model: "voxloop", voxloop_events: "true" });
    this.ws.onmessage = (m) => this.onEvent(JSON.parse(m.data));
    this.ws.onclose = (e) => {
      if (this.ws) this.stop(e.code === 1008 ? "Refused: the API key is missing or wrong." : "Disconnected");
      if (e.code === 1008) showError("The server refused the connection: enter the right API key at the top.");
    };
    await new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error("Could not open the realtime connection to the server."));
    });
    this.mic = new Microphone((pcm) => this.send({
      type: "input_audio_buffer.append", audio: base64FromBytes(new Uint8Array(pcm)),
    }), (peak) => { $("talk-level").firstElementChild.style.width = `${Math.min(100, peak * 200)}%`; });
    try {
      await this.mic.start(this.context);
    } catch (err) {
      this.stop("Microphone unavailable");
      throw err;
    }
  }

  stop(state) {
    const ws = this.ws, call = this.call;
    this.ws = this.call = null;
    if (call) call.close();
    if (this.unwatch) this.unwatch();
    this.unwatch = null;
    if (this.mic) this.mic.stop();
    if (this.player) this.player.stop();
    this.mic = this.player = this.playStart = null;
    if (ws && ws.readyState <= 1) ws.close();
    if (this.context) this.context.close();
    this.context = null;
    $("talk-start").disabled = false;
    $("talk-stop").disabled = true;
    $("talk-apply").disabled = true;
    $("talk-state").textContent = state;
  }

  send(event) {
    if (this.call) this.call.send(event);
    else if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(event));
  }

  sendSession() {
    const session = {
      type: "realtime",
      instructions: $("talk-instructions").value,
      audio: {
        input: {
          format: { type: "audio/pcm", rate: 24000 },
          transcription: { model: "whisper-1" },
          turn_detection: { type: "server_vad", silence_duration_ms: Number($("talk-silence").value) || 500 },
        },
        output: { format: { type: "audio/pcm", rate: 24000 } },
      },
    };
    if ($("talk-voice").value) session.audio.output.voice = $("talk-voice").value;
    this.send({ type: "session.update", session });
  }

  // WebRTC: the reply plays on the <audio> element; the server says when each response starts and stops playing.
  playing(responseId) {
    this.playStart = { responseId, at: performance.now() };
  }

  played() {
    if (!this.playStart) return;
    this.debug.playedMs += Math.round(performance.now() - this.playStart.at);
    $("played-ms").textContent = String(this.debug.playedMs);
    this.playStart = null;
  }

  interrupted(itemId) {
    if (!itemId) return;
    this.cut.add(itemId);
    const t = this.turns.get(itemId);
    if (t) t.node.classList.add("interrupted");
  }

  onEvent(e) {
    this.debug.events[e.type] = (this.debug.events[e.type] || 0) + 1;
    const handler = HANDLERS[e.type];
    if (handler) handler.call(this, e);
  }

  // --- the transcript view -------------------------------------------------------------------------------------

  turn(itemId, role) {
    let t = this.turns.get(itemId);
    if (!t) {
      const text = el("div", { class: "text" });
      const meta = el("div", { class: "meta" });
      const node = el("div", { class: `turn ${role}`, "data-item": itemId },
        el("div", { class: "who" }, role === "user" ? "You" : "voxloop"), text, meta);
      $("transcript").append(node);
      t = { node, text, meta, role };
      this.turns.set(itemId, t);
    }
    t.node.scrollIntoView({ block: "end" });
    return t;
  }
}

const HANDLERS = {
  "session.created"() {
    this.sendSession();
  },
  "session.updated"() {
    $("talk-state").textContent = "Listening — say something";
  },
  error(e) {
    showError(e.error ? e.error.message : "The server reported an error.");
  },
  "input_audio_buffer.speech_started"(e) {
    // Barge-in: the person talks over the reply, so stop it and tell the server how much of it was heard.
    // (The server has already cancelled the response; only the page knows how much was actually played.)
    // Over WebRTC the server does this itself (output_audio_buffer.cleared, then conversation.item.truncated).
    if (this.player && this.player.playing) {
      const cut = this.player.stop();
      if (cut.itemId) {
        this.send({ type: "conversation.item.truncate", item_id: cut.itemId, content_index: 0,
          audio_end_ms: cut.playedMs });
        this.debug.truncates.push(cut);
        this.interrupted(cut.itemId);
      }
    }
    $("talk-state").textContent = "Hearing you…";
    if (e.item_id) this.turn(e.item_id, "user").text.classList.add("pending");
  },
  "input_audio_buffer.speech_stopped"() {
    $("talk-state").textContent = "Thinking…";
  },
  "conversation.item.input_audio_transcription.delta"(e) {
    this.turn(e.item_id, "user").text.append(e.delta);
  },
  "conversation.item.input_audio_transcription.completed"(e) {
    const t = this.turn(e.item_id, "user");
    t.text.textContent = e.transcript.trim() || "(nothing recognisable)";
    t.text.classList.remove("pending");
  },
  "conversation.item.input_audio_transcription.failed"(e) {
    const t = this.turn(e.item_id, "user");
    t.text.textContent = `(not transcribed: ${e.error ? e.error.message : "unknown error"})`;
  },
  "voxloop.input_audio_emotion"(e) {
    const t = this.turn(e.item_id, "user");
    const top = Object.entries(e.scores || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
    t.meta.replaceChildren(el("span", { class: `emotion emo-${e.label}` }, `emotion: ${e.label}`),
      el("span", { class: "muted small" }, ` ${top.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(" · ")}`));
  },
  "response.output_item.added"(e) {
    if (e.item && e.item.type === "message") {
      this.turn(e.item.id, "assistant");
      this.replies.set(e.response_id, e.item.id);
    }
    $("talk-state").textContent = "Replying…";
  },
  "response.output_audio_transcript.delta"(e) {
    this.turn(e.item_id, "assistant").text.append(e.delta);
  },
  "response.output_text.delta"(e) {
    this.turn(e.item_id, "assistant").text.append(e.delta);
  },
  "response.output_audio.delta"(e) {
    if (this.player && !this.cut.has(e.item_id)) this.player.enqueue(e.item_id, bytesFromBase64(e.delta));
  },
  "output_audio_buffer.started"(e) {
    this.playing(e.response_id);
  },
  "output_audio_buffer.stopped"() {
    this.played();
  },
  "output_audio_buffer.cleared"(e) {
    this.played();
    this.interrupted(this.replies.get(e.response_id));
  },
  "conversation.item.truncated"(e) {
    if (this.rtc) {  // the server's barge-in: what the page shows as the cut
      this.debug.truncates.push({ itemId: e.item_id, playedMs: e.audio_end_ms });
      this.interrupted(e.item_id);
    }
  },
  "response.done"(e) {
    const r = e.response || {};
    const message = (r.output || []).find((i) => i.type === "message");
    if (message && r.status === "cancelled") {
      this.cut.add(message.id);  // talked over before its audio played: no late chunks either
      this.turn(message.id, "assistant").node.classList.add("interrupted");
    }
    if (r.status === "failed") {
      const why = r.status_details && r.status_details.error ? r.status_details.error.message : "it failed";
      showError(`The reply could not be made: ${why}`);
    }
    if (message) renderMeta(this.turn(message.id, "assistant"), r);
    $("talk-state").textContent = "Listening — say something";
  },
};

// Which voice spoke and why, and the latency breakdown as a small chart.
function renderMeta(turn, response) {
  const m = response.metadata || {};
  const lines = [];
  if (m.voxloop_voice || m.voxloop_engine) {
    lines.push(el("div", { class: "voice" }, `voice: ${m.voxloop_voice || "?"} on ${m.voxloop_engine || "?"}`,
      m.voxloop_route ? ` — ${m.voxloop_route} route` : ""));
  }
  if (m.voxloop_route_reason) lines.push(el("div", { class: "muted small reason" }, `why: ${m.voxloop_route_reason}`));
  if (m.voxloop_emotion) lines.push(el("div", { class: "muted small" }, `replying to: ${m.voxloop_emotion}`));
  if (response.status && response.status !== "completed") {
    lines.push(el("div", { class: "muted small" }, `status: ${response.status}`));
  }
  const stages = Object.fromEntries((m.voxloop_timings_ms || "").split(" ").filter(Boolean)
    .map((kv) => kv.split("=")).map(([k, v]) => [k, Number(v)]));
  const rows = STAGES.filter((s) => s in stages).map((s) => [s.replaceAll("_", " "), stages[s]]);
  if (rows.length) {
    lines.push(el("div", { class: "muted small" }, "ms after you stopped speaking:"));
    lines.push(barChart(rows, { max: 500, unit: " ms", format: (v) => String(Math.round(v)) }));
  }
  turn.meta.replaceChildren(...lines);
  turn.node.classList.add("done");
}
