// Microphone → 24 kHz pcm16 in ~40 ms chunks (960 samples), posted to the page as ArrayBuffers.
// The context runs at the device rate (often 48 kHz); downsampling here keeps the main thread free. Averaging the
// input samples that fall in each output step is a cheap low-pass, enough against aliasing for speech.

const OUT_RATE = 24000;
const CHUNK = 960;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / OUT_RATE;  // input samples per output sample
    this.pos = 0;                        // fractional position of the next output sample in the input stream
    this.acc = 0;
    this.count = 0;
    this.out = new Int16Array(CHUNK);
    this.fill = 0;
    this.peak = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.acc += channel[i];
      this.count += 1;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.acc = 0;
        this.count = 0;
        this.peak = Math.max(this.peak, Math.abs(v));
        this.out[this.fill++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.fill === CHUNK) {
          this.port.postMessage({ pcm: this.out.buffer, peak: this.peak }, [this.out.buffer]);
          this.out = new Int16Array(CHUNK);
          this.fill = 0;
          this.peak = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
