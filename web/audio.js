// Audio in and out for the Talk tab: the microphone through the pcm-capture worklet, and a player that schedules
// 24 kHz pcm16 chunks back to back on one AudioContext so consecutive deltas play without gaps.

const RATE = 24000;

export class Microphone {
  constructor(onChunk, onLevel) {
    this.onChunk = onChunk;  // (ArrayBuffer of pcm16 24 kHz) => void
    this.onLevel = onLevel;  // (peak 0..1) => void
  }

  async start(context) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("This browser cannot use a microphone here (it needs https or http://localhost).");
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      throw new Error(`The microphone is not available (${err.name}): allow it for this page and try again.`);
    }
    await context.audioWorklet.addModule("/playground/pcm-worklet.js");
    this.source = context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(context, "pcm-capture");
    this.node.port.onmessage = (e) => {
      this.onChunk(e.data.pcm);
      if (this.onLevel) this.onLevel(e.data.peak);
    };
    this.source.connect(this.node);
    // A worklet only runs while connected to the graph's output; its output is silence.
    this.node.connect(context.destination);
  }

  stop() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.source) this.source.disconnect();
    if (this.node) this.node.disconnect();
    this.stream = this.source = this.node = null;
  }
}

export class Player {
  constructor(context, onPlayed) {
    this.context = context;
    this.onPlayed = onPlayed;  // (ms of reply audio heard so far, in total) => void
    this.sources = new Set();
    this.nextTime = 0;
    this.itemId = null;
    this.itemStart = 0;   // context time the current item's first sample plays at
    this.itemQueuedMs = 0;
    this.playedMs = 0;
  }

  // Queue one chunk of the item's audio right after the previous one.
  enqueue(itemId, pcmBytes) {
    const samples = new Int16Array(pcmBytes.buffer, pcmBytes.byteOffset, pcmBytes.byteLength >> 1);
    if (!samples.length) return;
    const buffer = this.context.createBuffer(1, samples.length, RATE);
    const data = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) data[i] = samples[i] / 0x8000;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    // A small lead when starting from idle absorbs network jitter; after that chunks abut exactly.
    const start = Math.max(this.nextTime, this.context.currentTime + 0.05);
    if (itemId !== this.itemId) {
      this.itemId = itemId;
      this.itemStart = start;
      this.itemQueuedMs = 0;
    }
    source.start(start);
    this.nextTime = start + buffer.duration;
    this.itemQueuedMs += buffer.duration * 1000;
    this.sources.add(source);
    source.onended = () => {
      if (!this.sources.delete(source)) return;  // stopped by barge-in: not heard
      this.playedMs += buffer.duration * 1000;
      this.onPlayed(this.playedMs);
    };
  }

  get playing() {
    return this.sources.size > 0;
  }

  // Barge-in: silence everything queued; returns {itemId, playedMs} of the item cut off (for the truncate).
  stop() {
    const cut = { itemId: this.itemId, playedMs: this.currentItemPlayedMs() };
    for (const source of this.sources) {
      source.onended = null;
      try { source.stop(); } catch (_) { /* never started */ }
    }
    this.sources.clear();
    this.nextTime = 0;
    this.itemId = null;
    return cut;
  }

  // Whole milliseconds heard, rounded down: the server counts the item's audio in whole milliseconds rounded down
  // too, and refuses a truncate past its end (a played-out 3362.6 ms item rounded up to 3363 was refused).
  currentItemPlayedMs() {
    const heard = (this.context.currentTime - this.itemStart) * 1000;
    return Math.floor(Math.max(0, Math.min(heard, this.itemQueuedMs)));
  }
}
