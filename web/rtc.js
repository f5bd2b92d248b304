// A realtime call over WebRTC, as OpenAI's browser path makes one: an ephemeral key from the server
// (POST /v1/realtime/client_secrets), the microphone as an Opus track with the browser's own echo cancellation and
// noise suppression, the `oai-events` data channel for the same events the WebSocket carries, and the reply as a
// remote audio track played by an <audio> element (the browser's jitter buffer, no PCM in JavaScript).

import { api, errorMessage } from "./api.js";

const OPEN_TIMEOUT_MS = 20000;

export function canUseWebRTC() {
  return typeof RTCPeerConnection !== "undefined" && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

export class Call {
  // onEvent(event) for every server event; onClose() when the call ends by itself; audio: the <audio> element.
  constructor({ onEvent, onClose, audio }) {
    this.onEvent = onEvent;
    this.onClose = onClose;
    this.audio = audio;
    this.pc = null;
    this.channel = null;
    this.stream = null;
    this.callId = null;
  }

  async open(query) {
    const secret = await api("/v1/realtime/client_secrets", { json: { session: { type: "realtime" } } });
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      throw new Error(`The microphone is not available (${err.name}): allow it for this page and try again.`);
    }
    const pc = this.pc = new RTCPeerConnection();
    const channel = this.channel = pc.createDataChannel("oai-events");
    pc.addTrack(this.stream.getAudioTracks()[0], this.stream);
    pc.ontrack = (e) => { this.audio.srcObject = e.streams[0] || new MediaStream([e.track]); };
    channel.onmessage = (m) => this.onEvent(JSON.parse(m.data));
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc.connectionState) && this.pc === pc) this.ended();
    };
    const opened = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("The call did not connect (ICE or the data channel).")),
        OPEN_TIMEOUT_MS);
      channel.onopen = () => { clearTimeout(timer); resolve(); };
    });
    channel.onclose = () => { if (this.pc === pc) this.ended(); };
    await pc.setLocalDescription(await pc.createOffer());
    let response;
    try {
      response = await fetch(`/v1/realtime/calls?${new URLSearchParams(query)}`, {
        method: "POST", body: pc.localDescription.sdp,
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${secret.value}` },
      });
    } catch (err) {
      throw new Error(`Could not reach the voxloop server (${err.message}). Is it still running?`);
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    this.callId = (response.headers.get("Location") || "").split("/").pop() || null;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    await opened;
  }

  send(event) {
    if (this.channel && this.channel.readyState === "open") this.channel.send(JSON.stringify(event));
  }

  ended() {
    this.close();
    if (this.onClose) this.onClose();
  }

  // Closing the peer connection ends the call on the server too (its session and slot are freed).
  close() {
    const pc = this.pc;
    this.pc = null;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (pc) pc.close();
    this.audio.srcObject = null;
    this.stream = null;
  }
}

// The microphone's level for the meter, from the same stream the call sends.
export function watchLevel(context, stream, onLevel) {
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  const source = context.createMediaStreamSource(stream);
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const v of samples) peak = Math.max(peak, Math.abs(v));
    onLevel(peak);
  }, 100);
  return () => { clearInterval(timer); source.disconnect(); };
}
